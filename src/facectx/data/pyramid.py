"""Multi-scale pyramids of a batch, built on the device after transfer (not in workers).

Downsampling the *masked* image (as the paper does) rather than re-masking at each size has a
border effect: the bilinear antialias filter mixes the -1 fill into known pixels next to the hole,
so ``masked_s`` is slightly darker just inside the known region and not exactly ``-1`` just inside
the conservatively binarised hole. Models that paste known pixels use ``mask_s``, which is 1 only
where the whole source cell was known, so those blended pixels count as hole.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch.nn.functional as F
from torch import Tensor

from facectx.masks.ops import downsample_keep


def _down(x: Tensor, size: int) -> Tensor:
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def build_pyramid(
    image: Tensor,
    masked: Tensor,
    mask: Tensor,
    sizes: Iterable[int],
    valid: Tensor | None = None,
) -> dict[int, dict[str, Tensor]]:
    """``{s: {"image", "masked", "mask"[, "valid"]}}`` for each size ``s``.

    Args:
        image: (B, 3, S, S) target in [-1, 1]; bilinear antialiased downsampling.
        masked: (B, 3, S, S) model input; downsampled like ``image`` (see the module docstring).
        mask: (B, 1, S, S) keep mask; conservative min-pool (1 only if the whole cell is 1).
        sizes: output sides, each <= S; ``S`` itself returns the input tensors unchanged.
        valid: optional (B, 1, S, S) valid-pixel mask, downsampled conservatively like ``mask``.
    """
    if image.ndim != 4 or image.shape[-1] != image.shape[-2]:
        raise ValueError(
            f"build_pyramid expects square (B, C, S, S) images, got {tuple(image.shape)}"
        )
    full = image.shape[-1]
    for name, t, c in (("masked", masked, image.shape[1]), ("mask", mask, 1), ("valid", valid, 1)):
        if t is not None and (
            t.ndim != 4
            or t.shape[1] != c
            or t.shape[-2:] != image.shape[-2:]
            or t.shape[0] != image.shape[0]
        ):
            raise ValueError(
                f"build_pyramid: {name} has shape {tuple(t.shape)}, image {tuple(image.shape)}"
            )
    out: dict[int, dict[str, Tensor]] = {}
    for s in sorted({int(s) for s in sizes}):
        if s < 1 or s > full:
            raise ValueError(f"build_pyramid: size {s} must be in [1, {full}] (the image size)")
        if s == full:
            level = {"image": image, "masked": masked, "mask": mask}
            if valid is not None:
                level["valid"] = valid
        else:
            level = {
                "image": _down(image, s),
                "masked": _down(masked, s),
                "mask": downsample_keep(mask, s),
            }
            if valid is not None:
                level["valid"] = downsample_keep(valid, s)
        out[s] = level
    return out
