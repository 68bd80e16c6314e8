"""Pretrained SwapInpaint models that ship inside the package, and their packed file format.

A packed SwapInpaint file is the packed-generator format of ``facectx.pretrained.hallucinators``
(one ``torch.save`` file ``{"facectx": metadata, "state_dict": weights}``, weights in float16,
deterministic bytes) holding C and G (``facectx.zoo.swapinpaint.SwapInpaint``: keys
``content.*`` and ``swap.*``; the EMA weights when the checkpoint has them). The metadata is the
``swapinpaint`` checkpoint record (constructor arguments of C and G under ``model``, the identity
network's name and feature size under ``identity``, the canonical frame, ``ema``) plus ``size``,
``width`` and ``dtype``. The identity encoder I is not in the file: it is loaded by name through
``facectx.pretrained.load``, as for a training checkpoint.

``facectx.Inpainter.from_pretrained(name)`` resolves, verifies and loads a shipped model
offline; ``python -m facectx.export format=packed ckpt=RUN/checkpoints/last.ckpt output=...``
writes the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facectx.checkpoint import CheckpointMeta

if TYPE_CHECKING:
    from torch import nn

    from facectx.zoo.swapinpaint import SwapInpaint


@dataclass(frozen=True)
class PretrainedInpainter:
    """A shipped SwapInpaint model: its short name and the registry entry holding its file."""

    name: str
    entry: str
    summary: str


#: Short names accepted by ``Inpainter.from_pretrained`` and ``ckpt=pretrained:NAME``.
PRETRAINED_INPAINTERS: dict[str, PretrainedInpainter] = {
    "lfw-swap-128": PretrainedInpainter(
        name="lfw-swap-128",
        entry="inpainter-lfw-swap-128",
        summary="SwapInpaint (C + EMA G, 1/8 width) trained on the LFW train split, 128 px, "
        "dlib-resnet identity; docs/swapinpaint.md",
    ),
}

#: The model ``inpaint`` and the app's Inpaint tab use when they get no checkpoint.
DEFAULT_INPAINTER = "lfw-swap-128"


def packed_meta(
    model: SwapInpaint,
    identity: dict,
    ema: bool = False,
    frame: dict | None = None,
    iteration: int | None = None,
    stage: str | None = None,
) -> CheckpointMeta:
    """The record of a packed SwapInpaint file.

    Args:
        model: the C and G to pack.
        identity: ``{"name": registry entry, "feature_dim": D}`` of the identity network I.
        ema: whether the weights are EMA weights.
        frame: the canonical frame of the training data (its meta.json), or None.
        iteration: training iterations done, or None.
        stage: the training stage the weights were saved in (``content`` warns on loading).
    """
    from facectx._version import __version__

    if not {"name", "feature_dim"} <= set(identity):
        raise ValueError(f"identity must name the network and its feature_dim, got {identity}")
    extra = {
        "identity": {"name": str(identity["name"]), "feature_dim": int(identity["feature_dim"])},
        "size": int(model.size),
        "width": float(model.content.config["width"]),
    }
    if stage is not None:
        extra["stage"] = str(stage)
    return CheckpointMeta(
        kind="swapinpaint",
        init_args=model.config,
        ema=bool(ema),
        frame=frame,
        iteration=iteration,
        version=__version__,
        extra=extra,
    )


def pack_swapinpaint(
    model: SwapInpaint, meta: CheckpointMeta, path: str | os.PathLike, dtype: str = "float16"
) -> Path:
    """Write C and G (cast to ``dtype``) with ``meta`` (:func:`packed_meta`) to ``path``
    atomically; the same weights and record give the same bytes."""
    from facectx.pretrained.hallucinators import pack_generator

    if meta.kind != "swapinpaint":
        raise ValueError(f"a packed SwapInpaint file needs a swapinpaint record, got {meta.kind!r}")
    return pack_generator(model, meta.to_dict(), path, dtype=dtype)


def pack_checkpoint(
    ckpt: str | os.PathLike, path: str | os.PathLike, use_ema: bool = True, dtype: str = "float16"
) -> tuple[SwapInpaint, CheckpointMeta, Path]:
    """Pack a SwapInpaint training checkpoint (EMA weights when present and ``use_ema``), or
    repack a packed file (its record kept, ``dtype`` new): ``(the float32 model packed, its
    record, the file written)``."""
    from facectx.checkpoint import CheckpointError, load_checkpoint, read_meta
    from facectx.zoo.swapinpaint import SwapInpaint

    loaded = load_checkpoint(ckpt)
    if is_packed_swapinpaint(loaded):
        model, meta = packed_model(loaded, ckpt)
        return model, meta, pack_swapinpaint(model, meta, path, dtype=dtype)
    meta = read_meta(loaded, ckpt, "swapinpaint")
    model = SwapInpaint.from_config(meta.init_args)
    ema = bool(use_ema and meta.ema)
    prefix = "generator_ema." if ema else "generator."
    state = {k[len(prefix) :]: v for k, v in loaded["state_dict"].items() if k.startswith(prefix)}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{ckpt}: SwapInpaint weights do not match: {e}") from e
    identity = meta.extra.get("identity") or {}
    if "name" not in identity:
        raise CheckpointError(f"{ckpt} does not name its identity network")
    identity = {"name": identity["name"], "feature_dim": model.swap.id_dim}
    record = packed_meta(model, identity, ema, meta.frame, meta.iteration, meta.extra.get("stage"))
    return model.eval(), record, pack_swapinpaint(model, record, path, dtype=dtype)


def is_packed_swapinpaint(ckpt: dict) -> bool:
    """Whether a loaded file is a packed SwapInpaint model."""
    from facectx.pretrained.hallucinators import is_packed

    return is_packed(ckpt) and ckpt["facectx"].get("kind") == "swapinpaint"


def load_packed_inpainter(path: str | os.PathLike) -> tuple[SwapInpaint, CheckpointMeta]:
    """(float32 C and G in eval mode, their record) from a packed SwapInpaint file."""
    from facectx.checkpoint import load_checkpoint

    return packed_model(load_checkpoint(path), path)


def packed_model(ckpt: dict, path: str | os.PathLike) -> tuple[SwapInpaint, CheckpointMeta]:
    """:func:`load_packed_inpainter` of a file already loaded (``path`` for the messages)."""
    from facectx.checkpoint import CheckpointError, read_meta
    from facectx.pretrained.hallucinators import is_packed, load_packed_weights
    from facectx.zoo.swapinpaint import SwapInpaint

    if not is_packed_swapinpaint(ckpt):
        what = ""
        if is_packed(ckpt) and ckpt["facectx"].get("kind") == "cascade":
            what = (
                " (it is a packed cascade hallucinator: load it with "
                "facectx.Hallucinator.from_checkpoint or `python -m facectx.hallucinate ckpt=...`)"
            )
        raise CheckpointError(
            f"{path} is not a packed facectx SwapInpaint model{what}; write one with "
            "`python -m facectx.export format=packed ckpt=RUN/checkpoints/last.ckpt output=...`"
        )
    meta = read_meta(ckpt, path, "swapinpaint")
    model = SwapInpaint.from_config(meta.init_args)
    return load_packed_weights(model, ckpt, path, "SwapInpaint"), meta


def resolve_inpainter(name: str, path: str | os.PathLike | None = None) -> Path:
    """Verified path of a shipped SwapInpaint model's file (explicit path, $FACECTX_WEIGHTS,
    hub cache, the package); ``UnknownModelError`` naming the shipped models for an unknown
    name, ``WeightsNotFoundError`` / ``ChecksumError`` as the registry raises them."""
    from facectx.pretrained import registry
    from facectx.pretrained.hallucinators import PRETRAINED

    if name not in PRETRAINED_INPAINTERS:
        hint = (
            f"; {name!r} is a shipped context hallucinator: python -m facectx.hallucinate "
            f"ckpt=pretrained:{name}"
            if name in PRETRAINED
            else ""
        )
        raise registry.UnknownModelError(
            f"unknown pretrained SwapInpaint model {name!r}; shipped with facectx: "
            f"{', '.join(sorted(PRETRAINED_INPAINTERS))} (ckpt=pretrained:NAME), or pass "
            "ckpt=PATH to your own (`python -m facectx.train experiment=swapinpaint_quickstart` "
            f"trains one){hint}"
        )
    return registry.resolve(PRETRAINED_INPAINTERS[name].entry, path=path, download=False)


def build_inpainter(fetch, **_: object) -> nn.Module:
    """Registry builder: the shipped C and G (``facectx.pretrained.load(entry)``); the identity
    network it was trained with is named in the file's record."""
    path = fetch("weights")
    if path is None:
        raise ValueError("a pretrained SwapInpaint model cannot be built with random weights")
    return load_packed_inpainter(path)[0]


__all__ = [
    "DEFAULT_INPAINTER",
    "PRETRAINED_INPAINTERS",
    "PretrainedInpainter",
    "build_inpainter",
    "is_packed_swapinpaint",
    "load_packed_inpainter",
    "pack_checkpoint",
    "pack_swapinpaint",
    "packed_meta",
    "packed_model",
    "resolve_inpainter",
]
