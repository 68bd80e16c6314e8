"""Multi-scale patch discriminator with spectral norm (the conditional-GAN practice option).

The paper's CASIA-Net discriminator (``discriminators.py``) uses batch norm and a sigmoid; at the
small widths a CPU can train it lost to the generator within a few hundred iterations and the
LSGAN term painted colour noise (docs/results.md, run 3). This discriminator follows what
pix2pixHD/SPADE-style inpainting and translation models rely on instead:

* a PatchGAN per scale: 4×4 stride-2 convs (channels doubling up to ``max_channels``), then two
  3×3 stride-1 convs to one raw logit per patch (no sigmoid: hinge and LSGAN both take logits);
* spectral norm on every conv and no batch norm, so real and fake minibatches never interact and
  the Lipschitz constant stays bounded without a gradient penalty;
* ``num_scales`` copies on the image downsampled by 2, 4, ... (coarse copies judge layout, the
  full-resolution copy judges texture);
* every intermediate activation is returned, for the feature-matching loss;
* optionally conditioned on the face mask (a 4th input channel), so D knows which pixels the
  generator painted.

Output: a list with one entry per scale, each a list of feature maps whose last item is the
(B, 1, h, w) logit map.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facectx.zoo.layers import DISC_SLOPE, check_image, scale_channels

#: A scale's input is never smaller than this (16 px gives a 2×2 patch map with 2 stride-2 convs).
MIN_SCALE_SIZE = 16


def _conv(cin: int, cout: int, k: int, stride: int, sn: bool) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, kernel_size=k, stride=stride, padding=(k - 1) // 2 if k == 3 else 1)
    return nn.utils.parametrizations.spectral_norm(conv) if sn else conv


class PatchLayers(nn.Module):
    """One scale: ``n_down`` 4×4 stride-2 convs, a 3×3 conv, a 3×3 conv to one logit."""

    def __init__(
        self, in_channels: int, channels: int, max_channels: int, n_down: int, sn: bool
    ) -> None:
        super().__init__()
        layers, cin, cout = [], in_channels, channels
        for _ in range(n_down):
            layers.append(_conv(cin, cout, 4, 2, sn))
            cin, cout = cout, min(2 * cout, max_channels)
        layers.append(_conv(cin, cout, 3, 1, sn))
        self.body = nn.ModuleList(layers)
        self.head = _conv(cout, 1, 3, 1, sn)

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for conv in self.body:
            x = F.leaky_relu(conv(x), DISC_SLOPE)
            feats.append(x)
        feats.append(self.head(x))
        return feats


class PatchDiscriminator(nn.Module):
    """Multi-scale spectral-norm PatchGAN for one cascade block; see the module docstring.

    Args:
        size: input resolution S (a power of two >= 8).
        width: multiplier on every channel count (``max(1, round(c * width))``).
        channels: filters of the first conv at width 1 (doubling per stride-2 conv).
        max_channels: cap on the filters at width 1.
        n_down: stride-2 convs per scale (3: a 128-px input gives 16×16 logits, ~46-px patches);
            fewer where the scale's input is too small.
        num_scales: copies on the input downsampled ×2 each time (fewer for small inputs).
        spectral_norm: wrap every conv in spectral normalisation.
        conditional: the input has a 4th channel, the face mask (CascadeGAN appends it).
    """

    def __init__(
        self,
        size: int,
        width: float = 1.0,
        channels: int = 64,
        max_channels: int = 512,
        n_down: int = 3,
        num_scales: int = 2,
        spectral_norm: bool = True,
        conditional: bool = True,
    ) -> None:
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"PatchDiscriminator size must be a power of two >= 8, got {size}")
        if n_down < 1 or num_scales < 1:
            raise ValueError(f"n_down and num_scales must be >= 1, got {n_down}, {num_scales}")
        self.size = size
        self.conditional = conditional
        in_ch = 4 if conditional else 3
        ch, max_ch = scale_channels(channels, width), scale_channels(max_channels, width)
        scales = []
        s = size
        for i in range(num_scales):
            if i > 0 and s < MIN_SCALE_SIZE:
                break
            # keep at least a 2×2 logit map: n_down <= log2(s) - 1
            n = max(1, min(n_down, int(math.log2(s)) - 1))
            scales.append(PatchLayers(in_ch, ch, max_ch, n, spectral_norm))
            s //= 2
        self.scales = nn.ModuleList(scales)

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        check_image(
            x, f"PatchDiscriminator({self.size}) input", channels=x.shape[1], size=self.size
        )
        want = 4 if self.conditional else 3
        if x.shape[1] != want:
            raise ValueError(
                f"PatchDiscriminator({self.size}): expected {want} input channels "
                f"({'image + mask' if self.conditional else 'image'}), got {x.shape[1]}"
            )
        out = []
        for i, scale in enumerate(self.scales):
            if i > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(scale(x))
        return out


def as_scales(d_out: Tensor | list) -> list[list[Tensor]]:
    """Any discriminator output as a list of scales, each a list of features ending in logits.

    A plain tensor (e.g. CASIA-Net's probability map) becomes ``[[d_out]]``.
    """
    if isinstance(d_out, Tensor):
        return [[d_out]]
    return [list(s) if not isinstance(s, Tensor) else [s] for s in d_out]


@torch.no_grad()
def patch_weights(region: Tensor, logits: Tensor) -> Tensor:
    """Fraction of each logit's receptive area that lies in ``region`` (B,1,H,W) in [0, 1]."""
    return F.adaptive_avg_pool2d(region.to(logits.dtype), logits.shape[-2:])
