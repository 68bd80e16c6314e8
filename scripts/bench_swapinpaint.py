"""SwapInpaint inference throughput: C + G + the identity encoder on aligned faces, and the
Poisson blend per image. Random weights (speed does not depend on them).

    python scripts/bench_swapinpaint.py                          # CPU, 256 px, width 1
    python scripts/bench_swapinpaint.py --device cuda --batch 64 --precision bf16

Not a test (pytest does not collect it). Prints one line per measurement and a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_networks(
    size: int,
    width: float,
    batch: int,
    iters: int,
    warmup: int,
    device: str,
    precision: str,
    identity: str,
    channels_last: bool,
) -> dict:
    from facectx.pretrained import load
    from facectx.zoo.swapinpaint import ContentInference, SwapGenerator, SwapInpaint

    dev = torch.device(device)
    if identity == "none":
        ident, dim = None, 512
    else:
        ident = load(identity, allow_random_init=True).to(dev).eval()
        dim = int(ident.feature_dim)
    net = SwapInpaint(ContentInference(size, width=width), SwapGenerator(size, dim, width)).to(dev)
    net.eval().requires_grad_(False)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(0)
    image = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(dev)
    ref = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(dev)
    mask = torch.ones(batch, 1, size, size, device=dev)
    q = size // 5
    mask[:, :, q : size - q, q : size - q] = 0
    masked = image * mask - (1 - mask)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]

    def step():
        with (
            torch.inference_mode(),
            torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None),
        ):
            z = ident(ref) if ident is not None else torch.randn(batch, dim, device=dev)
            return net(masked, mask, z)["output"]

    for _ in range(warmup):
        step()
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    _sync(dev)
    dt = time.perf_counter() - t0
    return {
        "what": "C + G + identity (aligned, batched)",
        "img_per_s": batch * iters / dt,
        "ms_per_batch": 1000 * dt / iters,
    }


def bench_blend(size: int, n: int = 20) -> dict:
    from facectx.blend import poisson_blend

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    hole = np.zeros((size, size), bool)
    q = size // 5
    hole[q : size - q, q : size - q] = True
    poisson_blend(a, b, hole)
    t0 = time.perf_counter()
    for _ in range(n):
        poisson_blend(a, b, hole)
    dt = (time.perf_counter() - t0) / n
    return {
        "what": "Poisson blend (centre hole, 3/5 side)",
        "img_per_s": 1 / dt,
        "ms_per_image": 1000 * dt,
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    p.add_argument("--identity", default="dlib-resnet", help="registry name, or none")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--channels-last", action="store_true")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    res = {
        "device": torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "args": vars(args),
        "networks": bench_networks(
            args.size,
            args.width,
            args.batch,
            args.iters,
            args.warmup,
            args.device,
            args.precision,
            args.identity,
            args.channels_last,
        ),
        "blend": bench_blend(args.size),
    }
    for k in ("networks", "blend"):
        print(f"{res[k]['what']}: {res[k]['img_per_s']:.2f} img/s")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
