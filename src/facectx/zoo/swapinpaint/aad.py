"""Generative module G (SwapInpaint §III-C, §III-D-3): a multi-level attribute encoder A and an
AAD generator (Adaptive Attentional Denormalization, FaceShifter's AEI-Net, Li et al. 2020).

**Attribute encoder A** (a U-Net on the content image X̂, LeakyReLU as the paper says)::

    X̂ (S) ─conv4×4/2─► d1 (S/2, 32) ─► d2 (S/4, 64) ─► … ─► dn (2×2)        n = log2(S) − 1
    att_0 = dn                                                        (2×2)
    att_j = [lrelu(convT4×4/2(att_{j−1})), d_{n−j}]   j = 1 … n−1     (4×4 … S/2)
    att_n = bilinear ×2 of att_{n−1}                                  (S)

So a 256 px image gives 8 attribute maps at 2, 4, …, 256 px (FaceShifter's z_att^1 … z_att^8:
1024, 2048, 1024, 512, 256, 128, 64, 64 channels at width 1). There is no normalisation in A:
A also measures the attribute loss (paper eq. 10), and batch statistics would make A(Y_sp) and
A(X̂) depend on the rest of their minibatches.

**AAD layer** (h the incoming activation, z_att the attribute map at its resolution, z_id the
identity vector)::

    h̄ = InstanceNorm(h)                         (no affine)
    A = γ_att(z_att) ⊙ h̄ + β_att(z_att)          γ_att, β_att: 1×1 convs
    I = γ_id(z_id) ⊙ h̄ + β_id(z_id)              γ_id, β_id: linear, per channel
    M = sigmoid(conv 1×1 (h̄))                    learned attention mask in [0, 1], one channel
    out = (1 − M) ⊙ A + M ⊙ I

**AAD residual block**: ``[AAD → ReLU → conv 3×3] × 2`` (cin→cin→cout), plus a shortcut
``AAD → ReLU → conv 3×3`` (cin→cout) when the channel count changes.

**Generator**: ``z_id`` (L2-normalised) → transposed conv 2×2 → (2×2, 1024); then 8 AAD residual
blocks with outputs 1024, 1024, 1024, 512, 256, 128, 64, 3 channels at resolutions 2, 4, …, 256
for a 256 px image (bilinear ×2 between blocks), and tanh. For smaller images the first blocks
share the 2×2 resolution (128 px: 2, 2, 4, …, 128), so there are always 8 blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facectx.zoo.layers import check_image, scale_channels
from facectx.zoo.swapinpaint.content import SLOPE, paste

#: Attribute-encoder down-path channels at width 1 (FaceShifter), first n are used.
ATTRIBUTE_CHANNELS: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 1024, 1024, 1024)
#: Output channels of the 8 AAD residual blocks at width 1 (the last is RGB, never scaled).
AAD_CHANNELS: tuple[int, ...] = (1024, 1024, 1024, 512, 256, 128, 64, 3)
#: How the attribute encoder's up path doubles a map (see :class:`AttributeEncoder`).
UPSAMPLE_KINDS = ("transpose", "resize")
#: Channels of the 2×2 map the identity vector is projected to, at width 1.
AAD_START_CHANNELS = 1024
NUM_AAD_BLOCKS = 8


def _check_size(size: int, who: str) -> int:
    size = int(size)
    if size < 16 or size & (size - 1):
        raise ValueError(f"{who}: size must be a power of two >= 16, got {size}")
    return size


class AttributeEncoder(nn.Module):
    """Multi-level attribute encoder A: image (B, 3, S, S) -> list of maps at 2, 4, …, S px.

    Args:
        size: image side S, a power of two >= 16.
        width: channel multiplier for every layer.
        upsample: how the up path doubles a map: ``transpose`` (FaceShifter: 4×4 stride-2
            transposed convolutions) or ``resize`` (bilinear ×2, then a 3×3 convolution; not in
            the paper). A transposed convolution's kernel overlaps unevenly, so even a flat
            input comes out in a period-2 pattern; these maps modulate every AAD block, which
            can print the pattern as checkers. Resizing first cannot make one.
    """

    def __init__(self, size: int = 256, width: float = 1.0, upsample: str = "transpose") -> None:
        super().__init__()
        self.size = _check_size(size, "AttributeEncoder")
        self.width = float(width)
        if upsample not in UPSAMPLE_KINDS:
            raise ValueError(
                f"AttributeEncoder: upsample must be one of {UPSAMPLE_KINDS}, got {upsample!r}"
            )
        self.upsample = upsample
        n = int(math.log2(self.size)) - 1  # downsamplings to 2x2
        if n > len(ATTRIBUTE_CHANNELS):
            raise ValueError(
                f"AttributeEncoder: size {size} is too large (max {2 << len(ATTRIBUTE_CHANNELS)})"
            )
        ch = [scale_channels(c, width) for c in ATTRIBUTE_CHANNELS[:n]]
        self.depth = n
        self.down = nn.ModuleList(
            nn.Conv2d(3 if i == 0 else ch[i - 1], ch[i], 4, stride=2, padding=1) for i in range(n)
        )
        ups = []
        map_ch = [ch[n - 1]]
        for j in range(1, n):
            cin, cout = map_ch[-1], ch[n - 1 - j]
            if upsample == "transpose":
                ups.append(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1))
            else:
                ups.append(
                    nn.Sequential(
                        nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False),
                        nn.Conv2d(cin, cout, 3, padding=1),
                    )
                )
            map_ch.append(2 * cout)
        map_ch.append(map_ch[-1])  # the last map is the previous one upsampled
        self.up = nn.ModuleList(ups)
        #: channels of each attribute map, smallest resolution first.
        self.map_channels: tuple[int, ...] = tuple(map_ch)
        #: resolution of each attribute map, smallest first (2, 4, …, S).
        self.map_sizes: tuple[int, ...] = tuple(2 << j for j in range(n + 1))

    def forward(self, x: Tensor) -> list[Tensor]:
        check_image(x, "AttributeEncoder input", 3, self.size)
        feats = []
        h = x
        for conv in self.down:
            h = F.leaky_relu(conv(h), SLOPE)
            feats.append(h)
        maps = [feats[-1]]
        for j, convt in enumerate(self.up, start=1):
            u = F.leaky_relu(convt(maps[-1]), SLOPE)
            maps.append(torch.cat([u, feats[self.depth - 1 - j]], 1))
        maps.append(F.interpolate(maps[-1], scale_factor=2.0, mode="bilinear", align_corners=False))
        return maps


class AADLayer(nn.Module):
    """Adaptive attentional denormalisation: blends attribute and identity modulations of the
    normalised activation with a learned sigmoid mask. ``forward`` returns ``(out, mask)``.

    Args:
        channels: channels of the activation h.
        att_channels: channels of the attribute map at h's resolution.
        id_dim: length of the identity vector.
    """

    def __init__(self, channels: int, att_channels: int, id_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.att_gamma = nn.Conv2d(att_channels, channels, 1)
        self.att_beta = nn.Conv2d(att_channels, channels, 1)
        self.id_gamma = nn.Linear(id_dim, channels)
        self.id_beta = nn.Linear(id_dim, channels)
        self.attention = nn.Conv2d(channels, 1, 1)

    def forward(self, h: Tensor, z_att: Tensor, z_id: Tensor) -> tuple[Tensor, Tensor]:
        if z_att.shape[-2:] != h.shape[-2:]:
            raise ValueError(
                f"AADLayer: attribute map {tuple(z_att.shape)} does not match h {tuple(h.shape)}"
            )
        hn = self.norm(h)
        a = self.att_gamma(z_att) * hn + self.att_beta(z_att)
        i = self.id_gamma(z_id)[..., None, None] * hn + self.id_beta(z_id)[..., None, None]
        m = torch.sigmoid(self.attention(hn))
        return (1.0 - m) * a + m * i, m


class AADResBlock(nn.Module):
    """AAD residual block: ``[AAD → ReLU → conv 3×3] × 2`` plus an AAD shortcut when cin ≠ cout.

    ``forward(h, z_att, z_id)`` returns ``(out, masks)``, masks the (B, 1, H, W) attention maps
    of its AAD layers.
    """

    def __init__(self, cin: int, cout: int, att_channels: int, id_dim: int) -> None:
        super().__init__()
        self.aad1 = AADLayer(cin, att_channels, id_dim)
        self.conv1 = nn.Conv2d(cin, cin, 3, padding=1)
        self.aad2 = AADLayer(cin, att_channels, id_dim)
        self.conv2 = nn.Conv2d(cin, cout, 3, padding=1)
        if cin != cout:
            self.aad_s = AADLayer(cin, att_channels, id_dim)
            self.conv_s = nn.Conv2d(cin, cout, 3, padding=1)
        else:
            self.aad_s = None
            self.conv_s = None

    def forward(self, h: Tensor, z_att: Tensor, z_id: Tensor) -> tuple[Tensor, list[Tensor]]:
        x, m1 = self.aad1(h, z_att, z_id)
        x = self.conv1(F.relu(x))
        x, m2 = self.aad2(x, z_att, z_id)
        x = self.conv2(F.relu(x))
        masks = [m1, m2]
        if self.aad_s is not None:
            s, ms = self.aad_s(h, z_att, z_id)
            s = self.conv_s(F.relu(s))
            masks.append(ms)
        else:
            s = h
        return x + s, masks


class AADGenerator(nn.Module):
    """8 AAD residual blocks from a 2×2 identity seed up to S px, fusing z_id and z_att.

    Args:
        size: output side S, a power of two >= 16.
        id_dim: length of the identity vector (dlib-resnet 128, ArcFace 512).
        att_channels: channels of the attribute maps at 2, 4, …, S px (``AttributeEncoder``).
        width: channel multiplier for every layer except the RGB output.
    """

    def __init__(
        self, size: int, id_dim: int, att_channels: tuple[int, ...], width: float = 1.0
    ) -> None:
        super().__init__()
        self.size = _check_size(size, "AADGenerator")
        n_res = int(math.log2(self.size))  # resolutions 2 … S
        if len(att_channels) != n_res:
            raise ValueError(
                f"AADGenerator: need {n_res} attribute maps (2 … {self.size} px), "
                f"got {len(att_channels)}"
            )
        if n_res > NUM_AAD_BLOCKS:
            raise ValueError(f"AADGenerator: size {size} needs more than {NUM_AAD_BLOCKS} blocks")
        self.id_dim = int(id_dim)
        # block k works at 2^(k+1-shift) px, clamped to >= 2: the first blocks share 2x2.
        shift = NUM_AAD_BLOCKS - n_res
        self.block_sizes = tuple(2 ** max(1, k + 1 - shift) for k in range(NUM_AAD_BLOCKS))
        c0 = scale_channels(AAD_START_CHANNELS, width)
        outs = [scale_channels(c, width) for c in AAD_CHANNELS[:-1]] + [3]
        self.start = nn.ConvTranspose2d(self.id_dim, c0, kernel_size=2)
        blocks = []
        cin = c0
        for k, cout in enumerate(outs):
            level = int(math.log2(self.block_sizes[k])) - 1
            blocks.append(AADResBlock(cin, cout, att_channels[level], self.id_dim))
            cin = cout
        self.blocks = nn.ModuleList(blocks)

    def forward(self, z_id: Tensor, attributes: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """``(image (B, 3, S, S) in [-1, 1], attention masks of every AAD layer)``."""
        if z_id.dim() != 2 or z_id.shape[1] != self.id_dim:
            raise ValueError(
                f"AADGenerator: z_id must be (B, {self.id_dim}), got {tuple(z_id.shape)}; "
                f"the identity network and the generator's id_dim must agree"
            )
        z_id = F.normalize(z_id, dim=1)
        h = self.start(z_id[..., None, None])
        masks: list[Tensor] = []
        for k, block in enumerate(self.blocks):
            level = int(math.log2(self.block_sizes[k])) - 1
            h, m = block(h, attributes[level], z_id)
            masks.extend(m)
            if k + 1 < len(self.blocks) and self.block_sizes[k + 1] > self.block_sizes[k]:
                h = F.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False)
        return torch.tanh(h), masks


@dataclass
class SwapOutput:
    """What the generative module returns.

    Attributes:
        swapped: ``Y_sp`` (B, 3, S, S) in [-1, 1], the whole face re-synthesised with z_id.
        attributes: A(X̂), the attribute maps of the content image (smallest first).
        attention: the AAD attention masks (B, 1, h, w), in [0, 1], in block order.
    """

    swapped: Tensor
    attributes: list[Tensor]
    attention: list[Tensor]


class SwapGenerator(nn.Module):
    """Generative module G: attribute encoder A + AAD generator.

    ``forward(content, z_id) -> SwapOutput``; ``attributes(x)`` gives A(x) for the attribute
    loss; ``compose(swapped, content, mask)`` is the training output Y (hole of Y_sp pasted onto
    X̂).

    Args:
        size: image side S, a power of two >= 16 (paper: 256).
        id_dim: length of the identity vector z_id = I(R).
        width: channel multiplier for A and the generator.
        attribute_upsample: A's up path, ``transpose`` (the paper's) or ``resize`` (see
            :class:`AttributeEncoder`).
    """

    def __init__(
        self,
        size: int = 256,
        id_dim: int = 512,
        width: float = 1.0,
        attribute_upsample: str = "transpose",
    ) -> None:
        super().__init__()
        self.size = _check_size(size, "SwapGenerator")
        self.width = float(width)
        self.id_dim = int(id_dim)
        self.encoder = AttributeEncoder(self.size, width, attribute_upsample)
        self.generator = AADGenerator(self.size, self.id_dim, self.encoder.map_channels, width)

    @property
    def config(self) -> dict:
        """Constructor arguments, to rebuild the module from a checkpoint (the up path only when
        it is not the paper's, so files packed before it existed stay byte-identical)."""
        config = {"size": self.size, "id_dim": self.id_dim, "width": self.width}
        if self.encoder.upsample != "transpose":
            config["attribute_upsample"] = self.encoder.upsample
        return config

    def attributes(self, x: Tensor) -> list[Tensor]:
        """A(x): the attribute maps of an image, smallest first."""
        return self.encoder(x)

    def forward(self, content: Tensor, z_id: Tensor) -> SwapOutput:
        """Swap the identity of the content image X̂ (B, 3, S, S) to z_id (B, id_dim)."""
        check_image(content, "SwapGenerator content", 3, self.size)
        if z_id.shape[0] != content.shape[0]:
            raise ValueError(
                f"SwapGenerator: z_id batch {z_id.shape[0]} != content batch {content.shape[0]}"
            )
        att = self.encoder(content)
        y, masks = self.generator(z_id, att)
        return SwapOutput(swapped=y, attributes=att, attention=masks)

    @staticmethod
    def compose(swapped: Tensor, content: Tensor, mask: Tensor) -> Tensor:
        """The training output Y: the hole of Y_sp pasted onto X̂ (known pixels from X̂)."""
        return paste(content, swapped, mask)


__all__ = [
    "UPSAMPLE_KINDS",
    "AADGenerator",
    "AADLayer",
    "AADResBlock",
    "AttributeEncoder",
    "SwapGenerator",
    "SwapOutput",
]
