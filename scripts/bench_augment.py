"""Throughput of dataset augmentation (``python -m facectx.augment``) at two generator widths.

Two numbers per width:

* **generator**: ``CascadeGenerator.hallucinate`` alone on a resident batch (img/s), the
  ceiling;
* **end-to-end**: ``facectx.augment.augment`` over N prepared faces (the embedded sample
  replicated with symlinks): PNG decoding in DataLoader workers, the Lightning predict loop,
  PNG encoding and writing into shards, manifest appends (img/s as the writer measures it,
  start-up excluded).

Weights are random (seeded): speed does not depend on them, and no checkpoint is needed.

    python scripts/bench_augment.py                         # CPU, widths 0.125 and 1, 1 thread
    python scripts/bench_augment.py --device cuda           # one GPU, bf16-mixed, channels-last
    python scripts/bench_augment.py --device cuda --widths 1 --n 20000 --batch-size 512 \
        --num-workers 12 --write-threads 12

Goal on one H100: >= 5,000 img/s end-to-end at width 1, 128 px.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


def bench_generator(
    gen, device: str, batch: int, precision: str, channels_last: bool, seconds: float
) -> tuple[float, float]:
    """(wall img/s, img per CPU second) of ``gen.hallucinate`` on a resident random batch, after
    one warm-up call. On a shared machine the CPU rate is what an otherwise idle core would do
    (with --threads 1)."""
    import torch

    g = torch.Generator().manual_seed(0)
    masked = (torch.rand(batch, 3, 128, 128, generator=g) * 2 - 1).to(device)
    mask = (torch.rand(batch, 1, 128, 128, generator=g) > 0.5).float().to(device)
    if channels_last:
        masked = masked.contiguous(memory_format=torch.channels_last)
    dtype = torch.bfloat16 if precision.startswith("bf16") else None
    dev_type = "cuda" if device.startswith("cuda") else "cpu"

    def step():
        with (
            torch.inference_mode(),
            torch.autocast(dev_type, dtype=dtype, enabled=dtype is not None),
        ):
            return gen.hallucinate(masked, mask)

    step()
    if dev_type == "cuda":
        torch.cuda.synchronize()
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        step()
        n += batch
        if dev_type == "cuda":
            torch.cuda.synchronize()
        if time.perf_counter() - t0 >= seconds and n >= 2 * batch:
            break
    return n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--widths", type=float, nargs="+", default=[0.125, 1.0])
    ap.add_argument(
        "--n", type=int, default=None, help="faces end-to-end (default 256 CPU, 20000 GPU)"
    )
    ap.add_argument("--batch-size", type=int, default=None, help="default 32 CPU, 512 GPU")
    ap.add_argument("--num-workers", type=int, default=None, help="default 0 CPU, 12 GPU")
    ap.add_argument("--write-threads", type=int, default=None, help="default 2 CPU, 12 GPU")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (shared machine: 1)")
    ap.add_argument("--precision", default=None, help="default 32-true CPU, bf16-mixed GPU")
    ap.add_argument("--no-channels-last", action="store_true")
    ap.add_argument("--seconds", type=float, default=5.0, help="time per generator-only run")
    ap.add_argument("--skip-e2e", action="store_true", help="generator-only numbers")
    ap.add_argument("--json", type=Path, default=None, help="also write results here")
    args = ap.parse_args()

    import pytorch_lightning as pl
    import torch

    from facectx.augment import augment
    from facectx.zoo import CascadeGenerator

    gpu = args.device == "cuda"
    if gpu and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch.cuda.is_available() is False")
    torch.set_num_threads(args.threads)
    n = args.n or (20000 if gpu else 256)
    batch = args.batch_size or (512 if gpu else 32)
    # CPU: decode in the main process, so its CPU time covers the whole pipeline
    workers = args.num_workers if args.num_workers is not None else (12 if gpu else 0)
    writers = args.write_threads or (12 if gpu else 2)
    precision = args.precision or ("bf16-mixed" if gpu else "32-true")
    channels_last = gpu and not args.no_channels_last
    device = "cuda" if gpu else "cpu"
    print(
        f"# {platform.node()} {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__}, torch threads {args.threads}"
        + (f", GPU {torch.cuda.get_device_name()}" if gpu else "")
    )
    print(
        f"# n={n} batch={batch} workers={workers} write_threads={writers} precision={precision} "
        f"channels_last={channels_last}; random weights"
    )
    results = []
    from facectx.assets import sample_root
    from facectx.data.manifest import link_prepared

    with tempfile.TemporaryDirectory(prefix="bench_augment_") as tmp:
        prepared = link_prepared(sample_root(), Path(tmp) / "prepared", n)
        for width in args.widths:
            torch.manual_seed(0)
            gen = CascadeGenerator(width=width).eval().requires_grad_(False).to(device)
            if channels_last:
                gen = gen.to(memory_format=torch.channels_last)
            params = sum(p.numel() for p in gen.parameters()) / 1e6
            g_rate, g_cpu = bench_generator(
                gen, device, batch, precision, channels_last, args.seconds
            )
            row = {
                "width": width,
                "params_M": round(params, 1),
                "generator_img_s": round(g_rate, 2),
                "generator_img_per_cpu_s": round(g_cpu, 2),
            }
            if not args.skip_e2e:
                trainer = pl.Trainer(
                    accelerator="gpu" if gpu else "cpu",
                    devices=1,
                    precision=precision,
                    logger=False,
                    enable_progress_bar=False,
                    enable_model_summary=False,
                )
                c0 = time.process_time()
                res = augment(
                    "random-weights",
                    str(prepared),
                    str(Path(tmp) / f"out_{width}"),
                    trainer=trainer,
                    batch_size=batch,
                    num_workers=workers,
                    pin_memory=gpu,
                    write_threads=writers,
                    channels_last=channels_last,
                    generator=gen.cpu() if not gpu else gen,
                )
                cpu = time.process_time() - c0  # incl. Lightning set-up and writer threads
                row["end_to_end_img_s"] = round(res["img_per_s"], 2)
                row["end_to_end_img_per_cpu_s"] = round(res["written"] / max(cpu, 1e-9), 2)
                row["images"] = res["written"]
            results.append(row)
            print(json.dumps(row), flush=True)
    print("\n| width | params | generator img/s | per CPU s | end-to-end img/s | per CPU s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['width']:g} | {r['params_M']} M | {r['generator_img_s']} | "
            f"{r['generator_img_per_cpu_s']} | {r.get('end_to_end_img_s', '–')} | "
            f"{r.get('end_to_end_img_per_cpu_s', '–')} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
