"""Lightning callbacks: sample grids, RNG state for exact resume, an honest ``last.ckpt``,
iteration budgets and a per-epoch log line."""

from facectx.callbacks.budget import IterationBudget
from facectx.callbacks.grid import ImageGrid, make_grid_image
from facectx.callbacks.last import LastCheckpoint
from facectx.callbacks.layout import ChannelsLast
from facectx.callbacks.progress import EpochLog
from facectx.callbacks.rng import RNGState

__all__ = [
    "ChannelsLast",
    "EpochLog",
    "ImageGrid",
    "IterationBudget",
    "LastCheckpoint",
    "RNGState",
    "make_grid_image",
]
