"""Context harmoniser: a small U-Net that re-lights a pasted context to the face it surrounds.

The exemplar model (:mod:`facectx.zoo.exemplar`) pastes another photo's context around the
input face and matches its colours by hand-set rules (colour transfer, seam offset, face ring).
What those rules cannot see is lighting the two photos disagree on: a forehead lit brighter than
the face below it, a halo of the exemplar's own skin tone. The harmoniser learns that part from
real photos alone: each training photo's context is re-lit at random (:func:`relight_context`:
global offset and gain, a broad and a blotchy lightness field, a colour cast, sometimes faded
out near the face as the seam offset would) and the network restores it from the face it sees
(its loss: ``facectx.losses.harmoniser.near_face_l1``). It only ever changes context pixels;
the face it is given stays exact.

It works at half resolution (the fields it corrects are smooth) and returns a residual that is
upsampled and added to the context, so fine texture passes through untouched.

Trained by ``python -m facectx.train experiment=lfw_harmoniser``
(:mod:`facectx.modules.harmoniser`) and packed into the exemplar bank
(``python -m facectx.bank ... harmoniser=CKPT``); the shipped ``exemplar-lfw-128`` carries one
(docs/exemplar.md, step 6; docs/results.md §4, thirteenth round).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facectx.zoo.exemplar import distance_to, lab_to_rgb, rgb_to_lab
from facectx.zoo.layers import check_image, conv3x3, scale_channels

#: channels of the four U-Net levels at ``width`` 1
WIDTHS: tuple[int, ...] = (32, 64, 128, 128)
SLOPE = 0.2


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        conv3x3(cin, cout), nn.LeakyReLU(SLOPE), conv3x3(cout, cout), nn.LeakyReLU(SLOPE)
    )


class ContextHarmoniser(nn.Module):
    """U-Net over (image, kept, valid) predicting a colour residual for the context.

    Args:
        width: multiplier of :data:`WIDTHS` (tests use tiny models; 1 is the spike's).
        scale: the network runs at 1/``scale`` of the input size (a whole number; 2 by default:
            the lighting it corrects is smooth, and a quarter of the pixels is a quarter of the
            cost on a CPU). The input size must be divisible by ``scale`` × 8.
    """

    def __init__(self, width: float = 1.0, scale: int = 2) -> None:
        super().__init__()
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        c = [scale_channels(w, width) for w in WIDTHS]
        self.width = float(width)
        self.scale = int(scale)
        self.enc = nn.ModuleList(
            [_block(5, c[0]), _block(c[0], c[1]), _block(c[1], c[2]), _block(c[2], c[3])]
        )
        self.dec = nn.ModuleList(
            [_block(c[3] + c[2], c[2]), _block(c[2] + c[1], c[1]), _block(c[1] + c[0], c[0])]
        )
        self.head = nn.Conv2d(c[0], 3, 1)
        # zero residual at initialisation: an untrained harmoniser returns its input
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def residual(self, image: Tensor, kept: Tensor, valid: Tensor) -> Tensor:
        """(B, 3, S, S) the correction before it is confined to the context."""
        size = image.shape[-1]
        if image.shape[-2] != size or size % (self.scale * 8):
            raise ValueError(
                f"ContextHarmoniser needs square inputs whose side divides by {self.scale * 8}, "
                f"got {tuple(image.shape[-2:])}"
            )
        h = torch.cat([image, kept, valid], 1)
        if self.scale > 1:
            h = F.avg_pool2d(h, self.scale)
        skips = []
        for i, enc in enumerate(self.enc):
            h = enc(h if i == 0 else F.avg_pool2d(h, 2))
            skips.append(h)
        for dec, skip in zip(self.dec, reversed(skips[:-1]), strict=True):
            up = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
            h = dec(torch.cat([up, skip], 1))
        r = self.head(h)
        if self.scale > 1:
            r = F.interpolate(r, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return r

    def forward(self, image: Tensor, kept: Tensor, valid: Tensor) -> Tensor:
        """Harmonised images: ``image`` (B, 3, S, S) in [-1, 1] with its context re-lit.

        ``kept`` (B, 1, S, S) {0, 1}: face pixels, returned exactly; ``valid`` (B, 1, S, S)
        {0, 1}: pixels inside the photo (outside it, e.g. the black beyond a photo's edge, the
        image is returned as given too).
        """
        check_image(image, "ContextHarmoniser image")
        for m in (kept, valid):
            check_image(m, "ContextHarmoniser kept and valid", 1, image.shape[-1])
        out = (image + self.residual(image, kept, valid)).clamp(-1, 1)
        return torch.where((kept < 0.5) & (valid > 0.5), out, image)


def _smooth_field(batch: int, size: int, cell: int, generator: torch.Generator) -> Tensor:
    """(B, 1, size, size) unit-std noise, smooth on the scale of ``cell`` px."""
    n = torch.randn(batch, 1, max(size // cell, 1), max(size // cell, 1), generator=generator)
    f = F.interpolate(n, size=(size, size), mode="bicubic", align_corners=False)
    return f / f.flatten(1).std(1).clamp_min(1e-3)[:, None, None, None]


def relight_context(
    image: Tensor,
    keep: Tensor,
    generator: torch.Generator,
    offset: float = 12.0,
    gain: float = 0.25,
    broad: float = 10.0,
    blotch: float = 8.0,
    cast: float = 6.0,
    cast_field: float = 4.0,
    faded: float = 0.5,
    fade: float = 8.0,
    chance: float = 0.9,
    edged: float = 0.0,
    edge: float = 12.0,
) -> Tensor:
    """A training input for :class:`ContextHarmoniser`: ``image`` with its context re-lit.

    Per image, in CIE Lab: the context's L* gets a random gain around the image's mean
    (× exp(±``gain``)), a global offset (±``offset``), a broad field (up to ``broad`` × a
    unit-std field smooth over 32 px) and a blotchy one (up to ``blotch``, over 8 px: the
    forehead patches and halos of real composites); a*b* get a cast (±``cast``)
    and a field (up to ``cast_field``). With probability ``faded`` the change fades out toward
    the face over e-folding distance up to ``fade`` px, as the seam offset leaves a real paste;
    with probability ``edged`` instead it is strongest at the face and fades out away from it
    over e-folding distance 2 to ``edge`` px: the bands and patches a seam offset or a
    mismatched forehead leave just outside a real paste's outline (0 = never, and no draw is
    made, so the other draws are those of a call without it). With probability 1 − ``chance``
    the image is left as it is (the harmoniser must also leave a good context alone). ``keep``
    (B, 1, S, S) pixels are never changed.

    Every draw comes from ``generator``: the same generator state gives the same inputs.
    """
    b, _, size, _ = image.shape

    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator)

    lab = rgb_to_lab(image)
    lightness = lab[:, :1]
    mean = lightness.mean((2, 3), keepdim=True)
    d_l = (lightness - mean) * (torch.exp((rand(b, 1, 1, 1) - 0.5) * 2 * gain) - 1)
    d_l = d_l + (rand(b, 1, 1, 1) - 0.5) * 2 * offset
    d_l = d_l + _smooth_field(b, size, 32, generator) * rand(b, 1, 1, 1) * broad
    d_l = d_l + _smooth_field(b, size, 8, generator) * rand(b, 1, 1, 1) * blotch
    fields = torch.cat([_smooth_field(b, size, 16, generator) for _ in range(2)], 1)
    d_ab = (rand(b, 2, 1, 1) - 0.5) * 2 * cast + fields * rand(b, 1, 1, 1) * cast_field
    change = torch.cat([d_l, d_ab], 1)
    away = distance_to(keep)
    falloff = (rand(b, 1, 1, 1) * fade).clamp_min(0.1)
    near = torch.where(
        rand(b, 1, 1, 1) < faded, 1 - torch.exp(-away / falloff), torch.ones_like(away)
    )
    if edged > 0:
        reach = 2.0 + rand(b, 1, 1, 1) * max(edge - 2.0, 0.0)
        near = torch.where(
            rand(b, 1, 1, 1) < edged, torch.exp(-(away - 1).clamp_min(0) / reach), near
        )
    on = (rand(b, 1, 1, 1) < chance).to(image)
    relit = lab_to_rgb(lab + on * near * change).clamp(-1, 1)
    return torch.where(keep > 0.5, image, relit)


__all__ = ["WIDTHS", "ContextHarmoniser", "relight_context"]
