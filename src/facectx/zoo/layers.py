"""Small building blocks shared by the zoo: channel scaling, conv helpers, residual block, pyramid.

Everything here is a plain ``torch.nn`` module or function; no Lightning, no global state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Slope of the leaky ReLU used everywhere in the generator (supplement §1).
GEN_SLOPE = 0.1
#: Slope of the leaky ReLU used everywhere in the discriminator (paper §3.1).
DISC_SLOPE = 0.2


def scale_channels(channels: int, width: float) -> int:
    """Channel count ``channels`` scaled by the width multiplier ``width``.

    ``max(1, round(channels * width))`` with Python's ``round`` (halves go to the even integer),
    so width 1.0 returns ``channels`` unchanged and no layer is ever scaled to zero channels.
    """
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    return max(1, round(channels * width))


@torch.no_grad()
def icnr_(conv: nn.Conv2d, scale: int = 2) -> nn.Conv2d:
    """ICNR initialisation (Aitken et al. 2017) of a conv that feeds ``PixelShuffle(scale)``.

    The default init gives each of the ``scale²`` sub-pixel positions its own random filter, so
    an untrained (or briefly trained) network paints a fixed checkerboard on every output; on a
    short CPU run that grid was what dominated FID. ICNR draws one filter per output channel
    and repeats it for the ``scale²`` positions, so at init the shuffle equals nearest-neighbour
    upsampling of an ordinary conv. Architecture and parameter count are unchanged.
    """
    r2 = scale * scale
    out_ch = conv.out_channels
    if out_ch % r2:
        raise ValueError(f"icnr_: {out_ch} output channels are not a multiple of {r2}")
    base = torch.empty(out_ch // r2, *conv.weight.shape[1:], dtype=conv.weight.dtype)
    nn.init.kaiming_uniform_(base, a=5**0.5)  # nn.Conv2d's own default, per filter
    conv.weight.copy_(base.repeat_interleave(r2, dim=0))
    if conv.bias is not None:
        fan_in = base[0].numel()
        bias = torch.empty(out_ch // r2).uniform_(-(fan_in**-0.5), fan_in**-0.5)
        conv.bias.copy_(bias.repeat_interleave(r2))
    return conv


def conv3x3(
    in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1, bias: bool = True
) -> nn.Conv2d:
    """3×3 convolution with "same" padding (``padding = dilation``), so stride 1 keeps H×W and
    stride 2 halves an even H×W exactly."""
    return nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size=3,
        stride=stride,
        padding=dilation,
        dilation=dilation,
        bias=bias,
    )


def check_image(x: Tensor, name: str, channels: int = 3, size: int | None = None) -> None:
    """Raise ``ValueError`` unless ``x`` is (B, channels, size, size) (any square size if None)."""
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"{name}: expected (B,{channels},H,W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h != w or (size is not None and h != size):
        want = f"{size}×{size}" if size is not None else "square"
        raise ValueError(f"{name}: expected {want} spatial size, got {h}×{w}")


class ResidualBlock(nn.Module):
    """Pre-shortcut residual block without normalisation (He et al. 2016 "basic block").

    ``out = lrelu(x + conv2(lrelu(conv1(x))))``: two 3×3 stride-1 convolutions that keep the
    channel count and the spatial size, a leaky ReLU after the first conv, the identity shortcut
    added to the second conv's output, and a leaky ReLU after the sum.
    """

    def __init__(self, channels: int, slope: float = GEN_SLOPE) -> None:
        """
        Args:
            channels: input = output channels of both convolutions.
            slope: negative slope of the leaky ReLUs.
        """
        super().__init__()
        self.slope = slope
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        h = F.leaky_relu(self.conv1(x), self.slope)
        return F.leaky_relu(x + self.conv2(h), self.slope)


def he_init_(module: nn.Module, slope: float) -> None:
    """He (Kaiming) normal init, fan-in mode, for every conv/linear weight under ``module``;
    zero biases; batch-norm weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, a=slope, mode="fan_in", nonlinearity="leaky_relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@torch.no_grad()
def count_parameters(module: nn.Module) -> int:
    """Number of parameters of ``module`` (works on the meta device)."""
    return sum(p.numel() for p in module.parameters())


class ShuffleBlur(nn.Module):
    """Fixed [1, 2, 1]ᵀ[1, 2, 1] / 16 blur per channel (no parameters), for after a pixel shuffle.

    A pixel shuffle gives each of the 2×2 output phases its own filter; adversarial gradients
    push those apart and training paints a period-2 grid (docs/results.md). The binomial filter's
    response at the Nyquist frequency is exactly 0, so no period-2 pattern survives it, whatever
    the shuffle's weights. Replicate padding keeps borders unbiased.
    """

    def __init__(self) -> None:
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3), False)

    def forward(self, x: Tensor) -> Tensor:
        # A layer's channel count is fixed: int() makes the ONNX tracer record it as a constant,
        # so the exporter sees a kernel of known shape (a traced size left it unknown and
        # export failed). Eager results are unchanged.
        c = int(x.shape[1])
        w = self.kernel.to(x.dtype).expand(c, 1, 3, 3)
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), w, groups=c)
