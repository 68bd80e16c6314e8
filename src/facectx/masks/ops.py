"""Operations on keep masks (1 = pixel given to the model, 0 = pixel to generate).

All functions take masks shaped (..., H, W) (typically (1, H, W) or (B, 1, H, W)) and return
float tensors of the same shape, so they compose with any mask kind.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from facectx.zoo.pyramid import downsample_keep  # noqa: F401  (part of the masks API)


def as_generator(
    generator: torch.Generator | int | None, who: str = "this mask"
) -> torch.Generator:
    """A ``torch.Generator`` from a generator or an int seed; random code never falls back to
    the global RNG, so ``None`` is an error."""
    if isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, int) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(generator)
    raise ValueError(
        f"{who} is random: pass a generator (torch.Generator) or an int seed, got {generator!r}"
    )


def size_hw(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """(H, W) from an int side or an (H, W) pair, checked positive."""
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h < 1 or w < 1:
        raise ValueError(f"mask size must be positive, got {size!r}")
    return h, w


def apply_mask(image: Tensor, mask: Tensor, fill: float = -1.0) -> Tensor:
    """``image * mask + fill * (1 - mask)``: the model input, ``fill`` (black in [-1, 1]) where
    the mask is 0. Broadcasts a 1-channel mask over the image channels."""
    return image * mask + fill * (1.0 - mask)


def _disk(radius: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    r = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    d2 = r[:, None] ** 2 + r[None, :] ** 2
    # (r + 0.5)^2 makes radius 1 a full 3x3 square and larger radii round discs.
    return (d2 <= (radius + 0.5) ** 2).to(dtype)[None, None]


def dilate_hole(mask: Tensor, pixels: int) -> Tensor:
    """Grow the hole (mask < 0.5) by a disc of radius ``pixels``; the result is binary.

    Used to make a landmark-tight hole cover a margin around the part, so the model cannot
    copy edges of the removed part from the known pixels.
    """
    if pixels < 0:
        raise ValueError(f"dilate_hole: pixels must be >= 0, got {pixels}")
    keep = (mask >= 0.5).to(torch.float32)
    if pixels == 0:
        return keep.to(mask.dtype) if mask.is_floating_point() else keep
    shape = keep.shape
    hole = 1.0 - keep.reshape(-1, 1, *shape[-2:])
    grown = F.conv2d(hole, _disk(pixels, hole.device, hole.dtype), padding=pixels) > 0.5
    out = (~grown).to(torch.float32).reshape(shape)
    return out.to(mask.dtype) if mask.is_floating_point() else out


def feather(mask: Tensor, pixels: int) -> Tensor:
    """Soft edge: known pixels within ``pixels`` of the hole ramp linearly from ~0 to 1.

    The hole itself stays exactly 0 and pixels farther than ``pixels`` stay exactly 1, but the
    result is **not binary**; losses that select "known" or "hole" pixels by ``mask == 1`` or
    ``mask == 0`` treat the ramp as neither. ``pixels = 0`` returns the binarised mask.
    """
    if pixels < 0:
        raise ValueError(f"feather: pixels must be >= 0, got {pixels}")
    keep = (mask >= 0.5).to(torch.float32)
    if pixels == 0:
        return keep
    shape = keep.shape
    flat = keep.reshape(-1, *shape[-2:]).cpu().numpy().astype(np.uint8)
    out = np.empty(flat.shape, np.float32)
    for i, m in enumerate(flat):
        if m.all():
            out[i] = 1.0
            continue
        # Euclidean distance of each known pixel to the nearest hole pixel (adjacent = 1).
        d = cv2.distanceTransform(m, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        out[i] = np.minimum(d / (pixels + 1.0), 1.0)
    return torch.from_numpy(out).reshape(shape).to(mask.device)
