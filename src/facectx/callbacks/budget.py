"""Training budgets in iterations (generator updates), with snapshots along the way."""

from __future__ import annotations

import os
from pathlib import Path

import pytorch_lightning as pl


def module_iteration(pl_module: pl.LightningModule) -> int:
    """The module's own iteration counter (generator updates), or Lightning's ``global_step``
    for a module without one."""
    it = getattr(pl_module, "iteration", None)
    return int(it) if it is not None else int(pl_module.global_step)


class IterationBudget(pl.Callback):
    """Stops training after ``max_iterations`` generator updates and keeps snapshots.

    Lightning's ``max_steps`` counts optimiser steps, which differ between models (a GAN
    iteration with a discriminator step is two, one without): the module's own ``iteration``
    buffer counts what a recipe means. Stopping on it, not the clock, makes a recipe reproduce
    the same weights on any machine. Every ``snapshot_every`` iterations a checkpoint
    ``<dirpath>/iter{N:06d}.ckpt`` is written (the training curve of docs/results.md is
    validation FID against these).

    Args:
        max_iterations: stop once the module's ``iteration`` reaches this (None = no limit).
        snapshot_every: snapshot period in iterations (0 = none).
        dirpath: folder for the snapshots.
    """

    def __init__(
        self,
        max_iterations: int | None = None,
        snapshot_every: int = 0,
        dirpath: str | os.PathLike | None = None,
    ) -> None:
        if max_iterations is not None and max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1 or null, got {max_iterations}")
        if snapshot_every < 0:
            raise ValueError(f"snapshot_every must be >= 0, got {snapshot_every}")
        if snapshot_every and dirpath is None:
            raise ValueError("IterationBudget: snapshot_every needs a dirpath")
        self.max_iterations = max_iterations
        self.snapshot_every = snapshot_every
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self._last_snapshot: int | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        it = module_iteration(pl_module)
        if (
            self.snapshot_every
            and it > 0
            and it % self.snapshot_every == 0
            and it != self._last_snapshot
        ):
            trainer.save_checkpoint(self.dirpath / f"iter{it:06d}.ckpt", weights_only=False)
            self._last_snapshot = it
        if self.max_iterations is not None and it >= self.max_iterations:
            if not trainer.should_stop:
                pl_module.print(f"iteration budget reached: {it} iterations; stopping")
            trainer.should_stop = True
