"""The checkpoint contract's reading side: safe loading with errors that name the file.

Below every model kind and every front door (``inference``, ``pretrained.hallucinators``,
``export``, ``evaluate``, ``train``'s resume), so none of them imports another to read a file."""

from __future__ import annotations

import os
from pathlib import Path

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


def check_finished(path: str | os.PathLike, meta: dict) -> None:
    """Refuse a ProGAN checkpoint saved before the network grew to its final size: it would
    make e.g. 8 px portraits where the run was meant to make 128 px ones."""
    progan = meta.get("progan")
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


__all__ = ["CheckpointError", "check_finished", "checkpoint_error", "load_checkpoint"]
