"""Per-item conversions and the horizontal mirror for aligned faces and their landmarks.

Pixel convention: a landmark at integer ``x`` lies on the centre of pixel column ``x`` (as in
OpenCV's ``warpAffine`` and ``hull_mask``), so flipping an image of width ``W`` maps
``x -> W - 1 - x``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _ibug68_mirror() -> tuple[int, ...]:
    """Index permutation that swaps the subject's left/right parts of the iBUG 68 scheme."""
    pairs = [(i, 16 - i) for i in range(8)]  # jaw, from the image-left end
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows, outer to inner
    pairs += [(31, 35), (32, 34)]  # nostrils; bridge 27-30 and 33 map to themselves
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lip; 51, 57 fixed
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lip; 62, 66 fixed
    perm = list(range(68))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


IBUG68_MIRROR = _ibug68_mirror()
"""``mirrored[i] = flip(landmarks[IBUG68_MIRROR[i]])``: after a flip, 36-41 is still the right eye."""


def mirror_landmarks(landmarks: Tensor, width: int) -> Tensor:
    """Landmarks (…, 68, 2) of the horizontally flipped image of ``width`` pixels: ``x -> W-1-x``
    and the iBUG left/right permutation, so each index keeps its semantic part."""
    if landmarks.shape[-2:] != (68, 2):
        raise ValueError(f"mirror_landmarks expects (..., 68, 2), got {tuple(landmarks.shape)}")
    out = landmarks[..., list(IBUG68_MIRROR), :].clone()
    out[..., 0] = (width - 1) - out[..., 0]
    return out


def hflip(x: Tensor) -> Tensor:
    """Flip an image-like tensor (…, H, W) left-right."""
    return torch.flip(x, dims=[-1])


def binary_to_tensor(mask: np.ndarray) -> Tensor:
    """(H, W) uint8 0/255 (or 0/1) -> (1, H, W) float32 {0, 1}, thresholded at half."""
    thresh = 127 if mask.max(initial=0) > 1 else 0
    return torch.from_numpy(mask > thresh).float()[None]


def seeded_generator(*keys: int) -> torch.Generator:
    """A generator determined only by integer ``keys`` (same keys, same stream, in any process)."""
    state = np.random.SeedSequence([int(k) % 2**64 for k in keys]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


_ITEM, _ORDER, _HOLDOUT = 0x17E5, 0x0D3E, 0x401D  # purpose tags: keep the streams apart


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The generator owned by one item in one epoch: the same (seed, epoch, index) gives the
    same stream in any worker and batch; different triples give unrelated streams."""
    return seeded_generator(seed, epoch, index, _ITEM)


def order_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator for one epoch's sample order (distinct from every item's stream)."""
    return seeded_generator(seed, epoch, 0, _ORDER)


def holdout_generator(seed: int) -> torch.Generator:
    """The generator for choosing a held-out validation subset."""
    return seeded_generator(seed, 0, 0, _HOLDOUT)
