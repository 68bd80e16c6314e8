"""Lightning callbacks: sample grids, RNG state for exact resume, an honest ``last.ckpt``."""

from facectx.callbacks.budget import IterationBudget
from facectx.callbacks.grid import ImageGrid, make_grid_image
from facectx.callbacks.last import LastCheckpoint
from facectx.callbacks.rng import RNGState

__all__ = ["ImageGrid", "IterationBudget", "LastCheckpoint", "RNGState", "make_grid_image"]
