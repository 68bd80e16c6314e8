"""Lightning callbacks: sample grids, RNG state for exact resume."""

from facectx.callbacks.grid import ImageGrid, make_grid_image
from facectx.callbacks.rng import RNGState

__all__ = ["ImageGrid", "RNGState", "make_grid_image"]
