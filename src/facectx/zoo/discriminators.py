"""Per-block patch discriminators (paper §3.1): CASIA-Net without pooling or fully connected layers.

CASIA-Net (Yi et al. 2014, "Learning Face Representation from Scratch") has five stages of two
3×3 convolutions each, filters conv11-conv52 = 32/64, 64/128, 96/192, 128/256, 160/320, with a max
pool after stages 1-4 and an average pool after stage 5. Here every stage's second conv has
stride 2 instead (standing in for the pool), so each stage halves H×W; stages are stacked until the
map is 4×4 or the five stages are used up, then a 3×3 conv to 1 channel and a sigmoid give a
(B, 1, 4, 4) map of real-probabilities:

======  ======  ============================  ==========
input   stages  last CASIA conv               output
======  ======  ============================  ==========
8×8     1       conv12 (64)                   4×4
16×16   2       conv22 (128)                  4×4
32×32   3       conv32 (192)                  4×4
64×64   4       conv42 (256)                  4×4
128×128 5       conv52 (320)                  4×4
======  ======  ============================  ==========
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from facectx.zoo.layers import DISC_SLOPE, check_image, conv3x3, he_init_, scale_channels

#: (first conv, second conv) filters of the five CASIA-Net stages.
CASIA_STAGES: tuple[tuple[int, int], ...] = ((32, 64), (64, 128), (96, 192), (128, 256), (160, 320))
#: The discriminator stops downsampling at this spatial size.
MIN_SIZE = 4


def casia_depth(size: int) -> int:
    """Number of CASIA stages used for a ``size``×``size`` input (halve until 4×4, at most 5)."""
    if size < 2 * MIN_SIZE or size & (size - 1):
        raise ValueError(f"discriminator size must be a power of two >= {2 * MIN_SIZE}, got {size}")
    n = 0
    while size > MIN_SIZE and n < len(CASIA_STAGES):
        size //= 2
        n += 1
    return n


class ConvUnit(nn.Sequential):
    """3×3 conv (bias only without norm), optional batch norm, leaky ReLU 0.2."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: bool) -> None:
        """
        Args:
            in_channels: input channels.
            out_channels: conv filters.
            stride: 1, or 2 where CASIA-Net had a pooling layer.
            norm: add batch norm after the conv (then the conv has no bias).
        """
        super().__init__()
        self.conv = conv3x3(in_channels, out_channels, stride=stride, bias=not norm)
        if norm:
            self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.LeakyReLU(DISC_SLOPE)


class CasiaDiscriminator(nn.Module):
    """CASIA-Net patch discriminator for one cascade block; (B,3,S,S) → (B,1,h,w) in (0, 1).

    Layers, in order, for each used stage k: ``conv{k}1`` 3×3 stride 1, ``conv{k}2`` 3×3 stride 2;
    each followed by batch norm (except the very first conv, conv11) and leaky ReLU 0.2. Then
    ``head``: 3×3 conv to 1 channel (no norm) and a sigmoid. Convs followed by batch norm have no
    bias (it would be cancelled by the norm). He-normal init (fan-in, leaky-ReLU gain with
    a = 0.2) for every conv, zero biases, batch-norm weight 1 and bias 0.
    """

    def __init__(self, size: int, width: float = 1.0) -> None:
        """
        Args:
            size: input resolution S (a power of two >= 8; the cascade uses 8 ... 128).
            width: multiplier on every channel count but the 3 input and 1 output channels;
                ``max(1, round(c * width))``.
        """
        super().__init__()
        self.size = size
        self.width = width
        self.depth = casia_depth(size)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        cin = 3
        for k, (c1, c2) in enumerate(CASIA_STAGES[: self.depth], start=1):
            for j, (cout, stride) in enumerate(((c1, 1), (c2, 2)), start=1):
                cout = scale_channels(cout, width)
                first = k == 1 and j == 1
                layers[f"conv{k}{j}"] = ConvUnit(cin, cout, stride, norm=not first)
                cin = cout
        self.features = nn.Sequential(layers)
        self.head = conv3x3(cin, 1)
        self.out_size = size // 2**self.depth
        he_init_(self, DISC_SLOPE)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, f"CasiaDiscriminator({self.size}) input", size=self.size)
        return self.head(self.features(x)).sigmoid()
