"""The context harmoniser's loss (``facectx.zoo.harmoniser``): a pure function, no weights."""

from __future__ import annotations

import torch
from torch import Tensor

from facectx.losses.terms import pixel_l1
from facectx.zoo.exemplar import distance_to


def near_face_l1(
    output: Tensor,
    target: Tensor,
    keep: Tensor,
    valid: Tensor,
    near_gain: float = 3.0,
    near_scale: float = 12.0,
) -> Tensor:
    """:func:`~facectx.losses.terms.pixel_l1` over the context pixels inside the photo, weighted
    up near the face (× 1 + ``near_gain`` · exp(−distance / ``near_scale``)), where a lighting
    mismatch shows most. ``keep``, ``valid``: (B, 1, H, W) {0, 1}."""
    near = 1.0 + near_gain * torch.exp(-distance_to(keep) / near_scale)
    return pixel_l1(output, target, (1.0 - keep) * valid * near)


__all__ = ["near_face_l1"]
