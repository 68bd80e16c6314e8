"""Mask generators: pure functions of (shape, landmarks, generator)."""

from facectx.masks.hull import hull_mask

__all__ = ["hull_mask"]
