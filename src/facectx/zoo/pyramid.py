"""The multi-scale input of the cascade: one builder for training batches and inference.

Training (``FaceDataModule.on_after_batch_transfer``, on the device after transfer) and
inference (``CascadeGenerator.hallucinate``) both call :func:`build_pyramid`, so a face gives the
same pyramid in both.

Downsampling the *masked* image (as the paper does) rather than re-masking at each size has a
border effect: the bilinear antialias filter mixes the -1 fill into known pixels next to the hole,
so ``masked_s`` is slightly darker just inside the known region and not exactly ``-1`` just inside
the conservatively binarised hole. Models that paste known pixels use ``mask_s``, which is 1 only
where the whole source cell was known, so those blended pixels count as hole.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur with zero padding (pair it with a blurred weight to normalise)."""
    r = max(1, int(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), padding=(0, r), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), padding=(r, 0), groups=c)


def weighted_blur(x: Tensor, weight: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """Normalised convolution: the Gaussian average of ``x`` over ``weight`` (B, 1, H, W) around
    each pixel, and the blurred weight (where it is near 0 the average means nothing)."""
    den = gaussian_blur(weight, sigma)
    return gaussian_blur(x * weight, sigma) / den.clamp_min(1e-6), den


def downsample_image(x: Tensor, size: int) -> Tensor:
    """Bilinear, antialiased resize of (B, C, H, W) ``x`` to size x size (``x`` itself if there)."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def downsample_keep(mask: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Conservative downsampling of a (B, 1, H, W) keep mask to ``size``.

    A low-resolution pixel is 1 only where its whole source cell is 1 (a min-pool, done as
    ``-adaptive_max_pool2d(-mask)`` so non-integer ratios work), so "known" never claims a pixel
    that is partly hole. Soft (feathered) masks give the minimum of each cell.
    """
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h < 1 or w < 1:
        raise ValueError(f"mask size must be positive, got {size!r}")
    if mask.shape[-2:] == (h, w):
        return mask
    if mask.shape[-2] < h or mask.shape[-1] < w:
        raise ValueError(
            f"downsample_keep: cannot grow a mask {tuple(mask.shape[-2:])} to {(h, w)}"
        )
    return -F.adaptive_max_pool2d(-mask, (h, w))


def build_pyramid(
    image: Tensor | None,
    masked: Tensor,
    mask: Tensor,
    sizes: Iterable[int],
    valid: Tensor | None = None,
) -> dict[int, dict[str, Tensor]]:
    """``{s: {"masked", "mask"[, "image"][, "valid"]}}`` for each size ``s``, smallest first.

    Args:
        image: (B, 3, S, S) target in [-1, 1], or None at inference (no "image" key then).
        masked: (B, 3, S, S) model input; downsampled bilinearly with antialiasing.
        mask: (B, 1, S, S) keep mask; conservative min-pool (1 only if the whole cell is 1).
        sizes: output sides, each <= S; ``S`` itself returns the input tensors unchanged.
        valid: optional (B, 1, S, S) valid-pixel mask, downsampled conservatively like ``mask``.
    """
    if masked.ndim != 4 or masked.shape[-1] != masked.shape[-2]:
        raise ValueError(
            f"build_pyramid expects square (B, C, S, S) images, got {tuple(masked.shape)}"
        )
    full = masked.shape[-1]
    for name, t, c in (("image", image, 3), ("mask", mask, 1), ("valid", valid, 1)):
        if t is not None and (
            t.ndim != 4
            or t.shape[1] != c
            or t.shape[-2:] != masked.shape[-2:]
            or t.shape[0] != masked.shape[0]
        ):
            raise ValueError(
                f"build_pyramid: {name} has shape {tuple(t.shape)}, masked {tuple(masked.shape)}"
            )
    out: dict[int, dict[str, Tensor]] = {}
    for s in sorted({int(s) for s in sizes}):
        if s < 1 or s > full:
            raise ValueError(f"build_pyramid: size {s} must be in [1, {full}] (the image size)")
        level = {"masked": downsample_image(masked, s), "mask": downsample_keep(mask, s)}
        if image is not None:
            level["image"] = downsample_image(image, s)
        if valid is not None:
            level["valid"] = downsample_keep(valid, s)
        out[s] = level
    return out


__all__ = [
    "build_pyramid",
    "downsample_image",
    "downsample_keep",
    "gaussian_blur",
    "weighted_blur",
]
