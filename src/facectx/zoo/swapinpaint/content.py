"""Content inference module C (SwapInpaint §III-B, §III-D-1): a one-path VAE in the style of
PICNet (Zheng et al. 2019) that fills the hole with structurally plausible content.

Outline (``S`` the image side, channels at width 1)::

    masked, mask ─► stem: partial conv 3×3            (S,    32)  e0
                 ─► down1 … down5: partial res blocks  (S/2,  64) … (S/32, 256)  e1 … e5
                 ─► heads: mu, std = softplus(·)       (S/32, 128) latent Gaussian
    z = mu + std·ε (training) | mu (eval)
    [z, e5] ─► up5 (IN res block) ─► (S/16, 256)
    [·, e4] ─► up4 ─► (S/8, 256)   ─► out1 = tanh(conv)      (S/8)
    [·, e3, out1] ─► up3 ─► (S/4, 128)  ─► out2              (S/4)
    [·, e2, out2] ─► up2 ─► (S/2, 64)   ─► out3              (S/2)
    [·, e1, out3] ─► up1 ─► (S, 32)     ─► out4              (S)

* No batch norm anywhere; instance norm in the decoder's residual blocks only (PICNet's change to
  the residual block, kept by SwapInpaint).
* Irregular holes: the encoder uses partial convolutions (``partial.PartialConv2d``), so hole
  pixels never enter a feature; the mask shrinks at each layer.
* U-Net skips: each decoder block also sees the encoder features of its input resolution
  (concatenated), and blocks after the first output also see the previous output image (as
  PICNet's decoder does).
* Four outputs at S/8, S/4, S/2, S for the multi-level reconstruction loss (paper eq. 11).
* The completed image ``X̂`` keeps the known pixels exactly: ``X̂ = M·X̃ + (1 − M)·out4``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facectx.zoo.layers import check_image, scale_channels
from facectx.zoo.swapinpaint.partial import PartialConv2d, partial_avg_pool2

#: Encoder channels at width 1: stem (S), then after each of the five downsamplings.
CONTENT_CHANNELS: tuple[int, ...] = (32, 64, 128, 256, 256, 256)
#: Leaky ReLU slope of C and of the attribute encoder (the paper uses LeakyReLU, slope unstated).
SLOPE = 0.2
#: Number of output scales (paper: k = 4).
NUM_SCALES = 4


def paste(known: Tensor, generated: Tensor, mask: Tensor) -> Tensor:
    """``mask·known + (1 − mask)·generated``: keep known pixels, take the hole from ``generated``."""
    return mask * known + (1.0 - mask) * generated


@dataclass
class ContentOutput:
    """What C returns.

    Attributes:
        scales: the four raw outputs, smallest first: (B, 3, S/8), (S/4), (S/2), (S), in [-1, 1].
        image: ``X̂``, the full-size raw output with the known pixels pasted back.
        mu: (B, Z, S/32, S/32) latent mean.
        std: (B, Z, S/32, S/32) latent standard deviation (> 0).
        z: the latent the decoder used (``mu`` at eval).
    """

    scales: list[Tensor]
    image: Tensor
    mu: Tensor
    std: Tensor
    z: Tensor

    @property
    def raw(self) -> Tensor:
        return self.scales[-1]


class PartialResDown(nn.Module):
    """Encoder residual block (no normalisation) that halves H×W, with partial convolutions.

    main: lrelu → pconv 3×3 (cin→cout) → lrelu → pconv 3×3 stride 2 (cout→cout);
    shortcut: partial 2×2 average pool → conv 1×1 (cin→cout). Output mask = the main path's.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = PartialConv2d(cin, cout, 3, padding=1)
        self.conv2 = PartialConv2d(cout, cout, 3, stride=2, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        h, m = self.conv1(F.leaky_relu(x, SLOPE), mask)
        h, m = self.conv2(F.leaky_relu(h, SLOPE), m)
        s, ms = partial_avg_pool2(x, mask)
        return h + self.shortcut(s) * ms, m


class ResUpIN(nn.Module):
    """Decoder residual block with instance norm that doubles H×W.

    main: IN → lrelu → conv 3×3 (cin→cout) → IN → lrelu → nearest ×2 → conv 3×3 (cout→cout);
    shortcut: nearest ×2 → conv 1×1 (cin→cout).
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.norm1 = nn.InstanceNorm2d(cin, affine=True)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.InstanceNorm2d(cout, affine=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.leaky_relu(self.norm1(x), SLOPE))
        h = F.leaky_relu(self.norm2(h), SLOPE)
        h = self.conv2(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ToImage(nn.Module):
    """Output head: lrelu → conv 3×3 → 3 channels → tanh."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, 3, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.conv(F.leaky_relu(x, SLOPE)))


class ContentInference(nn.Module):
    """The content inference VAE C: ``(masked, mask) -> ContentOutput``.

    Args:
        size: image side S in pixels; a multiple of 32 and >= 64 (five downsamplings).
        width: channel multiplier (``facectx.zoo.layers.scale_channels``) for every layer.
        latent_channels: channels Z of the spatial latent at S/32 (PICNet: 128), scaled by width.
        min_std: added to the softplus standard deviation to keep it away from 0.
    """

    def __init__(
        self,
        size: int = 256,
        width: float = 1.0,
        latent_channels: int = 128,
        min_std: float = 1e-4,
    ) -> None:
        super().__init__()
        size = int(size)
        if size < 64 or size % 32:
            raise ValueError(f"ContentInference: size must be a multiple of 32 >= 64, got {size}")
        self.size = size
        self.width = float(width)
        self.latent_channels = int(latent_channels)
        self.min_std = float(min_std)
        c = [scale_channels(ch, width) for ch in CONTENT_CHANNELS]
        zc = scale_channels(latent_channels, width)
        self.channels = tuple(c)
        self.z_channels = zc

        self.stem = PartialConv2d(3, c[0], 3, padding=1)
        self.down = nn.ModuleList(PartialResDown(c[i], c[i + 1]) for i in range(5))
        self.to_mu = nn.Conv2d(c[5], zc, 3, padding=1)
        self.to_std = nn.Conv2d(c[5], zc, 3, padding=1)
        # up[k] takes level k+1 (S/2^(k+1)) to level k; built from the bottom (k = 4) upwards.
        ups, heads = {}, {}
        ups[4] = ResUpIN(zc + c[5], c[4])
        ups[3] = ResUpIN(c[4] + c[4], c[3])
        heads[3] = ToImage(c[3])
        for k in (2, 1, 0):
            ups[k] = ResUpIN(c[k + 1] + c[k + 1] + 3, c[k])
            heads[k] = ToImage(c[k])
        self.up = nn.ModuleDict({str(k): ups[k] for k in (4, 3, 2, 1, 0)})
        self.heads = nn.ModuleDict({str(k): heads[k] for k in (3, 2, 1, 0)})

    @property
    def config(self) -> dict:
        """Constructor arguments, to rebuild the module from a checkpoint."""
        return {
            "size": self.size,
            "width": self.width,
            "latent_channels": self.latent_channels,
            "min_std": self.min_std,
        }

    @property
    def output_sizes(self) -> tuple[int, ...]:
        """Sides of the four outputs, smallest first."""
        return tuple(self.size >> k for k in (3, 2, 1, 0))

    def encode(self, masked: Tensor, mask: Tensor) -> tuple[list[Tensor], Tensor, Tensor]:
        """Encoder features ``[e0 … e5]`` and the latent ``(mu, std)``."""
        h, m = self.stem(masked, mask)
        feats = [h]
        for block in self.down:
            h, m = block(h, m)
            feats.append(h)
        a = F.leaky_relu(h, SLOPE)
        mu = self.to_mu(a)
        std = F.softplus(self.to_std(a)) + self.min_std
        return feats, mu, std

    def decode(self, z: Tensor, feats: list[Tensor]) -> list[Tensor]:
        """The four outputs (S/8 … S) from the latent and the encoder features."""
        h = self.up["4"](torch.cat([z, feats[5]], 1))  # S/16
        h = self.up["3"](torch.cat([h, feats[4]], 1))  # S/8
        outs = [self.heads["3"](h)]
        for k in (2, 1, 0):
            h = self.up[str(k)](torch.cat([h, feats[k + 1], outs[-1]], 1))
            outs.append(self.heads[str(k)](h))
        return outs

    def forward(
        self,
        masked: Tensor,
        mask: Tensor,
        sample: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> ContentOutput:
        """Infer the content of the hole.

        Args:
            masked: (B, 3, S, S) incomplete image in [-1, 1] (hole values are ignored).
            mask: (B, 1, S, S) keep mask (1 = known pixel).
            sample: draw ``z = mu + std·ε``; None = only in training mode (eval uses ``mu``, so
                inference is deterministic).
            generator: source of ε (on any device); None = torch's default generator.
        """
        check_image(masked, "ContentInference masked", 3, self.size)
        check_image(mask, "ContentInference mask", 1, self.size)
        if mask.shape[0] != masked.shape[0]:
            raise ValueError(
                f"ContentInference: mask batch {mask.shape[0]} != masked batch {masked.shape[0]}"
            )
        feats, mu, std = self.encode(masked, mask)
        if sample is None:
            sample = self.training
        if sample:
            eps = torch.randn(
                mu.shape,
                generator=generator,
                device=generator.device if generator else mu.device,
                dtype=mu.dtype,
            )
            z = mu + std * eps.to(mu.device)
        else:
            z = mu
        scales = self.decode(z, feats)
        image = paste(masked, scales[-1], mask)
        return ContentOutput(scales=scales, image=image, mu=mu, std=std, z=z)


__all__ = ["CONTENT_CHANNELS", "ContentInference", "ContentOutput", "paste"]
