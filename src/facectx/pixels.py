"""The one conversion between 8-bit RGB pixels and the models' [-1, 1] float tensors.

A pixel value v in 0..255 is v / 127.5 - 1; back, (x + 1) * 127.5 clamped and rounded to the
nearest level. Arrays are channels-last (H, W, 3), tensors channels-first (3, H, W); any
leading batch dimensions are kept.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def uint8_to_unit(x: Tensor) -> Tensor:
    """uint8 tensor (any layout) -> float32 in [-1, 1], same layout."""
    return x.float().div_(127.5).sub_(1.0)


def unit_to_uint8(x: Tensor) -> Tensor:
    """Float tensor in [-1, 1] (any layout) -> uint8 tensor, same layout and device."""
    return ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5).round_().to(torch.uint8)


def from_uint8(a: np.ndarray) -> Tensor:
    """(..., H, W, 3) uint8 array -> (..., 3, H, W) float32 tensor in [-1, 1]."""
    a = np.ascontiguousarray(a)
    if not a.flags.writeable:  # np.asarray(PIL image) is read-only; torch warns on those
        a = a.copy()
    return uint8_to_unit(torch.from_numpy(a).movedim(-1, -3))


def to_uint8(x: Tensor) -> np.ndarray:
    """(..., 3, H, W) tensor in [-1, 1] -> (..., H, W, 3) uint8 array (on the CPU)."""
    return unit_to_uint8(x).movedim(-3, -1).cpu().numpy()


def quantize(x: Tensor) -> Tensor:
    """Round [-1, 1] images to the 256 levels an 8-bit PNG stores (stays a float tensor)."""
    return torch.round((x.clamp(-1, 1) + 1.0) * 127.5) / 127.5 - 1.0


__all__ = ["from_uint8", "quantize", "to_uint8", "uint8_to_unit", "unit_to_uint8"]
