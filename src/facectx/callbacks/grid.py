"""Sample grids: one row per validation face, the columns chosen by the model being trained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from facectx.pixels import to_uint8


def make_grid_image(columns: list[Tensor], size: int, pad: int = 2) -> np.ndarray:
    """Tile columns of (B, 3, h, w) images (each upsampled to ``size`` by nearest) into HxWx3."""
    cols = [F.interpolate(c.float(), size=(size, size), mode="nearest") for c in columns]
    b = cols[0].shape[0]
    canvas = torch.ones(3, b * (size + pad) + pad, len(cols) * (size + pad) + pad)
    for j, col in enumerate(cols):
        for i in range(b):
            y, x = pad + i * (size + pad), pad + j * (size + pad)
            canvas[:, y : y + size, x : x + size] = col[i].cpu()
    return to_uint8(canvas)


def _head(x: Any, n: int) -> Any:
    """The first ``n`` items of every tensor in a (nested) batch, copied off the loader."""
    if isinstance(x, Tensor):
        return x[:n].detach().clone()
    if isinstance(x, dict):
        return {k: _head(v, n) for k, v in x.items()}
    return x


class ImageGrid(pl.Callback):
    """Writes a grid of a fixed set of validation faces after every validation run.

    The module draws the grid: it names the batch entries to keep (``grid_keys``) and returns
    the columns for them (``grid_columns(batch)``, see ``GANModule``), so one callback serves
    every model. Files: ``<output_dir>/samples/epoch_<E>.png`` and ``samples/latest.png``; the
    grid also goes to every logger that takes images (TensorBoard, wandb).

    Args:
        output_dir: run folder; the grid is written under ``output_dir/samples``.
        num_images: rows in the grid (faces from the start of the validation set).
        every_n_epochs: write every N validation runs.
    """

    def __init__(self, output_dir: str, num_images: int = 8, every_n_epochs: int = 1) -> None:
        self.dir = Path(output_dir) / "samples"
        self.num_images = int(num_images)
        self.every_n_epochs = max(1, int(every_n_epochs))
        self._batch: dict | None = None

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ):
        if batch_idx == 0 and self._batch is None:
            self._batch = {k: _head(batch[k], self.num_images) for k in pl_module.grid_keys}

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self._batch is None or trainer.sanity_checking:
            return
        if trainer.current_epoch % self.every_n_epochs:
            return
        columns = pl_module.grid_columns(self._batch)
        grid = make_grid_image(columns, size=max(int(c.shape[-1]) for c in columns))
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"epoch_{trainer.current_epoch:03d}.png"
        Image.fromarray(grid).save(path)
        Image.fromarray(grid).save(self.dir / "latest.png")
        for logger in trainer.loggers:
            exp = getattr(logger, "experiment", None)
            if hasattr(exp, "add_image"):  # TensorBoard
                exp.add_image("samples", grid, trainer.current_epoch, dataformats="HWC")
            elif hasattr(logger, "log_image"):  # wandb
                logger.log_image(key="samples", images=[grid], step=trainer.global_step)
