"""Pixel metrics between two image batches, per image, on the whole frame or on a region.

Images are facectx tensors (B, 3, H, W) in [-1, 1]; every metric first maps them to [0, 1]
(``(x + 1) / 2``), so MSE is in [0, 1] and PSNR/SSIM use ``data_range = 1``. A ``region`` is a
(B, 1, H, W) {0, 1} tensor (e.g. the context: hole and valid); metrics then average only over
its pixels, and an image with an empty region gets NaN.

* ``mse``: mean over channels and pixels of ``(p - t)^2``.
* ``psnr``: ``10 log10(1 / mse)`` dB (+inf for identical images); on the whole frame it is
  ``torchmetrics.functional.peak_signal_noise_ratio`` with ``dim=(1, 2, 3)``.
* ``ssim``: ``torchmetrics.functional.structural_similarity_index_measure`` (Gaussian window
  11 px, sigma 1.5, K1 0.01, K2 0.03, reflect padding); on a region, the mean of its SSIM map
  over the region's pixels (all three channels).
* ``colour_detail``: of one batch, the fine-scale colour variation (CIELAB a*b* minus its
  Gaussian blur, σ 1.5 px, as a length), averaged over the region: colour noise in a fill is
  this figure above the real faces' over the same pixels (``scripts/colour_noise.py``).
* ``edge_strength``: of one batch, the Sobel gradient length of the RGB image averaged over the
  region: a seam along a mask edge is this figure above the real image's along the same pixels
  (``scripts/seam_step.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor


def to_unit(x: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], float32."""
    return (x.float() + 1.0) * 0.5


def _check(pred: Tensor, target: Tensor | None, region: Tensor | None) -> None:
    """Shapes of a metric's inputs (``target`` None: a measure of ``pred`` alone)."""
    if target is None and (pred.ndim != 4 or pred.shape[1] != 3):
        raise ValueError(f"expected a (B, 3, H, W) batch, got {tuple(pred.shape)}")
    if target is not None and (pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] != 3):
        raise ValueError(
            f"expected two (B, 3, H, W) batches of the same shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    if region is not None and (
        region.ndim != 4 or region.shape[1] != 1 or region.shape[2:] != pred.shape[2:]
    ):
        raise ValueError(f"region must be (B, 1, H, W), got {tuple(region.shape)}")


def region_mean(values: Tensor, region: Tensor | None) -> Tensor:
    """Per-image mean of (B, C, H, W) ``values`` over ``region`` (B, 1, H, W); NaN if empty."""
    if region is None:
        return values.flatten(1).mean(1)
    w = region.to(values.dtype).expand_as(values)
    total = w.flatten(1).sum(1)
    out = (values * w).flatten(1).sum(1) / total.clamp_min(1e-12)
    return torch.where(total > 0, out, torch.full_like(out, float("nan")))


def mse(pred: Tensor, target: Tensor, region: Tensor | None = None) -> Tensor:
    """(B,) mean squared error in [0, 1] units, over the frame or ``region``."""
    _check(pred, target, region)
    return region_mean((to_unit(pred) - to_unit(target)).square(), region)


def psnr(pred: Tensor, target: Tensor, region: Tensor | None = None) -> Tensor:
    """(B,) peak signal-to-noise ratio in dB for data range 1; +inf where the images match."""
    _check(pred, target, region)
    if region is None:
        from torchmetrics.functional.image import peak_signal_noise_ratio

        return peak_signal_noise_ratio(
            to_unit(pred), to_unit(target), data_range=1.0, reduction="none", dim=(1, 2, 3)
        )
    return 10.0 * torch.log10(1.0 / mse(pred, target, region))


def ssim(pred: Tensor, target: Tensor, region: Tensor | None = None) -> Tensor:
    """(B,) SSIM (torchmetrics, Gaussian 11 px / sigma 1.5); on ``region``, the map's mean."""
    _check(pred, target, region)
    from torchmetrics.functional.image import structural_similarity_index_measure

    value, full = structural_similarity_index_measure(
        to_unit(pred), to_unit(target), data_range=1.0, reduction="none", return_full_image=True
    )
    return value if region is None else region_mean(full, region)


def colour_detail(x: Tensor, region: Tensor | None = None, sigma: float = 1.5) -> Tensor:
    """(B,) mean over ``region`` of ``|ab − G_σ * ab|``: CIELAB a*b* (D65) less its Gaussian blur.

    Lightness is left out on purpose: skin, lips and hair have fine light-dark detail that a fill
    should have, while at this scale their colour changes slowly; speckles and plaid of colour
    are what this counts. Compare against the real image over the same pixels, not against 0.
    """
    _check(x, None, region)
    from kornia.color import rgb_to_lab
    from kornia.filters import gaussian_blur2d

    ab = rgb_to_lab(to_unit(x).clamp(0, 1))[:, 1:]
    k = 2 * round(3 * sigma) + 1
    fine = ab - gaussian_blur2d(ab, (k, k), (sigma, sigma), border_type="reflect")
    return region_mean(fine.square().sum(1, keepdim=True).sqrt(), region)


def edge_strength(x: Tensor, region: Tensor | None = None) -> Tensor:
    """(B,) mean over ``region`` of the Sobel gradient's length (all three channels, [0, 1]).

    Along a mask edge a seam adds a step the real image does not have there; compare against
    the real image over the same pixels (real edges such as a jaw line count in both).
    """
    _check(x, None, region)
    from kornia.filters import spatial_gradient

    g = spatial_gradient(to_unit(x), mode="sobel", normalized=True)  # (B, 3, 2, H, W)
    return region_mean(g.square().sum((1, 2)).sqrt()[:, None], region)


__all__ = ["colour_detail", "edge_strength", "mse", "psnr", "region_mean", "ssim", "to_unit"]
