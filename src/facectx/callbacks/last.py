"""``last.ckpt`` that really is the newest training state."""

from __future__ import annotations

import os
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerFn


class LastCheckpoint(pl.Callback):
    """Writes ``<dirpath>/<filename>`` after every training epoch and when fit ends.

    Lightning 2.6's ``ModelCheckpoint(save_last=True)`` refreshes ``last.ckpt`` only in steps
    where it also saved a top-k checkpoint, so beside a monitored "best" checkpoint the file froze
    at the last improvement, and a stop by ``trainer.max_time`` lost everything after it. This
    callback also saves at the end of fit (a ``max_time``/``max_steps`` stop mid-epoch included;
    resuming from it continues exactly, like any mid-epoch checkpoint). ``Trainer.save_checkpoint``
    writes through an fsspec transaction, so an interrupted save never leaves a truncated file.
    """

    def __init__(self, dirpath: str | os.PathLike, filename: str = "last.ckpt") -> None:
        self.path = Path(dirpath) / filename
        self._saved_step: int | None = None

    @property
    def last_model_path(self) -> str:
        return str(self.path) if self.path.exists() else ""

    def _save(self, trainer: pl.Trainer) -> None:
        if (
            trainer.fast_dev_run
            or trainer.sanity_checking
            or trainer.state.fn != TrainerFn.FITTING
            or self._saved_step == trainer.global_step
        ):
            return
        trainer.save_checkpoint(self.path, weights_only=False)  # all ranks; rank 0 writes
        self._saved_step = trainer.global_step

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer)
