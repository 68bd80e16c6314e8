"""Training and inference throughput of the cascaded GAN.

    python scripts/bench_train.py                        # CPU, width 1, batch 10, fp32
    python scripts/bench_train.py --width 0.125 --batch 16
    python scripts/bench_train.py --device cuda          # + bf16, channels_last, torch.compile
    python scripts/bench_train.py --experiment lfw_cpu   # a recipe exactly as configured
    python scripts/bench_train.py --experiment lfw_cpu --cpu-variants   # + channels_last, compile

Training iterations run the whole step the LightningModule runs (generator forward, D step on
separate real and fake minibatches for all 5 blocks, G step with every loss term): L1, LSGAN,
TV, LPIPS-AlexNet and a VGG-16 (VGG-Face fc7) identity network. Loss networks use RANDOM
weights here (their architecture sets the cost, not their weights). With ``--experiment NAME``
the model is the recipe's own (conf/experiment/NAME.yaml: its generator, discriminator, loss
terms and identity network, real weights where they are offline) at the recipe's batch size,
and the figure printed first is its iterations/s. Inference is the generator cascade alone. Achieved GFLOP/s is printed next to a plain 3x3 convolution's on the same device,
as the yardstick for "close to the machine's conv throughput".
"""

from __future__ import annotations

import argparse
import contextlib
import time
import warnings

import torch
from torch.utils.flop_counter import FlopCounterMode

from facectx.losses import CascadeLoss
from facectx.modules.cascade import CascadeGAN
from facectx.zoo import CascadeGenerator, CasiaDiscriminator
from facectx.zoo.pyramid import build_pyramid


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _batch(n: int, device: torch.device, channels_last: bool) -> dict:
    g = torch.Generator().manual_seed(0)
    image = torch.rand(n, 3, 128, 128, generator=g) * 2 - 1
    mask = torch.zeros(n, 1, 128, 128)
    mask[..., 28:104, 34:94] = 1
    masked = image * mask - (1 - mask)
    image, mask, masked = (t.to(device) for t in (image, mask, masked))
    if channels_last:
        image, mask, masked = (
            t.contiguous(memory_format=torch.channels_last) for t in (image, mask, masked)
        )
    return {"pyramid": build_pyramid(image, masked, mask, (8, 16, 32, 64, 128))}


def _build(width: float, lpips: bool, identity: bool, device: torch.device) -> CascadeGAN:
    from facectx.pretrained import load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the random-weights warning is expected here
        lp = load("lpips-alex", allow_random_init=True, force_random_init=True) if lpips else None
        idn = (
            load("vggface-fc7", allow_random_init=True, force_random_init=True)
            if identity
            else None
        )
    loss = CascadeLoss(lpips=lp, identity=idn)
    model = CascadeGAN(
        CascadeGenerator(width=width), lambda size: CasiaDiscriminator(size, width=width), loss
    )
    return model.to(device)


def _build_recipe(experiment: str, device: torch.device) -> tuple[CascadeGAN, int]:
    """The LightningModule of ``experiment=NAME`` as ``facectx.train`` builds it, and its batch."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from facectx._conf import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"experiment={experiment}", "paths.output_dir=.", "data.root=unused"],
        )
    model = instantiate(cfg.model)
    model.iteration.fill_(model.adv_start)  # time the adversarial phase, not the warm start
    return model.to(device), int(cfg.data.batch_size)


def _train_step(model: CascadeGAN, opts, batch: dict, autocast) -> None:
    opt_g, opt_d = opts
    with autocast():
        out = model.generate(batch)
    if model.uses_discriminator:
        with autocast():
            d_loss, _ = model.discriminator_loss(batch, {k: v.detach() for k, v in out.items()})
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
    with autocast():
        g_loss, _ = model.generator_loss(batch, out)
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()


def _time(fn, iters: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / iters


def conv_gflops(device: torch.device, dtype: torch.dtype) -> float:
    """GFLOP/s of a plain 3x3 conv (batch 10, 256->256 channels, 32x32) on this device."""
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).to(device, dtype)
    x = torch.randn(10, 256, 32, 32, device=device, dtype=dtype)
    flops = 2 * 10 * 256 * 256 * 9 * 32 * 32
    with torch.no_grad():
        dt = _time(lambda: conv(x), iters=10, warmup=3, device=device)
    return flops / dt / 1e9


def bench_variant(args, device, name, dtype, channels_last, compile_) -> str:
    """One line of results for one precision / layout / compile combination."""
    if args.experiment:
        model, args.batch = _build_recipe(args.experiment, device)
    else:
        model = _build(args.width, not args.no_lpips, not args.no_identity, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    gen = model.generator
    if compile_:
        model.generator = torch.compile(model.generator)
    batch = _batch(args.batch, device, channels_last)

    def autocast():
        if dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=dtype)

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        gen(batch["pyramid"])
    infer_flops = fc.get_total_flops()

    def infer():
        with torch.inference_mode(), autocast():
            model.generator(batch["pyramid"])

    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    dt_inf = _time(infer, args.iters, args.warmup, device)
    mem_inf = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    opts = model.configure_optimizers()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    dt_train = _time(
        lambda: _train_step(model, opts, batch, autocast), args.train_iters, args.warmup, device
    )
    mem_train = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    ref = conv_gflops(device, dtype)
    line = (
        f"{name:28s} train {1 / dt_train:6.2f} it/s = {args.batch / dt_train:8.2f} img/s "
        f"({dt_train * 1e3:8.1f} ms/it)"
        f" | inference {args.batch / dt_inf:8.2f} img/s, "
        f"{infer_flops / dt_inf / 1e9:7.1f} GFLOP/s ({infer_flops / args.batch / 1e9:.2f} "
        f"GFLOP/img) vs plain conv {ref:7.1f} GFLOP/s"
    )
    if cuda:
        line += f" | peak mem train {mem_train:.1f} GiB, inference {mem_inf:.1f} GiB"
    return line


def run(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    what = f"experiment={args.experiment}" if args.experiment else f"width {args.width}"
    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"{what}, batch {args.batch if not args.experiment else 'from the recipe'}"
    )
    variants = [("fp32", torch.float32, False, False)]
    if device.type == "cpu" and args.cpu_variants:
        variants += [
            ("fp32+channels_last", torch.float32, True, False),
            ("fp32+compile", torch.float32, False, True),
        ]
    if device.type == "cuda":
        variants += [
            ("bf16", torch.bfloat16, False, False),
            ("bf16+channels_last", torch.bfloat16, True, False),
            ("bf16+channels_last+compile", torch.bfloat16, True, True),
        ]
    for variant in variants:
        try:
            print(bench_variant(args, device, *variant), flush=True)
        except Exception as e:  # e.g. an inductor bug in one variant: report it, keep going
            first = str(e).strip().splitlines()[-1][:160] if str(e).strip() else ""
            print(f"{variant[0]:<28} failed: {type(e).__name__}: {first}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--iters", type=int, default=5, help="timed inference iterations")
    p.add_argument("--train-iters", type=int, default=3, help="timed training iterations")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--no-lpips", action="store_true")
    p.add_argument("--no-identity", action="store_true")
    p.add_argument("--experiment", default=None, help="time this recipe (conf/experiment)")
    p.add_argument(
        "--cpu-variants",
        action="store_true",
        help="on CPU also time channels_last and torch.compile (the generator), beside fp32",
    )
    run(p.parse_args())


if __name__ == "__main__":
    main()
