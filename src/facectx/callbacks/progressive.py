"""Callbacks for progressively grown models (``facectx.modules.progan.ProGAN``)."""

from __future__ import annotations

import logging

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

log = logging.getLogger("facectx.progan")


class ResetBestOnGrowth(pl.Callback):
    """Restart "best checkpoint" tracking whenever a progressive model grows to a new scale.

    A ProGAN run logs ``val/context_l1`` at the current scale, so values at 8 px and at 128 px are
    not comparable: without this callback the "best" checkpoint is usually a small block. At each
    growth every ``ModelCheckpoint`` with a ``monitor`` forgets its best scores, so from then on
    ``best-*.ckpt`` is the best of the current scale; the earlier scale's best file stays on disk
    (one per scale) and the run's final ``best_model_path`` is the best block_<final> checkpoint.

    Works with any module that has ``current_size`` and ``scale_at_epoch(epoch)``; does nothing
    for other modules.
    """

    def __init__(self) -> None:
        self._size: int | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._size = getattr(pl_module, "current_size", None)  # after any checkpoint restore

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # runs before the module's own on_train_epoch_start, which does the growing
        scale_at = getattr(pl_module, "scale_at_epoch", None)
        if scale_at is None or self._size is None:
            return
        target = int(scale_at(trainer.current_epoch))
        if target <= self._size:
            return
        for cb in trainer.checkpoint_callbacks:
            if isinstance(cb, ModelCheckpoint) and cb.monitor is not None:
                reset_best(cb)
                log.info(
                    "size %d -> %d: best-checkpoint tracking (%s) restarts",
                    self._size,
                    target,
                    cb.monitor,
                )
        self._size = target


def reset_best(cb: ModelCheckpoint) -> None:
    """Forget ``cb``'s best-k bookkeeping (files already written are kept)."""
    cb.best_k_models = {}
    cb.kth_best_model_path = ""
    cb.kth_value = torch.tensor(float("inf") if cb.mode == "min" else float("-inf"))
    cb.best_model_score = None
    cb.best_model_path = ""
    cb.current_score = None
