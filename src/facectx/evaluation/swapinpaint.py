"""Reference-guided methods for SwapInpaint's Table I (``facectx.evaluate reference=cross``).

| row | fills the hole with |
|---|---|
| ``SwapInpaintMethod(output="blended")`` | Y_sp Poisson-blended into the incomplete image: what ``facectx.inpaint`` outputs |
| ``SwapInpaintMethod(output="composite")`` | Y: Y_sp's hole pasted onto the input, no blending (the training output) |
| ``SwapInpaintMethod(output="content")`` | X̂ alone: the content-inference module's completion, no identity (a baseline) |
| ``PasteReference`` | the reference face's pixels at the same place of the canonical frame, Poisson-blended (a baseline) |

All read only ``masked``, ``mask`` and ``reference`` of the batch and keep the known pixels
exactly. Several rows of one checkpoint share one loaded model and one forward pass per batch.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from facectx._conf import ConfigError
from facectx.evaluation.method import Method, ok, paste_face
from facectx.pixels import from_uint8, to_uint8

OUTPUTS = ("blended", "composite", "content")


def blend_batch(masked: Tensor, source: Tensor, mask: Tensor, dilate: int) -> Tensor:
    """Poisson-blend each ``source`` into its incomplete image inside the hole (mask < 0.5).

    ``seamlessClone``'s normal mode reads the destination only outside the hole (its boundary
    and gradients there), so the black hole of ``masked`` does not matter.
    """
    from facectx.blend import poisson_blend

    dst, src = to_uint8(masked), to_uint8(source)
    holes = (mask[:, 0] < 0.5).cpu().numpy()
    out = np.stack(
        [poisson_blend(dst[k], src[k], holes[k], dilate=dilate) for k in range(len(dst))]
    )
    return from_uint8(out).to(masked.device)


class _SharedRun:
    """One loaded SwapInpaint model and its outputs on the latest batch, shared by rows."""

    def __init__(self, ckpt: Path, use_ema: bool) -> None:
        self.ckpt, self.use_ema = ckpt, use_ema
        self.inpainter = None
        self._key: tuple | None = None
        self._out: dict[str, Tensor] = {}

    def setup(self, size: int, device: torch.device) -> None:
        from facectx.inference import Inpainter

        if self.inpainter is None:
            self.inpainter = Inpainter.from_checkpoint(
                self.ckpt, device=device, use_ema=self.use_ema
            )
        if self.inpainter.size != size:
            raise ConfigError(
                f"{self.ckpt} inpaints {self.inpainter.size} px faces but the evaluated faces are "
                f"{size} px; evaluate on a folder prepared with size={self.inpainter.size}."
            )

    def __call__(self, batch: dict) -> dict[str, Tensor]:
        key = (tuple(batch["id"]), tuple(batch.get("reference_id", ())))
        if key != self._key:
            out = self.inpainter(batch["masked"], batch["mask"], batch["reference"])
            self._out = {k: v.to(batch["masked"].device) for k, v in out.items()}
            self._key = key
        return self._out


_RUNS: dict[tuple[str, bool], _SharedRun] = {}


class SwapInpaintMethod(Method):
    """A trained SwapInpaint checkpoint (``facectx.inference.Inpainter``) on the reference pairs.

    Args:
        ckpt: checkpoint written by ``facectx.train`` with a swapinpaint experiment.
        name: row label; None = ``<run folder>/<checkpoint stem>`` (+ ``/content`` etc.).
        use_ema: use the EMA weights when the checkpoint has them.
        output: ``blended`` (the model's prediction), ``composite`` (Y, no blending) or
            ``content`` (X̂ only: the no-identity baseline).
        dilate: pixels the Poisson clone region extends beyond the hole (``blended``).
    """

    needs_reference = True

    def __init__(
        self,
        ckpt: str | os.PathLike,
        name: str | None = None,
        use_ema: bool = True,
        output: str = "blended",
        dilate: int = 5,
    ) -> None:
        from facectx.evaluation.external import _run_label

        if output not in OUTPUTS:
            raise ConfigError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.ckpt = Path(ckpt).expanduser().resolve()
        self.output = output
        self.use_ema = bool(use_ema)
        self.dilate = int(dilate)
        base = _run_label(self.ckpt)
        self.name = name or (base if output == "blended" else f"{base}/{output}")
        self.kind = "baseline" if output == "content" else "checkpoint"
        key = (str(self.ckpt), self.use_ema)
        self._run = _RUNS.setdefault(key, _SharedRun(self.ckpt, self.use_ema))

    def setup(self, size: int, device: torch.device) -> None:
        self._run.setup(size, device)

    def predict(self, batch: dict):
        out = self._run(batch)
        masked, mask = batch["masked"], batch["mask"]
        if self.output == "blended":
            return ok(blend_batch(masked, out["swapped"], mask, self.dilate))
        fill = out["output"] if self.output == "composite" else out["content"]
        return ok(paste_face(masked, (mask > 0.5).float(), fill))

    def finish(self, evaluated_ids: set[str]) -> list[str]:
        _RUNS.pop((str(self.ckpt), self.use_ema), None)  # free the model after the run
        return []

    def describe(self) -> str:
        what = {
            "blended": "Y_sp Poisson-blended into the hole",
            "composite": "Y = Y_sp's hole on the input, no blending",
            "content": "X̂ only (content inference, no identity)",
        }[self.output]
        inp = self._run.inpainter
        ema = inp.ema if inp is not None else self.use_ema
        return f"{self.name}: SwapInpaint checkpoint {self.ckpt} ({'EMA' if ema else 'raw'} weights), {what}"


class PasteReference(Method):
    """The reference face's own pixels in the hole, Poisson-blended (both faces are aligned to
    the same canonical frame, so the hole covers the same part of both).

    Args:
        name: row label.
        blend: Poisson blending (the paper's ``seamlessClone``); False = plain paste.
        dilate: pixels the clone region extends beyond the hole.
    """

    needs_reference = True

    def __init__(self, name: str = "paste_reference", blend: bool = True, dilate: int = 5):
        self.name = name
        self.blend = bool(blend)
        self.dilate = int(dilate)

    def predict(self, batch: dict):
        masked, mask, ref = batch["masked"], batch["mask"], batch["reference"]
        if self.blend:
            return ok(blend_batch(masked, ref, mask, self.dilate))
        return ok(paste_face(masked, (mask > 0.5).float(), ref))

    def describe(self) -> str:
        how = "Poisson-blended" if self.blend else "pasted"
        return f"{self.name}: the reference's aligned pixels {how} into the hole"


def checkpoint_kind(path: str | os.PathLike) -> str | None:
    """The ``facectx`` kind a checkpoint records (``cascade``, ``swapinpaint``), or None when it
    has no usable record (the cascade loader then says what is wrong with it)."""
    from facectx.checkpoint import CheckpointError, load_checkpoint, read_meta

    try:  # memory-mapped: reads only the metadata's pages of a multi-GB file
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        ckpt = load_checkpoint(path)  # raises with a message naming the file
    try:
        return read_meta(ckpt, path).kind
    except CheckpointError:
        return None


__all__ = ["OUTPUTS", "PasteReference", "SwapInpaintMethod", "blend_batch", "checkpoint_kind"]
