"""Inference without Lightning: load a trained generator and hallucinate context."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor


class CheckpointError(ValueError):
    """A checkpoint file is unreadable or not a facectx checkpoint of the expected kind."""


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint safely (``weights_only``) with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupted, truncated or not a torch file
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(e).__name__}: {e}. Is it a file written by "
            f"`python -m facectx.train` (checkpoints/last.ckpt in the run folder)?"
        ) from e


class Hallucinator:
    """Hallucinate context and background around masked faces with a trained cascade.

    Input: canonical aligned faces (see ``facectx.faces.frame``) as ``masked`` (B,3,S,S) in
    [-1, 1] (black, i.e. -1, outside the face) and ``mask`` (B,1,S,S) keep-masks (1 = face).
    Output: (B,3,S,S) in [-1, 1]; face pixels are the input's, exactly.
    """

    def __init__(self, generator: torch.nn.Module, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.generator = generator.to(self.device).eval().requires_grad_(False)
        self.size = int(generator.sizes[-1])
        self.ema = False  # whether the weights are a checkpoint's EMA weights

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str | torch.device = "cpu", use_ema: bool = True
    ) -> Hallucinator:
        """Rebuild the generator from a ``facectx.train`` checkpoint (EMA weights if present)."""
        from facectx.zoo import CascadeGenerator

        ckpt = load_checkpoint(path)
        meta = ckpt.get("facectx")
        if not isinstance(meta, dict) or meta.get("kind") != "cascade":
            raise CheckpointError(
                f"{path} is not a facectx cascade checkpoint (no facectx/cascade metadata); "
                f"pass a checkpoint written by `python -m facectx.train` with model=cascade."
            )
        generator = CascadeGenerator(**meta["generator"])
        state = ckpt["state_dict"]
        prefix = "generator_ema." if use_ema and meta.get("ema") else "generator."
        weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        try:
            generator.load_state_dict(weights, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"{path}: generator weights do not match: {e}") from e
        out = cls(generator, device)
        out.ema = prefix == "generator_ema."
        return out

    @torch.inference_mode()
    def __call__(self, masked: Tensor, mask: Tensor) -> Tensor:
        if masked.ndim != 4 or masked.shape[1:] != (3, self.size, self.size):
            raise ValueError(
                f"masked must be (B, 3, {self.size}, {self.size}) canonical faces in [-1, 1], "
                f"got {tuple(masked.shape)}; prepare photos with `python -m facectx.prepare`."
            )
        out = self.generator.hallucinate(masked.to(self.device), mask.to(self.device))
        return out.clamp(-1, 1)
