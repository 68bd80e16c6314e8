"""Pretrained hallucinators that ship inside the package, and the file format they use.

A packed generator is one ``torch.save`` file holding ``{"facectx": metadata, "state_dict":
generator weights}``; the weights are stored in float16 (half the size; the model runs in
float32 after loading). The metadata is the checkpoint's ``facectx`` record (kind, generator
constructor arguments, canonical frame) plus where the weights came from. Packing is
deterministic: the same checkpoint gives the same bytes, so a shipped file's sha256 can be
reproduced from its training command (docs/model_card.md).

Shipped models are ordinary registry entries (``python -m facectx.weights list`` shows them);
``facectx.Hallucinator.from_pretrained(name)`` resolves, verifies and loads them offline.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from facectx.checkpoint import CheckpointMeta

_Module = TypeVar("_Module", bound=nn.Module)

#: torch dtypes a packed generator may be stored in.
PACK_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class PretrainedHallucinator:
    """A shipped model: its short name, the registry entry holding its file, and its kind
    (``cascade``: a packed generator; ``exemplar``: a packed exemplar bank,
    ``facectx.pretrained.exemplar_bank``, run by ``ExemplarHallucinator``)."""

    name: str
    entry: str
    summary: str
    kind: str = "cascade"


#: Short names accepted by ``Hallucinator.from_pretrained``.
PRETRAINED: dict[str, PretrainedHallucinator] = {
    "lfw-128": PretrainedHallucinator(
        name="lfw-128",
        entry="hallucinator-lfw-128",
        summary="cascade (1/8 width) trained on the LFW train split, 128 px; docs/model_card.md",
    ),
    "exemplar-lfw-128": PretrainedHallucinator(
        name="exemplar-lfw-128",
        entry="exemplar-bank-lfw-128",
        summary="exemplar retrieval over the LFW train split, 128 px; several contexts per face",
        kind="exemplar",
    ),
}

#: The network used when a tool that runs or exports a generator (``evaluate``, ``export``,
#: ``augment``) gets no ``ckpt=``.
DEFAULT_PRETRAINED = "lfw-128"
#: The model of ``hallucinate``, the web demo and ``Hallucinator.from_pretrained()`` without a
#: name: the exemplar model, which beat ``lfw-128`` and nearest-neighbour paste on FID on LFW
#: test and Caltech and gives several contexts per face (docs/results.md §4).
DEFAULT_PORTRAIT = "exemplar-lfw-128"
#: The exemplar model ``bank=pretrained`` names.
DEFAULT_EXEMPLAR = "exemplar-lfw-128"


def pack_generator(
    generator: nn.Module, meta: dict, path: str | os.PathLike, dtype: str = "float16"
) -> Path:
    """Write ``generator``'s weights (cast to ``dtype``) and ``meta`` to ``path`` atomically.

    The bytes depend only on the weights and the metadata (no timestamps): torch's zip writer
    stores fixed record names, so two packs of the same checkpoint are identical.
    """
    if dtype not in PACK_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(PACK_DTYPES)}, got {dtype!r}")
    state = {
        k: (v.detach().to(PACK_DTYPES[dtype]) if v.is_floating_point() else v.detach()).cpu()
        for k, v in generator.state_dict().items()
    }
    return save_record({"facectx": {**meta, "dtype": dtype}, "state_dict": state}, path)


def save_record(record: dict, path: str | os.PathLike) -> Path:
    """``torch.save`` ``record`` to ``path`` atomically (a temporary file, then a rename; its
    folder is created): the file is whole or absent, never half written."""
    buf = io.BytesIO()
    torch.save(record, buf)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def is_packed(ckpt: dict) -> bool:
    """Whether a loaded file is a packed generator (not a Lightning training checkpoint)."""
    meta = ckpt.get("facectx")
    return isinstance(meta, dict) and "dtype" in meta and "optimizer_states" not in ckpt


def resolve_pretrained(name: str, path: str | os.PathLike | None = None) -> Path:
    """Verified path of a shipped model's file (explicit path, $FACECTX_WEIGHTS, hub cache, the
    package); raises ``UnknownModelError`` (a ``KeyError``) naming the shipped models for an
    unknown name, ``WeightsNotFoundError`` / ``ChecksumError`` as the registry does."""
    from facectx.pretrained import registry

    if name not in PRETRAINED:
        raise registry.UnknownModelError(
            f"unknown pretrained hallucinator {name!r}; shipped with facectx: "
            f"{', '.join(sorted(PRETRAINED))} (ckpt=pretrained:NAME, or ckpt=PATH for your own)"
        )
    return registry.resolve(PRETRAINED[name].entry, path=path, download=False)


def load_packed_weights(module: _Module, ckpt: dict, path: str | os.PathLike, what: str) -> _Module:
    """``module`` (its architecture from the record) with a packed file's weights, stored in
    float16 / bfloat16 / float32, loaded strictly as float32; in eval mode, without gradients.
    ``ckpt`` is the loaded file, ``path`` and ``what`` (the weights' name) are for the
    ``CheckpointError`` raised when the weights do not fit."""
    from facectx.checkpoint import CheckpointError

    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: {what} weights do not match: {e}") from e
    return module.eval().requires_grad_(False)


def load_packed_record(path: str | os.PathLike) -> tuple[nn.Module, CheckpointMeta]:
    """(float32 CascadeGenerator in eval mode, its record) from a packed generator file."""
    from facectx.checkpoint import CheckpointError, load_checkpoint, read_meta
    from facectx.zoo import CascadeGenerator

    ckpt = load_checkpoint(path)
    if not is_packed(ckpt) or ckpt["facectx"].get("kind") != "cascade":
        raise CheckpointError(
            f"{path} is not a packed facectx cascade generator; write one with "
            f"`python -m facectx.export ckpt=RUN/checkpoints/last.ckpt format=packed output=...`"
        )
    meta = read_meta(ckpt, path, "cascade")
    generator = CascadeGenerator(**meta.init_args)
    return load_packed_weights(generator, ckpt, path, "generator"), meta


def load_packed(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """(float32 CascadeGenerator in eval mode, metadata as the on-disk dict) from a packed
    generator file; :func:`load_packed_record` gives the typed record."""
    generator, meta = load_packed_record(path)
    return generator, meta.to_dict()


def build_generator(fetch, **_: object) -> nn.Module:
    """Registry builder: the shipped generator (``facectx.pretrained.load(entry)``)."""
    path = fetch("weights")
    if path is None:
        raise ValueError("a pretrained hallucinator cannot be built with random weights")
    return load_packed(path)[0]
