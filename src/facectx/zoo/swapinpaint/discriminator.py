"""Multi-scale PatchGAN discriminator (pix2pixHD, Wang et al. 2018), as used by FaceShifter.

SwapInpaint only says "a discriminator D is included"; FaceShifter's AEI-Net, which its
generative module follows, uses pix2pixHD's multi-scale PatchGAN, and we use the same design for
both C's and G's discriminators.

Each scale is a PatchGAN on the image average-pooled by 2^k (3×3, stride 2)::

    conv 4×4/2 (64) → lrelu 0.2
    conv 4×4/2 (128) → IN → lrelu      } ``layers`` − 1 such stride-2 convs (default 3 in all)
    conv 4×4/2 (256) → IN → lrelu      }
    conv 4×4/1 (512) → IN → lrelu
    conv 4×4/1 (1)                      raw logits (no sigmoid; the loss chooses the GAN form)

Output: a list with one (B, 1, h_k, w_k) logit map per scale, full resolution first.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from facectx.zoo.layers import check_image, scale_channels

DISC_SLOPE = 0.2


class PatchDiscriminator(nn.Module):
    """One PatchGAN.

    Args:
        width: channel multiplier (base 64 filters, doubling up to 512).
        layers: number of stride-2 convolutions (pix2pixHD: 3).
        channels: filters of the first conv at width 1.
        in_channels: input channels: 3 (an image) or 4 (an image and its hole mask).
    """

    def __init__(
        self, width: float = 1.0, layers: int = 3, channels: int = 64, in_channels: int = 3
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"PatchDiscriminator: layers must be >= 1, got {layers}")
        mods: list[nn.Module] = []
        c = scale_channels(channels, width)
        mods += [nn.Conv2d(in_channels, c, 4, stride=2, padding=1), nn.LeakyReLU(DISC_SLOPE)]
        for i in range(1, layers + 1):
            stride = 2 if i < layers else 1
            c_next = scale_channels(min(channels * 2**i, 512), width)
            mods += [
                nn.Conv2d(c, c_next, 4, stride=stride, padding=1 if stride == 2 else 2),
                nn.InstanceNorm2d(c_next, affine=True),
                nn.LeakyReLU(DISC_SLOPE),
            ]
            c = c_next
        mods.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*mods)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MultiScalePatchDiscriminator(nn.Module):
    """PatchGANs on the image at ``num_scales`` resolutions (full, 1/2, 1/4, …).

    Args:
        width: channel multiplier for every PatchGAN.
        num_scales: number of PatchGANs (pix2pixHD and FaceShifter: 3).
        layers: stride-2 convolutions per PatchGAN.
        channels: first-layer filters at width 1.
        in_channels: input channels: 3, or 4 when the hole mask is stacked on the image (the
            discriminator then knows which pixels were painted; ``SwapInpaintGAN``'s
            ``discriminator_input="composite"``).
    """

    def __init__(
        self,
        width: float = 1.0,
        num_scales: int = 3,
        layers: int = 3,
        channels: int = 64,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if num_scales < 1:
            raise ValueError(f"num_scales must be >= 1, got {num_scales}")
        if in_channels not in (3, 4):
            raise ValueError(
                f"in_channels must be 3 (image) or 4 (image + hole), got {in_channels}"
            )
        self.num_scales = int(num_scales)
        self.in_channels = int(in_channels)
        self.scales = nn.ModuleList(
            PatchDiscriminator(width, layers, channels, in_channels) for _ in range(num_scales)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        check_image(x, "MultiScalePatchDiscriminator input", self.in_channels)
        outs = []
        for k, d in enumerate(self.scales):
            if k:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(d(x))
        return outs


__all__ = ["MultiScalePatchDiscriminator", "PatchDiscriminator"]
