"""Progressive growing of the cascade's generator blocks and discriminators (paper §3.1, ProGAN).

The ProGAN variant trains ``block_8`` first, then grows it into ``block_16`` by loading the
trained layers and adding the new ones, and so on up to ``block_128``. The blocks are the
cascade's own :class:`~facectx.zoo.cascade.GeneratorBlock` (supplement Tables 1-5) and
:class:`~facectx.zoo.discriminators.CasiaDiscriminator`; this module only decides which weights
of the size-N network go where in the size-2N network. See ``docs/progan.md`` for the tables.

Transfer rule (decided once on the width-1 shapes, so it never depends on the width multiplier):

* generator: layers are matched **by the resolution they work at**, i.e. from the bottleneck
  outward. ``conv0`` -> ``conv0``; encoder stage k of block_N -> encoder stage k+1 of block_2N
  (block_2N's stage 0 is its new highest-resolution stage); ``fc1``/``fc2`` -> themselves;
  decoder stage k -> decoder stage k (block_2N's last stage is new); ``to_rgb`` -> ``to_rgb``.
  A tensor is copied only if its shape at width 1 is equal on both sides; everything else keeps
  its fresh initialisation.
* discriminator: CASIA stages are matched **by name from the input side** (``conv11`` ...):
  D_2N is D_N plus one deeper stride-2 stage and a new head. These are the only layers of equal
  shape (a resolution-matched rule would transfer nothing).

Everything here is plain ``torch``; no Lightning.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facectx.zoo.cascade import BLOCK_SIZES, CascadeGenerator, GeneratorBlock
from facectx.zoo.discriminators import CasiaDiscriminator
from facectx.zoo.layers import check_image

__all__ = [
    "FadeIn",
    "discriminator_key_map",
    "generator_key_map",
    "grow",
    "grow_discriminator",
    "grow_generator",
    "transfer_weights",
]


def _check_growable(size: int) -> None:
    if size not in BLOCK_SIZES or 2 * size not in BLOCK_SIZES:
        raise ValueError(
            f"cannot grow a size-{size} network: sizes grow by doubling within {BLOCK_SIZES}, "
            f"so the largest one ({BLOCK_SIZES[-1]}) does not grow"
        )


def _generator_target(key: str) -> str:
    """Where a block_N state-dict key goes in block_2N (before the shape check)."""
    parts = key.split(".")
    if parts[0] == "encoder":  # one more stage on the input side: indices shift by one
        parts[1] = str(int(parts[1]) + 1)
    return ".".join(parts)


@functools.cache
def _generator_key_map(size: int) -> tuple[tuple[str, str], ...]:
    with torch.device("meta"):  # shapes only: no memory, no init cost, even at width 1
        old = GeneratorBlock(size, 1.0).state_dict()
        new = GeneratorBlock(2 * size, 1.0).state_dict()
    return _whole_layers({_generator_target(k): k for k in old}, old, new)


def _whole_layers(
    candidates: dict[str, str], old: Mapping[str, Tensor], new: Mapping[str, Tensor]
) -> tuple[tuple[str, str], ...]:
    """Keep the ``{new key: old key}`` candidates of the layers whose every tensor (weight,
    bias, batch-norm statistics) exists on both sides with equal shapes: a layer transfers whole
    or not at all (a conv never gets the old bias with a fresh weight)."""
    layers: dict[str, list[str]] = {}
    for key in new:
        layers.setdefault(key.rsplit(".", 1)[0], []).append(key)
    pairs = []
    for keys in layers.values():
        if all(
            k in candidates and candidates[k] in old and old[candidates[k]].shape == new[k].shape
            for k in keys
        ):
            pairs += [(k, candidates[k]) for k in keys]
    return tuple(pairs)


def generator_key_map(size: int) -> dict[str, str]:
    """``{block_2N key: block_N key}`` for every state-dict entry that transfers when
    ``block_<size>`` grows into ``block_<2·size>`` (see the module docstring for the rule).

    Decided on width-1 shapes; keys of block_2N that are absent are new layers.
    """
    _check_growable(size)
    return dict(_generator_key_map(size))


@functools.cache
def _discriminator_key_map(size: int) -> tuple[tuple[str, str], ...]:
    with torch.device("meta"):
        old = CasiaDiscriminator(size, 1.0).state_dict()
        new = CasiaDiscriminator(2 * size, 1.0).state_dict()
    return _whole_layers({k: k for k in new}, old, new)


def discriminator_key_map(size: int) -> dict[str, str]:
    """``{D_2N key: D_N key}`` for the CASIA discriminator growing from ``size`` to ``2·size``:
    every conv and batch-norm entry of D_N's stages (same names); the head is new."""
    _check_growable(size)
    return dict(_discriminator_key_map(size))


@torch.no_grad()
def transfer_weights(
    src: nn.Module, dst: nn.Module, key_map: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """Copy ``src`` state-dict entries into ``dst`` in place, following ``key_map``.

    Args:
        src: the trained, smaller network.
        dst: the freshly built, larger network (modified in place).
        key_map: ``{dst key: src key}`` (:func:`generator_key_map`, :func:`discriminator_key_map`).

    Returns:
        ``(transferred, new)``: the ``dst`` state-dict keys (parameters and buffers) that received
        ``src`` values, and the ones that kept their fresh initialisation.

    Raises:
        ValueError: a mapped pair has different shapes (e.g. the two networks have different
            widths) or a key is missing.
    """
    src_sd, dst_sd = src.state_dict(), dst.state_dict()
    for dst_key, src_key in key_map.items():
        if dst_key not in dst_sd or src_key not in src_sd:
            raise ValueError(f"transfer {src_key} -> {dst_key}: key missing on one side")
        if dst_sd[dst_key].shape != src_sd[src_key].shape:
            raise ValueError(
                f"transfer {src_key} -> {dst_key}: shape {tuple(src_sd[src_key].shape)} != "
                f"{tuple(dst_sd[dst_key].shape)}; were both networks built with the same width?"
            )
    for dst_key, src_key in key_map.items():
        dst_sd[dst_key].copy_(src_sd[src_key])  # state-dict tensors share the modules' storage
    transferred = [k for k in dst_sd if k in key_map]
    new = [k for k in dst_sd if k not in key_map]
    return transferred, new


def _like(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(module.parameters())
    return p.device, p.dtype


def _check_width(have: float, width: float | None, what: str) -> None:
    if width is not None and float(width) != float(have):
        raise ValueError(
            f"{what} has width {have}, asked to grow at width {width}; they must match"
        )


def grow(
    block: GeneratorBlock, width: float | None = None
) -> tuple[GeneratorBlock, list[str], list[str]]:
    """Grow a trained ``block_N`` into ``block_2N`` (the paper's "load additional layers").

    Args:
        block: the trained block_N (not modified).
        width: channel multiplier of the new block; None = ``block.width`` (any other value is an
            error: the transferred layers fix the width).

    Returns:
        ``(block_2N, transferred_keys, new_keys)``: the new block on ``block``'s device and dtype,
        the state-dict keys of block_2N copied from block_N (bit-identical) and those freshly
        initialised (PyTorch defaults, drawn from the global torch RNG like any module init).
    """
    _check_growable(block.size)
    _check_width(block.width, width, f"block_{block.size}")
    device, dtype = _like(block)
    with torch.device(device):
        new = GeneratorBlock(2 * block.size, block.width, block.shuffle_blur).to(dtype)
    transferred, fresh = transfer_weights(block, new, generator_key_map(block.size))
    return new, transferred, fresh


def grow_generator(
    generator: CascadeGenerator,
) -> tuple[CascadeGenerator, list[str], list[str]]:
    """Grow a single-block ``CascadeGenerator(sizes=(N,))`` into ``CascadeGenerator(sizes=(2N,))``.

    The ProGAN model keeps its current block inside a one-block cascade so that checkpoints hold
    ``generator.blocks.block_<N>.*`` exactly like a cascade checkpoint. Keys in the returned lists
    are relative to the block (as :func:`grow`).
    """
    if len(generator.sizes) != 1:
        raise ValueError(f"grow_generator needs a one-block cascade, got sizes {generator.sizes}")
    (size,) = generator.sizes
    block, transferred, fresh = grow(generator.blocks[f"block_{size}"])
    with torch.device("meta"):  # a one-block cascade has no upscalers: only the block is replaced
        grown = CascadeGenerator(
            (2 * size,),
            width=generator.width,
            detach_between_blocks=generator.detach_between_blocks,
            upscaler_channels=generator.upscaler_channels,
            shuffle_blur=generator.shuffle_blur,
        )
    grown.blocks[f"block_{2 * size}"] = block
    assert not any(t.is_meta for t in grown.state_dict().values())
    return grown, transferred, fresh


def grow_discriminator(
    discriminator: CasiaDiscriminator, width: float | None = None
) -> tuple[CasiaDiscriminator, list[str], list[str]]:
    """Grow a trained CASIA discriminator for N×N inputs into one for 2N×2N inputs.

    Args:
        discriminator: the trained D_N (not modified).
        width: channel multiplier of D_2N; None = ``discriminator.width`` (must match).

    Returns:
        ``(D_2N, transferred_keys, new_keys)``: D_2N (He-initialised, then D_N's stages copied in,
        batch-norm running statistics included) on D_N's device and dtype, and the key lists.
    """
    _check_growable(discriminator.size)
    _check_width(discriminator.width, width, f"CasiaDiscriminator({discriminator.size})")
    device, dtype = _like(discriminator)
    with torch.device(device):
        new = CasiaDiscriminator(2 * discriminator.size, discriminator.width).to(dtype)
    transferred, fresh = transfer_weights(
        discriminator, new, discriminator_key_map(discriminator.size)
    )
    return new, transferred, fresh


class FadeIn(nn.Module):
    """ProGAN-style fade-in of a grown block's new output layers (optional; the paper has none).

    Holds block_N's trained ``to_rgb`` (frozen). For block_2N and input x::

        raw = (1 - alpha) · up2(tanh(old_to_rgb(h))) + alpha · block_2N(x)

    where h is the input of block_2N's last decoder stage (an N×N map with the channels block_N's
    ``to_rgb`` was trained on) and up2 is nearest-neighbour ×2. alpha ramps 0 -> 1 over the fade;
    at alpha = 1 the result is exactly ``block_2N(x)``. Only the output side fades: the encoder's
    new input stage and the discriminator switch at once (their old entry layers do not fit the
    new channel counts).
    """

    def __init__(self, in_channels: int) -> None:
        """
        Args:
            in_channels: channels into the old 5×5 ``to_rgb`` conv (block_N's last decoder width).
        """
        super().__init__()
        self.to_rgb = nn.Conv2d(in_channels, 3, kernel_size=5, padding=2)
        self.requires_grad_(False)

    @classmethod
    def from_block(cls, block: GeneratorBlock) -> FadeIn:
        """A fade holding a frozen copy of trained ``block``'s (block_N's) ``to_rgb``."""
        device, dtype = _like(block)
        with torch.device(device):
            fade = cls(block.to_rgb.in_channels).to(dtype)
        fade.to_rgb.load_state_dict(block.to_rgb.state_dict())
        return fade

    @classmethod
    def for_growth_into(cls, size: int, width: float) -> FadeIn:
        """An untrained fade with the right shapes for growing into ``block_<size>``: rebuilds
        the architecture before a checkpoint written mid-fade is loaded."""
        _check_growable(size // 2)
        with torch.device("meta"):
            channels = GeneratorBlock(size // 2, width).to_rgb.in_channels
        return cls(channels)

    def forward(self, block: GeneratorBlock, x: Tensor, alpha: float) -> Tensor:
        """(B,3,2N,2N) raw output of ``block`` (= block_2N) faded with the old output path."""
        check_image(x, f"FadeIn block_{block.size} input", size=block.size)
        last = block.decoder[-1]
        if last.conv.in_channels != self.to_rgb.in_channels:
            raise ValueError(
                f"FadeIn holds a to_rgb for {self.to_rgb.in_channels} channels, but block_"
                f"{block.size}'s last decoder stage takes {last.conv.in_channels}"
            )
        if alpha >= 1.0:
            return block(x)
        seen: list[Tensor] = []
        handle = last.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
        try:
            new = block(x)
        finally:
            handle.remove()
        old = F.interpolate(self.to_rgb(seen[0]).tanh(), scale_factor=2.0, mode="nearest")
        return torch.lerp(old, new, float(alpha))
