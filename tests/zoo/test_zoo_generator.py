"""Generator blocks and upscalers: shapes, skips, width scaling."""

from __future__ import annotations

import pytest
import torch

from facectx.zoo import GeneratorBlock, PixelShuffleUpscaler, count_parameters, scale_channels

SIZES = (8, 16, 32, 64, 128)
TINY = 1 / 8  # width multiplier for fast tests


def test_scale_channels_rounding():
    assert scale_channels(1024, 1.0) == 1024
    assert scale_channels(64, TINY) == 8
    assert scale_channels(96, 0.3) == 29  # 28.8
    assert scale_channels(3, 0.5) == 2  # round(1.5) -> 2 (half to even)
    assert scale_channels(5, 0.5) == 2  # round(2.5) -> 2 (half to even)
    assert scale_channels(64, 0.001) == 1  # never zero channels
    with pytest.raises(ValueError):
        scale_channels(64, 0.0)


@pytest.mark.parametrize("size", SIZES)
def test_block_forward_tiny(size):
    block = GeneratorBlock(size, width=TINY)
    x = torch.rand(2, 3, size, size) * 2 - 1
    y = block(x)
    assert y.shape == x.shape
    assert y.abs().max() <= 1


@pytest.mark.parametrize("size", SIZES)
def test_block_forward_width_1_meta(size):
    with torch.device("meta"):
        block = GeneratorBlock(size)
        y = block(torch.zeros(1, 3, size, size))
    assert y.shape == (1, 3, size, size)
    assert count_parameters(block) > 60_000_000


def test_width_scales_every_channel_count():
    block = GeneratorBlock(32, width=0.3)
    c = [scale_channels(ch, 0.3) for ch in (128, 256, 512, 1024, 512)]
    assert block.conv0.out_channels == c[0]
    assert [s.conv.out_channels for s in block.encoder] == c[1:4]
    assert block.fc1.out_features == c[4]
    assert block.bottleneck_channels == c[3] and block.fc2.out_features == 16 * c[3]
    assert [s.conv.out_channels for s in block.decoder] == [
        4 * scale_channels(ch, 0.3) for ch in (512, 256, 128)
    ]
    assert block.conv0.in_channels == 3 and block.to_rgb.out_channels == 3
    assert block(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_skip_connections_join_equal_shapes():
    got = {s: [(k.source, k.target) for k in GeneratorBlock(s, TINY).skips] for s in SIZES}
    assert got[8] == []  # 8x8x1024 and 8x8x128 have no decoder twin
    assert got[16] == [("RB2", "fc2"), ("RB1", "PS1")]
    assert got[32] == [("RB3", "fc2"), ("RB2", "PS1"), ("RB1", "PS2"), ("conv0", "PS3")]
    assert got[128] == [
        ("RB5", "fc2"),
        ("RB4", "PS1"),
        ("RB3", "PS2"),
        ("RB2", "PS3"),
        ("RB1", "PS4"),
    ]


def test_skip_is_addition_of_encoder_tensor():
    """block_16: decoder stage k's input is (previous decoder tensor) + (equal-shaped RB output)."""
    block = GeneratorBlock(16, width=TINY).eval()
    seen: dict[str, torch.Tensor] = {}

    def keep(name):
        return lambda _m, args, out: seen.update({name: out, name + "_in": args[0]})

    for name, m in [("rb1", block.encoder[0].rb), ("rb2", block.encoder[1].rb)]:
        m.register_forward_hook(keep(name))
    for k, m in enumerate(block.decoder):
        m.register_forward_hook(keep(f"dec{k}"))
    m = block.fc2
    m.register_forward_hook(keep("fc2"))
    block.to_rgb.register_forward_hook(keep("rgb"))
    block(torch.rand(1, 3, 16, 16) * 2 - 1)
    fc2 = torch.nn.functional.leaky_relu(seen["fc2"], 0.1).view_as(seen["rb2"])
    assert torch.allclose(seen["dec0_in"], fc2 + seen["rb2"])
    assert torch.allclose(seen["dec1_in"], seen["dec0"] + seen["rb1"])
    assert torch.equal(seen["rgb_in"], seen["dec1"])  # no 16×16×256 encoder twin


def test_block_rejects_bad_input():
    block = GeneratorBlock(8, width=TINY)
    with pytest.raises(ValueError, match="block_8"):
        block(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\(B,3,H,W\)"):
        block(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError):
        GeneratorBlock(256)


def test_upscaler():
    up = PixelShuffleUpscaler(width=TINY)
    assert up.conv1.out_channels == 4 * 8 and up.conv2.in_channels == 8
    y = up(torch.rand(2, 3, 8, 8))
    assert y.shape == (2, 3, 16, 16) and y.abs().max() <= 1
    assert count_parameters(PixelShuffleUpscaler()) == (3 * 9 + 1) * 256 + (64 * 9 + 1) * 3


def test_icnr_makes_the_untrained_pixel_shuffle_free_of_checkerboard():
    """At init every 2×2 output block of a pixel-shuffle stage is constant (nearest-neighbour
    upsampling of an ordinary conv), in the blocks' decoders and in the upscalers alike."""
    from facectx.zoo.cascade import DecoderStage
    from facectx.zoo.layers import icnr_

    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 6)
    for stage in (DecoderStage(8, 4), PixelShuffleUpscaler(width=0.125)):
        conv = stage.conv if isinstance(stage, DecoderStage) else stage.conv1
        inp = x if isinstance(stage, DecoderStage) else x[:, :3]
        y = stage.shuffle(conv(inp))
        blocks = y.unfold(2, 2, 2).unfold(3, 2, 2)  # (B, C, H/2, W/2, 2, 2)
        assert torch.allclose(blocks, blocks[..., :1, :1].expand_as(blocks), atol=1e-6)
        assert conv.weight.std() > 0  # still a random init, only tied across positions
    with pytest.raises(ValueError, match="multiple of 4"):
        icnr_(torch.nn.Conv2d(3, 6, 3))
