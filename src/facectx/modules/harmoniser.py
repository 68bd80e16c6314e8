"""LightningModule for the context harmoniser (:mod:`facectx.zoo.harmoniser`).

Self-supervised: every training photo's context is re-lit at random
(:func:`~facectx.zoo.harmoniser.relight_context`) and the network learns to undo it, seeing
the untouched face. There is no discriminator; the module still derives from ``GANModule`` for
what every facectx model shares: its own iteration counter (what ``trainer.max_steps``
counts), the NaN policy, the optional EMA and the checkpoint record.

The re-lighting draws come from a generator seeded by ``(seed, iteration)``, not the global
RNG, so a resumed run re-lights exactly as an uninterrupted one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from facectx.checkpoint import CheckpointMeta
from facectx.data.transforms import seeded_generator
from facectx.losses.harmoniser import near_face_l1
from facectx.losses.terms import pixel_l1
from facectx.modules.gan_base import GANModule
from facectx.zoo.harmoniser import ContextHarmoniser, relight_context

_TRAIN, _VAL = 0x4A12, 0x4A13  # purpose tags of the re-lighting streams


class HarmoniserModule(GANModule):
    """Trains a :class:`ContextHarmoniser` to undo a random re-lighting of the context.

    Batches come from ``facectx.data.FaceDataModule`` (``image``, ``mask``: the stored face
    hull, ``valid``); the face the harmoniser keeps is ``mask`` × ``valid``.

    Args:
        harmoniser: the network.
        optimizer: partial optimiser for its parameters (Hydra ``_partial_: true``).
        relight: keyword arguments of ``relight_context`` (strengths of the re-lighting);
            None = its defaults.
        near_gain, near_scale: ``near_face_l1``'s weighting toward the face.
        seed: base of the re-lighting streams.
        grad_clip: max gradient norm, None = no clipping.
        ema_decay, ema_start, nan_policy, nan_max_skips: as ``GANModule``.
    """

    grid_keys = ("image", "mask", "valid")

    def __init__(
        self,
        harmoniser: ContextHarmoniser,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        relight: Mapping[str, float] | None = None,
        near_gain: float = 3.0,
        near_scale: float = 12.0,
        seed: int = 0,
        grad_clip: float | None = None,
        ema_decay: float | None = None,
        ema_start: int = 0,
        nan_policy: str = "raise",
        nan_max_skips: int = 10,
    ) -> None:
        super().__init__(
            optimizer_g=optimizer or (lambda p: torch.optim.Adam(p, lr=2e-4, betas=(0.9, 0.99))),
            grad_clip_g=grad_clip,
            ema_decay=ema_decay,
            ema_start=ema_start,
            nan_policy=nan_policy,
            nan_max_skips=nan_max_skips,
        )
        self.generator = harmoniser
        self.relight = dict(relight or {})
        try:  # unknown strengths fail here, not at the first batch
            inspect.signature(relight_context).bind_partial(**self.relight)
        except TypeError as e:
            raise TypeError(f"relight_context() {e}") from None
        self.near_gain = float(near_gain)
        self.near_scale = float(near_scale)
        self.seed = int(seed)
        self.setup_ema()

    # ---- the one update ---------------------------------------------------------------------
    def configure_optimizers(self):
        return self._optimizer_g(list(self.generator_parameters()))

    @staticmethod
    def _inputs(batch: dict) -> tuple[Tensor, Tensor, Tensor]:
        valid = batch["valid"].to(batch["image"].dtype)
        return batch["image"], batch["mask"].to(valid.dtype) * valid, valid

    def relit(self, image: Tensor, kept: Tensor, generator: torch.Generator) -> Tensor:
        """``image`` with its context re-lit (drawn on the CPU, where the generator lives)."""
        with torch.no_grad():
            out = relight_context(image.cpu(), kept.cpu(), generator, **self.relight)
        return torch.empty_like(image).copy_(out)  # image's device and memory layout

    def loss_terms(self, output: Tensor, image: Tensor, kept: Tensor, valid: Tensor) -> dict:
        """Every term, raw (there is one, weight 1: ``loss`` is it)."""
        term = near_face_l1(output, image, kept, valid, self.near_gain, self.near_scale)
        return {"near_face_l1": term}

    def training_step(self, batch: dict, batch_idx: int) -> None:
        opt = self.optimizers()
        image, kept, valid = self._inputs(batch)
        relit = self.relit(image, kept, seeded_generator(self.seed, int(self.iteration), _TRAIN))
        logs = self.loss_terms(self.generator(relit, kept, valid), image, kept, valid)
        loss = logs["near_face_l1"]
        logs["loss"] = loss
        if not self._check_finite(loss, logs, "harmoniser"):
            return
        self._step(opt, loss, self.grad_clip_g)
        self.end_iteration(batch, logs)

    # ---- validation, grids, checkpoints -------------------------------------------------------
    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """The same re-lighting of each val batch every time: ``val/context_l1`` (what the
        best checkpoint is chosen by) against ``val/input_context_l1``, the error left if the
        network did nothing."""
        image, kept, valid = self._inputs(batch)
        relit = self.relit(image, kept, seeded_generator(self.seed, batch_idx, _VAL))
        out = self.inference_generator()(relit, kept, valid)
        context = (1.0 - kept) * valid
        n = image.shape[0]
        logs = {
            "val/context_l1": pixel_l1(out, image, context),
            "val/input_context_l1": pixel_l1(relit, image, context),
            "val/near_face_l1": self.loss_terms(out, image, kept, valid)["near_face_l1"],
        }
        self.log_dict(logs, batch_size=n, sync_dist=True)

    def grid_columns(self, batch: dict) -> list[Tensor]:
        """Re-lit input | harmonised | original."""
        image, kept, valid = self._inputs(batch)
        relit = self.relit(image, kept, seeded_generator(self.seed, 0, _VAL))
        return [relit, self.inference_generator()(relit, kept, valid), image]

    def checkpoint_meta(self) -> CheckpointMeta:
        net = self.generator
        return self.make_meta("harmoniser", {"width": net.width, "scale": net.scale})


__all__ = ["HarmoniserModule"]
