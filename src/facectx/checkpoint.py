"""The checkpoint contract: safe loading with errors that name the file, and the typed record
every facectx checkpoint carries about its model (``checkpoint["facectx"]``).

Below every model kind and every front door (``inference``, ``pretrained.hallucinators``,
``export``, ``evaluate``, ``train``'s resume), so none of them imports another to read a file.
Modules write the record through ``GANModule.checkpoint_meta``; readers get it from
:func:`read_meta` only."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint file is unreadable or not a facectx checkpoint of the expected kind."""


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint safely (``weights_only``) with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupted, truncated, not a torch file, or unsafe content
        raise checkpoint_error(path, e) from e


def checkpoint_error(path: str | os.PathLike, e: BaseException) -> CheckpointError:
    """A :class:`CheckpointError` for a file torch could not load safely. torch's own message
    advises retrying with ``weights_only=False``, which would run whatever code an untrusted
    file carries: it is not passed on."""
    import pickle

    if isinstance(e, pickle.UnpicklingError):
        return CheckpointError(
            f"refusing to load checkpoint {path}: it holds Python objects other than tensors "
            "and plain values, which facectx never writes, and loading them could run code. "
            "Use a checkpoint written by `python -m facectx.train`."
        )
    return CheckpointError(
        f"cannot read checkpoint {path}: {type(e).__name__}: {str(e).splitlines()[0][:200]}. "
        "Is it a file written by `python -m facectx.train` (checkpoints/last.ckpt in the run "
        "folder)?"
    )


#: Where each kind keeps its inference network's constructor arguments in the on-disk record
#: (the keys facectx has always written: ``CascadeGenerator(**generator)``,
#: ``SwapInpaint.from_config(model)``).
INIT_ARGS_KEY = {"cascade": "generator", "swapinpaint": "model", "harmoniser": "harmoniser"}
_LABEL = {"cascade": "cascade", "swapinpaint": "SwapInpaint", "harmoniser": "harmoniser"}
_WRITTEN_BY = {
    "cascade": "a checkpoint written by `python -m facectx.train` with model=cascade (or progan)",
    "swapinpaint": "a checkpoint written by `python -m facectx.train "
    "experiment=swapinpaint_quickstart` (or another swapinpaint experiment)",
    "harmoniser": "a checkpoint written by `python -m facectx.train experiment=lfw_harmoniser`",
}
_CORE_KEYS = ("kind", "version", "ema", "frame", "iteration")


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint says about its model: enough to rebuild the inference network without
    Lightning or Hydra, and to align photos as the training data was aligned.

    Attributes:
        kind: ``cascade`` (the cascade and ProGAN, whose final checkpoint is a one-block
            cascade), ``swapinpaint`` or ``harmoniser`` (the exemplar model's context
            harmoniser).
        init_args: the inference network's constructor arguments.
        ema: whether the state dict holds EMA weights (``generator_ema.*``).
        frame: the canonical frame of the training data (its ``meta.json``); None when unknown
            (in-memory data, or a file written before frames were recorded).
        iteration: training iterations done; None in files written before it was recorded.
        version: the facectx version that wrote the file.
        extra: kind-specific fields, kept at the record's top level on disk: ``progan`` (growth
            state) for ProGAN; ``identity``, ``schedule``, ``stage``, ``content_iterations`` for
            SwapInpaint; ``dtype`` in packed generator files.
    """

    kind: str
    init_args: dict[str, Any]
    ema: bool = False
    frame: dict[str, Any] | None = None
    iteration: int | None = None
    version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in INIT_ARGS_KEY:
            raise ValueError(
                f"checkpoint kind must be one of {sorted(INIT_ARGS_KEY)}, got {self.kind!r}"
            )
        clash = set(self.extra) & {*_CORE_KEYS, *INIT_ARGS_KEY.values()}
        if clash:
            raise ValueError(f"extra fields {sorted(clash)} would overwrite the record's own keys")

    def to_dict(self) -> dict[str, Any]:
        """The on-disk record: the keys facectx has always written, ``extra`` at top level.
        An unknown ``iteration`` is left out, as packed generator files have always done, so a
        repack of the same checkpoint keeps the shipped file's bytes (and sha256)."""
        record = {
            "kind": self.kind,
            "version": self.version,
            INIT_ARGS_KEY[self.kind]: self.init_args,
            "ema": self.ema,
            "frame": self.frame,
            "iteration": self.iteration,
            **self.extra,
        }
        if self.iteration is None:
            del record["iteration"]
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> CheckpointMeta:
        """The record of an on-disk dict, old files included (missing frame, iteration or
        version read as None); ``ValueError`` when the kind or its init args are missing."""
        kind = record.get("kind")
        if kind not in INIT_ARGS_KEY:
            raise ValueError(f"unknown model kind {kind!r}")
        key = INIT_ARGS_KEY[kind]
        if not isinstance(record.get(key), Mapping):
            raise ValueError(f"no {key!r} entry (the {kind} network's constructor arguments)")
        iteration = record.get("iteration")
        return cls(
            kind=kind,
            init_args=dict(record[key]),
            ema=bool(record.get("ema")),
            frame=record.get("frame"),
            iteration=None if iteration is None else int(iteration),
            version=record.get("version"),
            extra={k: v for k, v in record.items() if k not in (*_CORE_KEYS, key)},
        )


def read_meta(
    checkpoint: Mapping[str, Any], path: str | os.PathLike, kind: str | None = None
) -> CheckpointMeta:
    """The model record of a loaded checkpoint (training checkpoint or packed file).

    Args:
        checkpoint: what :func:`load_checkpoint` returned.
        path: the file, for the messages.
        kind: the kind the caller can use (``cascade`` or ``swapinpaint``); None = any.

    Raises:
        CheckpointError: no record (not a facectx checkpoint), an unreadable or incomplete one,
            or one of another kind, in one line naming the file.
    """
    if kind is not None and kind not in INIT_ARGS_KEY:
        raise ValueError(f"kind must be one of {sorted(INIT_ARGS_KEY)} or None, got {kind!r}")
    label = f"facectx {_LABEL[kind]}" if kind else "facectx"
    hint = _WRITTEN_BY[kind] if kind else "a checkpoint written by `python -m facectx.train`"
    record = checkpoint.get("facectx") if isinstance(checkpoint, Mapping) else None
    if not isinstance(record, Mapping):
        raise CheckpointError(
            f"{path} is not a {label} checkpoint (no facectx metadata); pass {hint}."
        )
    have = record.get("kind")
    if kind is not None and have != kind:
        why = f"its facectx metadata says kind {have!r}" if have else "no model kind recorded"
        raise CheckpointError(f"{path} is not a {label} checkpoint ({why}); pass {hint}.")
    try:
        return CheckpointMeta.from_dict(record)
    except (ValueError, TypeError) as e:
        raise CheckpointError(
            f"{path} is not a {label} checkpoint (its facectx metadata is incomplete: {e}); "
            f"pass {hint}."
        ) from e


def check_finished(path: str | os.PathLike, meta: CheckpointMeta) -> None:
    """Refuse a ProGAN checkpoint saved before the network grew to its final size: it would
    make e.g. 8 px portraits where the run was meant to make 128 px ones."""
    progan = meta.extra.get("progan")
    if not isinstance(progan, dict) or "size" not in progan:
        return
    size, scales = int(progan["size"]), [int(s) for s in progan.get("scales") or []]
    final = scales[-1] if scales else size
    if size < final:
        epochs = sum(int(e) for e in progan.get("epochs_per_scale") or [])
        schedule = f" (trainer.max_epochs={epochs} completes the schedule)" if epochs else ""
        raise CheckpointError(
            f"{path} is a ProGAN checkpoint saved at {size} px, before the network grew to "
            f"{final} px: it makes {size}x{size} portraits where {final}x{final} are needed. "
            f"Train longer, resuming with ckpt_path={path}{schedule}, or pick a checkpoint of "
            f"the run saved at {final} px."
        )


__all__ = [
    "INIT_ARGS_KEY",
    "CheckpointError",
    "CheckpointMeta",
    "check_finished",
    "checkpoint_error",
    "load_checkpoint",
    "read_meta",
]
