"""The multi-scale cascaded generator (paper §3.1, Fig. 2/3; supplement Tables 1-5).

Five encoder-decoder generator blocks ``block_8`` ... ``block_128`` and four pixel-shuffle
upscalers between them. See ``docs/models.md`` for the layer tables and the choices made where the
paper is silent (skip connections by addition, residual block layout, the upscaler, gradients
between blocks).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch.nn.functional as F
from torch import Tensor, nn

from facectx.zoo.layers import (
    GEN_SLOPE,
    ResidualBlock,
    ShuffleBlur,
    check_image,
    conv3x3,
    icnr_,
    scale_channels,
)
from facectx.zoo.pyramid import build_pyramid

#: Sizes that have a generator block (one table each in the supplement).
BLOCK_SIZES: tuple[int, ...] = (8, 16, 32, 64, 128)
#: Spatial size of the fc2 reshape (4×4×1024 in every table).
BOTTLENECK = 4
#: Encoder filters after conv0 for block_128; block_N keeps the last log2(N/4) of them.
ENCODER_FILTERS: tuple[int, ...] = (64, 128, 256, 512, 1024)
#: Decoder filters per pixel-shuffle stage (the conv has 4× these); block_N keeps the first log2(N/4).
DECODER_FILTERS: tuple[int, ...] = (512, 256, 128, 64, 64)
CONV0_FILTERS = 128
FC1_FEATURES = 512
#: Channels of the fc2 reshape: fc2 has BOTTLENECK² · BOTTLENECK_CHANNELS = 16,384 outputs.
BOTTLENECK_CHANNELS = 1024


class EncoderStage(nn.Module):
    """One encoder row pair of the tables: ``conv_k`` (3×3) + leaky ReLU, then ``RB_k``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dilation: int) -> None:
        """
        Args:
            in_channels: channels of the incoming feature map.
            out_channels: filters of the conv and of the residual block.
            stride: 2 halves H×W (all blocks but block_8); 1 keeps it (block_8's conv1).
            dilation: 1, or 2 for block_8's atrous conv1.
        """
        super().__init__()
        self.conv = conv3x3(in_channels, out_channels, stride=stride, dilation=dilation)
        self.rb = ResidualBlock(out_channels, GEN_SLOPE)

    def forward(self, x: Tensor) -> Tensor:
        return self.rb(F.leaky_relu(self.conv(x), GEN_SLOPE))


class DecoderStage(nn.Module):
    """One decoder row pair of the tables: 3×3 conv to 4·C, pixel shuffle ×2 to C, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, blur: bool = False) -> None:
        """
        Args:
            in_channels: channels of the incoming feature map.
            out_channels: C, channels after the pixel shuffle (the conv has 4·C filters).
            blur: a fixed binomial blur after the shuffle (:class:`ShuffleBlur`; not in the
                paper, no parameters).
        """
        super().__init__()
        self.conv = icnr_(conv3x3(in_channels, 4 * out_channels))  # no checkerboard at init
        self.shuffle = nn.PixelShuffle(2)
        self.blur = ShuffleBlur() if blur else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(self.blur(self.shuffle(self.conv(x))), GEN_SLOPE)


@dataclass(frozen=True)
class SkipConnection:
    """An additive skip: encoder tensor ``source`` is added to decoder tensor ``target``."""

    source: str  # table name of the encoder layer ("conv0", "RB3", ...)
    target: str  # table name of the decoder tensor ("fc2" = its 4×4 reshape, "PS1", ...)
    channels: int  # at width 1.0
    size: int  # spatial size


class GeneratorBlock(nn.Module):
    """Encoder-decoder generator ``block_<size>`` exactly as the supplement's layer tables.

    ``conv0`` (3×3, stride 1, dilation 2, 128) → per stage ``conv_k`` (3×3 stride 2) + ``RB_k``
    down to 4×4×1024 (block_8: one stride-1 dilation-2 conv to 8×8×1024) → flatten → ``fc1`` 512
    → ``fc2`` 16,384 → reshape 4×4×1024 → per stage 3×3 conv to 4·C + pixel shuffle ×2 → 5×5 conv
    to 3 channels → tanh. Leaky ReLU (0.1) after every other conv and after both fc layers.
    Encoder and decoder tensors of equal shape are joined by additive skip connections
    (:attr:`skips`). Input and output are (B, 3, size, size).
    """

    def __init__(self, size: int, width: float = 1.0, shuffle_blur: bool = False) -> None:
        """
        Args:
            size: input/output resolution, one of 8, 16, 32, 64, 128 (selects the table).
            width: multiplier on every channel count (incl. fc1 and the 4×4 reshape; not the
                3 RGB channels); ``max(1, round(c * width))``. 1.0 reproduces the tables.
            shuffle_blur: fixed blur after every pixel shuffle (not in the paper; see
                :class:`facectx.zoo.layers.ShuffleBlur`). Adds no parameters.
        """
        super().__init__()
        if size not in BLOCK_SIZES:
            raise ValueError(f"GeneratorBlock size must be one of {BLOCK_SIZES}, got {size}")
        self.size = size
        self.width = width
        self.shuffle_blur = bool(shuffle_blur)
        n = int(math.log2(size // BOTTLENECK))  # stages: 1 for block_8 ... 5 for block_128

        def c(ch: int) -> int:
            return scale_channels(ch, width)

        enc_base = ENCODER_FILTERS[-n:]
        dec_base = DECODER_FILTERS[:n]
        # block_8 cannot downsample 8 -> 4 and still match Table 1: its conv1 is 3×3/1/2.
        stride, dilation = (1, 2) if size == 8 else (2, 1)

        self.conv0 = conv3x3(3, c(CONV0_FILTERS), dilation=2)
        stages, cin = [], c(CONV0_FILTERS)
        for base in enc_base:
            stages.append(EncoderStage(cin, c(base), stride=stride, dilation=dilation))
            cin = c(base)
        self.encoder = nn.ModuleList(stages)
        self.encoded_size = size // stride**n  # 4, or 8 for block_8
        self.fc1 = nn.Linear(cin * self.encoded_size**2, c(FC1_FEATURES))
        self.bottleneck_channels = c(BOTTLENECK_CHANNELS)
        self.fc2 = nn.Linear(c(FC1_FEATURES), BOTTLENECK**2 * self.bottleneck_channels)
        stages, cin = [], self.bottleneck_channels
        for base in dec_base:
            stages.append(DecoderStage(cin, c(base), blur=shuffle_blur))
            cin = c(base)
        self.decoder = nn.ModuleList(stages)
        self.to_rgb = nn.Conv2d(cin, 3, kernel_size=5, padding=2)

        # Skip connections, decided on the width-1 shapes so the topology never depends on width.
        enc_shapes = [("conv0", CONV0_FILTERS, size)]
        enc_shapes += [
            (f"RB{k + 1}", base, size // stride ** (k + 1)) for k, base in enumerate(enc_base)
        ]
        dec_shapes = [("fc2", BOTTLENECK_CHANNELS, BOTTLENECK)]
        dec_shapes += [
            (f"PS{k + 1}", base, BOTTLENECK * 2 ** (k + 1)) for k, base in enumerate(dec_base)
        ]
        by_shape = {(ch, s): i for i, (_, ch, s) in enumerate(enc_shapes)}
        skips, index = [], {}
        for j, (name, ch, s) in enumerate(dec_shapes):
            if (ch, s) in by_shape:
                i = by_shape[(ch, s)]
                skips.append(SkipConnection(enc_shapes[i][0], name, ch, s))
                index[j] = i
        self.skips: tuple[SkipConnection, ...] = tuple(skips)
        self._skip_index = index  # decoder position (0 = fc2 reshape, k = PS_k) -> encoder position

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, f"block_{self.size} input", size=self.size)
        feats = [F.leaky_relu(self.conv0(x), GEN_SLOPE)]
        for stage in self.encoder:
            feats.append(stage(feats[-1]))
        h = F.leaky_relu(self.fc1(feats[-1].flatten(1)), GEN_SLOPE)
        h = F.leaky_relu(self.fc2(h), GEN_SLOPE)
        h = h.view(x.shape[0], self.bottleneck_channels, BOTTLENECK, BOTTLENECK)
        for j in range(len(self.decoder) + 1):
            if j in self._skip_index:
                h = h + feats[self._skip_index[j]]
            if j < len(self.decoder):
                h = self.decoder[j](h)
        return self.to_rgb(h).tanh()


class PixelShuffleUpscaler(nn.Module):
    """×2 upscaler between generator blocks: our reading of the paper's "pixel shuffling block".

    3×3 conv 3 → 4·C, leaky ReLU 0.1, pixel shuffle ×2 (→ C), 3×3 conv C → 3, tanh.
    (B, 3, N, N) in [-1, 1] → (B, 3, 2N, 2N) in [-1, 1].
    """

    def __init__(self, width: float = 1.0, channels: int = 64, blur: bool = False) -> None:
        """
        Args:
            width: channel multiplier applied to ``channels`` (``max(1, round(c * width))``).
            channels: C, feature channels after the pixel shuffle at width 1.
            blur: a fixed binomial blur after the shuffle (not in the paper; no parameters).
        """
        super().__init__()
        ch = scale_channels(channels, width)
        self.conv1 = icnr_(conv3x3(3, 4 * ch))
        self.shuffle = nn.PixelShuffle(2)
        self.blur = ShuffleBlur() if blur else nn.Identity()
        self.conv2 = conv3x3(ch, 3)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, "upscaler input")
        h = self.blur(self.shuffle(F.leaky_relu(self.conv1(x), GEN_SLOPE)))
        return self.conv2(h).tanh()


@dataclass
class CascadeTrace:
    """Everything one cascade pass computed, keyed by size (for logging and losses)."""

    outputs: dict[int, Tensor] = field(default_factory=dict)  # after paste-back
    raw: dict[int, Tensor] = field(default_factory=dict)  # generator output before paste-back
    inputs: dict[int, Tensor] = field(default_factory=dict)  # what each block received
    guides: dict[int, Tensor] = field(
        default_factory=dict
    )  # upscaled previous output (not smallest)


def _paste(mask: Tensor, masked: Tensor, x: Tensor) -> Tensor:
    """Known face pixels from ``masked`` where ``mask`` is 1, ``x`` elsewhere."""
    return mask * masked + (1 - mask) * x


class CascadeGenerator(nn.Module):
    """Cascade of generator blocks with pixel-shuffle upscalers in between (paper Fig. 2).

    For the smallest size N0 the block input is ``masked_N0``. For each next size 2N the previous
    output is upscaled, ``up = upscaler(out_N)``, and the known face pixels are re-injected:
    ``in_2N = mask_2N * masked_2N + (1 - mask_2N) * up``. Every block's raw output is pasted back,
    ``out_N = mask_N * masked_N + (1 - mask_N) * raw_N``, so outputs equal the masked input exactly
    inside a binary mask. With ``detach_between_blocks`` the upscaler sees ``out_N.detach()``.
    """

    def __init__(
        self,
        sizes: Sequence[int] = BLOCK_SIZES,
        width: float = 1.0,
        detach_between_blocks: bool = True,
        upscaler_channels: int = 64,
        shuffle_blur: bool = False,
    ) -> None:
        """
        Args:
            sizes: ascending consecutive doublings out of (8, 16, 32, 64, 128), e.g. (8, 16) or
                (128,); one generator block per size, one upscaler per consecutive pair.
            width: channel multiplier for every block and upscaler (1.0 = the paper's tables).
            detach_between_blocks: True: a block's losses train only that block and the upscaler
                feeding it (the paper's "each block learns independently"); False: end-to-end.
            upscaler_channels: C of each :class:`PixelShuffleUpscaler` at width 1 (scaled by width).
            shuffle_blur: a fixed binomial blur after every pixel shuffle of the blocks and
                upscalers (not in the paper; no parameters): no period-2 grid can form.
        """
        super().__init__()
        sizes = tuple(int(s) for s in sizes)
        if not sizes or any(s not in BLOCK_SIZES for s in sizes):
            raise ValueError(f"sizes must be a non-empty subset of {BLOCK_SIZES}, got {sizes}")
        if any(b != 2 * a for a, b in itertools.pairwise(sizes)):
            raise ValueError(f"sizes must be ascending consecutive doublings, got {sizes}")
        self.sizes = sizes
        self.width = width
        self.detach_between_blocks = detach_between_blocks
        self.upscaler_channels = upscaler_channels
        self.shuffle_blur = bool(shuffle_blur)
        self.blocks = nn.ModuleDict(
            {f"block_{s}": GeneratorBlock(s, width, shuffle_blur) for s in sizes}
        )
        self.upscalers = nn.ModuleDict(
            {
                f"up_{s}": PixelShuffleUpscaler(width, upscaler_channels, shuffle_blur)
                for s in sizes[1:]
            }
        )

    def init_args(self) -> dict:
        """Constructor arguments that rebuild this generator (stored in checkpoints)."""
        return {
            "sizes": list(self.sizes),
            "width": float(self.width),
            "detach_between_blocks": bool(self.detach_between_blocks),
            "upscaler_channels": int(self.upscaler_channels),
            **({"shuffle_blur": True} if self.shuffle_blur else {}),
        }

    def _level(self, pyramid: Mapping[int, Mapping[str, Tensor]], s: int) -> tuple[Tensor, Tensor]:
        if s not in pyramid:
            raise KeyError(f"pyramid has no size {s} (has {sorted(pyramid)}); needs {self.sizes}")
        level = pyramid[s]
        for key in ("masked", "mask"):
            if key not in level:
                raise KeyError(f"pyramid[{s}] has no {key!r} (has {sorted(level)})")
        masked, mask = level["masked"], level["mask"]
        check_image(masked, f"pyramid[{s}]['masked']", size=s)
        check_image(mask, f"pyramid[{s}]['mask']", channels=1, size=s)
        if mask.shape[0] != masked.shape[0]:
            raise ValueError(f"pyramid[{s}]: batch of mask {mask.shape[0]} != {masked.shape[0]}")
        return masked, mask.to(masked.dtype)

    def trace(self, pyramid: Mapping[int, Mapping[str, Tensor]]) -> CascadeTrace:
        """Run the cascade and keep every intermediate (see :class:`CascadeTrace`)."""
        t = CascadeTrace()
        batch = None
        for i, s in enumerate(self.sizes):
            masked, mask = self._level(pyramid, s)
            if batch is not None and masked.shape[0] != batch:
                raise ValueError(f"pyramid[{s}] batch {masked.shape[0]} != {batch} at other sizes")
            batch = masked.shape[0]
            if i == 0:
                x = masked
            else:
                prev = t.outputs[self.sizes[i - 1]]
                if self.detach_between_blocks:
                    prev = prev.detach()
                t.guides[s] = self.upscalers[f"up_{s}"](prev)
                x = _paste(mask, masked, t.guides[s])
            t.inputs[s] = x
            t.raw[s] = self.blocks[f"block_{s}"](x)
            t.outputs[s] = _paste(mask, masked, t.raw[s])
        return t

    def forward(
        self, pyramid: Mapping[int, Mapping[str, Tensor]], return_raw: bool = False
    ) -> dict[int, Tensor] | CascadeTrace:
        """
        Args:
            pyramid: ``{s: {"masked": (B,3,s,s), "mask": (B,1,s,s), ...}}`` for every s in
                ``sizes`` (extra sizes and keys are ignored).
            return_raw: also return raw outputs, block inputs and upscaled guides.

        Returns:
            ``{s: (B,3,s,s)}`` pasted outputs, or the full :class:`CascadeTrace` if ``return_raw``.
        """
        t = self.trace(pyramid)
        return t if return_raw else t.outputs

    def hallucinate(self, masked: Tensor, mask: Tensor) -> Tensor:
        """Final (B,3,S,S) output for a full-resolution masked image and keep-mask, S = max size.

        Builds the pyramid itself (antialiased bilinear downsampling; min-pooled mask). Runs with
        whatever grad mode is active; wrap in ``torch.inference_mode()`` for inference.
        """
        s = self.sizes[-1]
        check_image(masked, "masked", size=s)
        check_image(mask, "mask", channels=1, size=s)
        keep = (mask > 0.5).to(masked.dtype)  # the same binary mask the training data has
        return self.trace(build_pyramid(None, masked, keep, self.sizes)).outputs[s]
