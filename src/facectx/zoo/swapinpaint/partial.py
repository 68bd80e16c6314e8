"""Partial convolutions (Liu et al. 2018, "Image inpainting for irregular holes using partial
convolutions"), used by the content inference encoder for irregular holes.

A partial convolution sees only known pixels. With ``M`` the (B, 1, H, W) keep mask (1 = known)
and ``W`` the kernel, at each output position::

    out  = W · (X ⊙ M) · area / sum(M_window) + b     if sum(M_window) > 0
         = 0                                           otherwise
    M'   = 1 if sum(M_window) > 0 else 0

``area`` is the kernel's number of taps, so the output does not depend on how many inputs were
known, only on their values. The mask grows by the kernel's reach at every layer; after a few
layers every position is known. Zero padding counts as unknown (the paper's "partial padding"),
so border outputs are rescaled too.

The mask has one channel and is shared by all feature channels (the paper's default). A soft
(feathered) mask weights the inputs; ``M'`` is 1 wherever any weight is positive.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PartialConv2d(nn.Conv2d):
    """``nn.Conv2d`` that takes and returns ``(features, keep_mask)``.

    Same constructor as ``nn.Conv2d`` (``groups`` must be 1). ``forward(x, mask)`` with ``x``
    (B, C, H, W) and ``mask`` (B, 1, H, W) in [0, 1] returns the features (B, C', H', W'), zero
    where no input was known, and the updated mask (B, 1, H', W') in {0, 1}.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.groups != 1:
            raise ValueError("PartialConv2d supports groups=1 only")
        if self.padding_mode != "zeros":
            raise ValueError("PartialConv2d supports padding_mode='zeros' only")
        self.register_buffer("_ones", torch.ones(1, 1, *self.kernel_size), persistent=False)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[-2:] != x.shape[-2:]:
            raise ValueError(
                f"PartialConv2d: mask must be (B, 1, H, W) matching x {tuple(x.shape)}, "
                f"got {tuple(mask.shape)}"
            )
        mask = mask.to(x.dtype)
        with torch.no_grad():
            count = F.conv2d(
                mask, self._ones.to(x.dtype), None, self.stride, self.padding, self.dilation
            )
            new_mask = (count > 0).to(x.dtype)
            ratio = self._ones.numel() / count.clamp_min(1e-8) * new_mask
        out = F.conv2d(x * mask, self.weight, None, self.stride, self.padding, self.dilation)
        out = out * ratio
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1) * new_mask
        return out, new_mask


def partial_avg_pool2(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """2×2 average pool of the known pixels only (a partial pooling); returns (x, mask).

    Cells without any known pixel are 0 with mask 0.
    """
    mask = mask.to(x.dtype)
    num = F.avg_pool2d(x * mask, 2)
    den = F.avg_pool2d(mask, 2)
    new_mask = (den > 0).to(x.dtype)
    return num / den.clamp_min(1e-8) * new_mask, new_mask


__all__ = ["PartialConv2d", "partial_avg_pool2"]
