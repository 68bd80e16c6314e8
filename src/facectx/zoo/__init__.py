"""Model zoo: plain ``nn.Module`` generators and discriminators (no Lightning).

``python -m facectx.zoo [--width W] [--sizes 8 16 ...]`` prints :func:`summary`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

import torch
from torch import nn

from facectx.zoo.cascade import (
    BLOCK_SIZES,
    CascadeGenerator,
    CascadeTrace,
    GeneratorBlock,
    PixelShuffleUpscaler,
    SkipConnection,
)
from facectx.zoo.discriminators import CasiaDiscriminator, ConvUnit, casia_depth
from facectx.zoo.layers import ResidualBlock, count_parameters, scale_channels
from facectx.zoo.patch_discriminator import PatchDiscriminator

__all__ = [
    "BLOCK_SIZES",
    "CascadeGenerator",
    "CascadeTrace",
    "CasiaDiscriminator",
    "GeneratorBlock",
    "PatchDiscriminator",
    "PixelShuffleUpscaler",
    "ResidualBlock",
    "SkipConnection",
    "casia_depth",
    "count_parameters",
    "scale_channels",
    "summary",
]

# Modules listed as one row in the summary (their children are not listed separately).
_UNITS = (ResidualBlock, ConvUnit)
_SKIP = (nn.LeakyReLU,)


def _layer_rows(model: nn.Module, in_size: int) -> list[tuple[str, str, tuple[int, ...], int]]:
    """(name, type, output shape, params) per layer, from a batch-1 forward on the meta device."""
    rows: dict[str, tuple[str, str, tuple[int, ...], int]] = {}
    handles, inside = [], set()
    for name, m in model.named_modules():
        if not name or any(name.startswith(p + ".") for p in inside) or isinstance(m, _SKIP):
            continue
        if isinstance(m, _UNITS) or not list(m.children()):
            inside.add(name)

            def hook(mod: nn.Module, args: object, out: torch.Tensor, name: str = name) -> None:
                rows[name] = (name, type(mod).__name__, tuple(out.shape), count_parameters(mod))

            handles.append(m.register_forward_hook(hook))
    try:
        model(torch.zeros(1, 3, in_size, in_size, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return list(rows.values())


def _section(title: str, model: nn.Module, in_size: int, lines: list[str]) -> int:
    total = count_parameters(model)
    lines.append(f"{title}  input (1, 3, {in_size}, {in_size})  params {total:,}")
    for name, kind, shape, params in _layer_rows(model, in_size):
        lines.append(f"  {name:<18} {kind:<16} {shape!s:<22} {params:>13,}")
    return total


def summary(
    width: float = 1.0, sizes: Sequence[int] = BLOCK_SIZES, file: TextIO | None = None
) -> str:
    """Layer output shapes and parameter counts of the cascade and its discriminators.

    Models are built on the meta device (no memory, no init cost) and run once at batch 1 with
    forward hooks, so this is fast even at width 1.

    Args:
        width: channel multiplier passed to every model.
        sizes: cascade sizes (consecutive doublings out of 8 ... 128).
        file: stream to print the text to; None prints nothing (the text is always returned).

    Returns:
        The summary text: one section per generator block (with its skip connections), per
        upscaler and per discriminator, then totals.
    """
    sizes = tuple(int(s) for s in sizes)
    lines = [f"facectx.zoo summary: width={width}, sizes={sizes}, batch 1", ""]
    with torch.device("meta"):
        gen = CascadeGenerator(sizes, width=width)
        discs = {s: CasiaDiscriminator(s, width=width) for s in sizes}
    gen.eval()
    totals = {"generator blocks": 0, "upscalers": 0, "discriminators": 0}
    for s in sizes:
        block = gen.blocks[f"block_{s}"]
        totals["generator blocks"] += _section(f"block_{s} (GeneratorBlock)", block, s, lines)
        skips = ", ".join(
            f"{k.source}->{k.target} ({k.channels}@{k.size}x{k.size} at width 1)"
            for k in block.skips
        )
        lines.append(f"  additive skips: {skips or 'none'}")
        lines.append("")
    for s in sizes[1:]:
        up = gen.upscalers[f"up_{s}"]
        totals["upscalers"] += _section(f"up_{s} (PixelShuffleUpscaler)", up, s // 2, lines)
        lines.append("")
    for s, d in discs.items():
        d.eval()
        totals["discriminators"] += _section(f"disc_{s} (CasiaDiscriminator)", d, s, lines)
        lines.append("")
    lines.append("totals")
    for k, v in totals.items():
        lines.append(f"  {k:<32} {v:>15,}")
    gen_total = totals["generator blocks"] + totals["upscalers"]
    lines.append(f"  {'cascade generator (blocks+ups)':<32} {gen_total:>15,}")
    lines.append(f"  {'all':<32} {gen_total + totals['discriminators']:>15,}")
    text = "\n".join(lines) + "\n"
    if file is not None:
        file.write(text)
    return text


def _main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m facectx.zoo", description=summary.__doc__)
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(BLOCK_SIZES))
    args = parser.parse_args(argv)
    summary(args.width, args.sizes, file=sys.stdout)
