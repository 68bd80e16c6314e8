"""Progressive growing: which layers transfer, bit-identical copies, fresh new layers, fade-in."""

from __future__ import annotations

import pytest
import torch

from facectx.zoo import CascadeGenerator, CasiaDiscriminator, GeneratorBlock
from facectx.zoo.progan import (
    FadeIn,
    discriminator_key_map,
    generator_key_map,
    grow,
    grow_discriminator,
    grow_generator,
    transfer_weights,
)

WIDTH = 1 / 16


def _layers(keys) -> set[str]:
    return {k.rsplit(".", 1)[0] for k in keys}


# Layers of block_2N that receive block_N's weights (docs/progan.md, "transfer table").
EXPECTED_NEW = {
    8: {
        "encoder.0.conv",
        "encoder.0.rb.conv1",
        "encoder.0.rb.conv2",
        "encoder.1.conv",
        "fc1",
        "decoder.1.conv",
        "to_rgb",
    },
    16: {
        "encoder.0.conv",
        "encoder.0.rb.conv1",
        "encoder.0.rb.conv2",
        "encoder.1.conv",
        "decoder.2.conv",
        "to_rgb",
    },
    32: {"encoder.0.conv", "encoder.0.rb.conv1", "encoder.0.rb.conv2", "decoder.3.conv", "to_rgb"},
    64: {
        "encoder.0.conv",
        "encoder.0.rb.conv1",
        "encoder.0.rb.conv2",
        "encoder.1.conv",
        "decoder.4.conv",
    },
}


@pytest.mark.parametrize("size", [8, 16, 32, 64])
def test_generator_transfer_table_at_width_one(size):
    m = generator_key_map(size)
    with torch.device("meta"):
        new = GeneratorBlock(2 * size).state_dict()
    assert _layers(k for k in new if k not in m) == EXPECTED_NEW[size]
    # matched from the bottleneck outward: encoder stage k -> k + 1, everything else by name
    for dst, src in m.items():
        if src.startswith("encoder."):
            assert int(dst.split(".")[1]) == int(src.split(".")[1]) + 1
        else:
            assert dst == src
    assert "fc2.weight" in m and "conv0.weight" in m and "decoder.0.conv.weight" in m
    assert ("fc1.weight" in m) == (size != 8)  # block_8's encoder ends at 8x8x1024
    assert ("to_rgb.weight" in m) == (size == 64)  # 64 -> 64 input channels only there


@pytest.mark.parametrize("size", [8, 16, 32, 64])
def test_discriminator_transfer_keeps_the_input_stages(size):
    m = discriminator_key_map(size)
    with torch.device("meta"):
        old = CasiaDiscriminator(size).state_dict()
        new = CasiaDiscriminator(2 * size).state_dict()
    assert set(m) == {k for k in old if not k.startswith("head.")}
    assert all(k == v for k, v in m.items())
    new_layers = _layers(k for k in new if k not in m)
    depth = CasiaDiscriminator(2 * size, width=WIDTH).depth
    assert new_layers == {
        f"features.conv{depth}1.conv",
        f"features.conv{depth}1.bn",
        f"features.conv{depth}2.conv",
        f"features.conv{depth}2.bn",
        "head",
    }


def test_grow_chain_8_to_128_copies_bit_identical_and_initialises_the_rest():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        block = GeneratorBlock(8, WIDTH)
        d = CasiaDiscriminator(8, WIDTH)
        for size in (8, 16, 32, 64):
            with torch.no_grad():  # stand-in for training: move every weight off its init
                for p in [*block.parameters(), *d.parameters()]:
                    p.add_(torch.randn_like(p))
                for name, buf in d.named_buffers():
                    if "running" in name:
                        buf.add_(torch.rand_like(buf))
            old, old_sd = block, {k: v.clone() for k, v in block.state_dict().items()}
            block, transferred, fresh = grow(old, WIDTH)
            assert block.size == 2 * size and block.width == WIDTH
            assert (
                transferred and fresh and set(transferred) | set(fresh) == set(block.state_dict())
            )
            key_map = generator_key_map(size)
            new_sd = block.state_dict()
            for k in transferred:
                assert torch.equal(new_sd[k], old_sd[key_map[k]]), k
            for k in fresh:  # never a copy of a trained tensor of the same shape
                same = [v for v in old_sd.values() if v.shape == new_sd[k].shape]
                assert not any(torch.equal(new_sd[k], v) for v in same), k
            assert all(torch.equal(v, old.state_dict()[k]) for k, v in old_sd.items())  # untouched

            old_d = {k: v.clone() for k, v in d.state_dict().items()}
            d, d_transferred, d_fresh = grow_discriminator(d)
            d_sd = d.state_dict()
            assert d.size == 2 * size and d_transferred and d_fresh
            for k in d_transferred:
                assert torch.equal(d_sd[k], old_d[k]), k
            for k in d_fresh:
                if k.endswith("conv.weight") or k == "head.weight":
                    same = [v for v in old_d.values() if v.shape == d_sd[k].shape]
                    assert not any(torch.equal(d_sd[k], v) for v in same), k
    assert block.size == 128 and d.size == 128
    out = block(torch.zeros(1, 3, 128, 128))
    assert out.shape == (1, 3, 128, 128) and torch.isfinite(out).all()
    assert d(torch.zeros(1, 3, 128, 128)).shape == (1, 1, 4, 4)


def test_grow_generator_keeps_checkpoint_key_layout():
    gen = CascadeGenerator((32,), width=WIDTH, upscaler_channels=32)
    grown, transferred, fresh = grow_generator(gen)
    assert grown.sizes == (64,) and grown.width == WIDTH and grown.upscaler_channels == 32
    assert set(transferred) | set(fresh) == set(grown.blocks["block_64"].state_dict())
    keys = list(grown.state_dict())
    assert keys and all(k.startswith("blocks.block_64.") for k in keys)
    assert all(not t.is_meta for t in grown.state_dict().values())
    with pytest.raises(ValueError, match="one-block"):
        grow_generator(CascadeGenerator((8, 16), width=WIDTH))


def test_grow_errors_are_explicit():
    with pytest.raises(ValueError, match="does not grow"):
        grow(GeneratorBlock(128, WIDTH))
    with pytest.raises(ValueError, match="width"):
        grow(GeneratorBlock(8, WIDTH), width=0.5)
    # transferring between different widths names the tensor and the likely cause
    small, big = GeneratorBlock(8, WIDTH), GeneratorBlock(16, 2 * WIDTH)
    with pytest.raises(ValueError, match="same width"):
        transfer_weights(small, big, generator_key_map(8))


def test_grow_keeps_dtype():
    block = GeneratorBlock(16, WIDTH).double()
    grown, _, _ = grow(block)
    assert next(grown.parameters()).dtype == torch.float64


def test_fade_in_blends_old_and_new_output_paths():
    old = GeneratorBlock(16, WIDTH)
    new, _, _ = grow(old)
    fade = FadeIn.from_block(old)
    assert all(not p.requires_grad for p in fade.parameters())
    assert torch.equal(fade.to_rgb.weight, old.to_rgb.weight)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        full = new(x)
        assert torch.equal(fade(new, x, 1.0), full)
        start = fade(new, x, 0.0)
        # alpha = 0: the old 16x16 output path, nearest-upsampled (constant on 2x2 cells)
        assert torch.equal(start[..., ::2, ::2], start[..., 1::2, 1::2])
        assert torch.allclose(fade(new, x, 0.25), 0.75 * start + 0.25 * full, atol=1e-6)
    # the right shapes can be rebuilt without the old block (checkpoint resume mid-fade)
    assert FadeIn.for_growth_into(32, WIDTH).to_rgb.weight.shape == old.to_rgb.weight.shape
    with pytest.raises(ValueError, match="channels"):
        FadeIn.from_block(GeneratorBlock(8, WIDTH))(new, x, 0.5)
