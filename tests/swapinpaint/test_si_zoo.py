"""SwapInpaint networks: shapes at 128 and 256 px, partial convolutions, known pixels kept,
deterministic eval, AAD attention in [0, 1], identity conditioning, parameter counts."""

from __future__ import annotations

import pytest
import torch

from facectx.zoo.layers import count_parameters
from facectx.zoo.swapinpaint import (
    AttributeEncoder,
    ContentInference,
    MultiScalePatchDiscriminator,
    PartialConv2d,
    SwapGenerator,
    SwapInpaint,
)

from .conftest import TINY_WIDTH, random_pairs


@pytest.mark.parametrize("size", [128, 256])
def test_shapes_at_paper_and_quickstart_sizes(size):
    torch.manual_seed(0)
    b = random_pairs(2, size)
    c = ContentInference(size, width=TINY_WIDTH)
    out = c(b["masked"], b["mask"])
    assert [t.shape for t in out.scales] == [
        (2, 3, s, s) for s in (size // 8, size // 4, size // 2, size)
    ]
    assert out.mu.shape == out.std.shape == (2, c.z_channels, size // 32, size // 32)
    assert (out.std > 0).all()
    assert all(t.abs().max() <= 1 for t in out.scales)  # tanh outputs

    g = SwapGenerator(size, id_dim=16, width=TINY_WIDTH)
    sw = g(out.image, torch.randn(2, 16))
    assert sw.swapped.shape == (2, 3, size, size)
    assert [a.shape[-1] for a in sw.attributes] == [2 << k for k in range(len(sw.attributes))]
    assert sw.attributes[-1].shape[-1] == size
    assert len(g.generator.blocks) == 8
    assert g.generator.block_sizes[-1] == size

    d = MultiScalePatchDiscriminator(TINY_WIDTH)
    logits = d(sw.swapped)
    assert len(logits) == 3
    assert [t.shape[-1] for t in logits] == [size // 8, size // 16, size // 32]


def test_attribute_maps_at_256_follow_faceshifter_at_width_1():
    with torch.device("meta"):
        a = AttributeEncoder(256)
    assert a.map_sizes == (2, 4, 8, 16, 32, 64, 128, 256)
    assert a.map_channels == (1024, 2048, 1024, 512, 256, 128, 64, 64)


def test_parameter_counts_at_width_1_match_docs():
    with torch.device("meta"):
        c = ContentInference(256)
        g = SwapGenerator(256, id_dim=512)
        d = MultiScalePatchDiscriminator()
    assert count_parameters(c) == 8_842_526
    assert count_parameters(g.encoder) == 67_082_688
    assert count_parameters(g) == 184_348_379
    assert count_parameters(d) == 8_299_587


def test_partial_conv_ignores_hole_values_and_grows_the_mask():
    torch.manual_seed(0)
    conv = PartialConv2d(3, 4, 3, padding=1)
    x = torch.randn(1, 3, 8, 8)
    mask = torch.ones(1, 1, 8, 8)
    mask[..., 2:6, 2:6] = 0
    y1, m1 = conv(x, mask)
    x2 = x.clone()
    x2[..., 2:6, 2:6] = 100.0  # hole values must not matter
    y2, m2 = conv(x2, mask)
    assert torch.equal(y1, y2) and torch.equal(m1, m2)
    # the hole shrinks by one pixel on each side; outputs without known inputs are exactly 0
    assert m1[0, 0, 3:5, 3:5].sum() == 0 and m1[0, 0, 2, 2] == 1
    assert (y1[..., 3:5, 3:5] == 0).all()
    # with nothing missing, interior outputs equal a plain convolution (ratio 1)
    full, _ = conv(x, torch.ones(1, 1, 8, 8))
    plain = torch.nn.functional.conv2d(x, conv.weight, conv.bias, padding=1)
    assert torch.allclose(full[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1], atol=1e-6)


def test_content_keeps_known_pixels_and_ignores_the_hole():
    torch.manual_seed(0)
    b = random_pairs(2, 64)
    c = ContentInference(64, width=TINY_WIDTH).eval()
    out = c(b["masked"], b["mask"])
    m = b["mask"]
    assert torch.equal(out.image * m, b["image"] * m)
    noisy = b["masked"] + (1 - m) * torch.randn_like(b["masked"])
    assert torch.equal(c(noisy, m).image, out.image)


def test_content_is_deterministic_in_eval_and_samples_in_training():
    torch.manual_seed(0)
    b = random_pairs(2, 64)
    c = ContentInference(64, width=TINY_WIDTH)
    c.eval()
    a1, a2 = c(b["masked"], b["mask"]), c(b["masked"], b["mask"])
    assert torch.equal(a1.image, a2.image) and torch.equal(a1.z, a1.mu)
    c.train()
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    s1, s2 = c(b["masked"], b["mask"], generator=g1), c(b["masked"], b["mask"], generator=g2)
    assert torch.equal(s1.z, s2.z)  # an explicit generator reproduces the sample
    assert not torch.equal(s1.z, s1.mu)


def test_aad_attention_masks_lie_in_0_1():
    torch.manual_seed(0)
    g = SwapGenerator(64, id_dim=16, width=TINY_WIDTH)
    out = g(torch.rand(2, 3, 64, 64) * 2 - 1, torch.randn(2, 16) * 10)
    # 8 blocks: 2 AAD layers each, plus a shortcut AAD where the channel count changes
    assert len(out.attention) >= 16
    for m in out.attention:
        assert m.shape[1] == 1 and m.min() >= 0 and m.max() <= 1


def test_reference_identity_changes_the_output_deterministically():
    torch.manual_seed(0)
    net = SwapInpaint(ContentInference(64, width=TINY_WIDTH), SwapGenerator(64, 16, TINY_WIDTH))
    net.eval()
    b = random_pairs(2, 64)
    z1, z2 = torch.randn(2, 16), torch.randn(2, 16)
    with torch.no_grad():
        a = net(b["masked"], b["mask"], z1)
        again = net(b["masked"], b["mask"], z1)
        other = net(b["masked"], b["mask"], z2)
    assert torch.equal(a["swapped"], again["swapped"]) and torch.equal(a["output"], again["output"])
    assert (a["swapped"] - other["swapped"]).abs().max() > 1e-4
    # the training output Y keeps X̂'s known pixels
    m = b["mask"]
    assert torch.equal(a["output"] * m, a["content"] * m)


def test_every_generator_parameter_gets_a_gradient():
    torch.manual_seed(0)
    g = SwapGenerator(128, id_dim=16, width=TINY_WIDTH)
    g(torch.rand(1, 3, 128, 128) * 2 - 1, torch.randn(1, 16)).swapped.square().mean().backward()
    missing = [n for n, p in g.named_parameters() if p.grad is None]
    assert not missing


def test_bad_inputs_raise_clear_errors():
    c = ContentInference(64, width=TINY_WIDTH)
    with pytest.raises(ValueError, match="multiple of 32"):
        ContentInference(48)
    with pytest.raises(ValueError, match="64"):
        c(torch.zeros(1, 3, 32, 32), torch.ones(1, 1, 32, 32))
    g = SwapGenerator(64, id_dim=16, width=TINY_WIDTH)
    with pytest.raises(ValueError, match="id_dim"):
        g(torch.zeros(1, 3, 64, 64), torch.zeros(1, 8))
    with pytest.raises(ValueError, match="size"):
        SwapInpaint(ContentInference(64, width=TINY_WIDTH), SwapGenerator(128, 16, TINY_WIDTH))


def test_resize_up_path_keeps_a_flat_input_flat_where_transposed_convs_print_a_pattern():
    """``attribute_upsample=resize``: the same map sizes and channels, no period-2 pattern on a
    flat picture (the checkerboard source); the paper's transpose path stays the default and
    only the new choice is written into ``config``."""
    torch.manual_seed(0)
    flat = torch.full((1, 3, 64, 64), 0.3)
    maps = {}
    for kind in ("transpose", "resize"):
        enc = AttributeEncoder(64, width=TINY_WIDTH, upsample=kind)
        with torch.no_grad():
            maps[kind] = enc(flat)
    assert [m.shape for m in maps["resize"]] == [m.shape for m in maps["transpose"]]
    # the 32 px map's up-path channels (the first half), away from the zero-padded border:
    # its period-2 (Nyquist) part, against its size
    for kind, low, high in (("transpose", 0.1, None), ("resize", None, 0.01)):
        m = maps[kind][-2]
        up = m[:, : m.shape[1] // 2, 8:-8, 8:-8]
        a, b = up[..., 0::2, 0::2], up[..., 1::2, 1::2]
        c, d = up[..., 0::2, 1::2], up[..., 1::2, 0::2]
        checker = max((a - c).abs().mean(), (a - d).abs().mean(), (a + b - c - d).abs().mean())
        ratio = (checker / up.abs().mean()).item()
        assert (low is None or ratio > low) and (high is None or ratio < high), (kind, ratio)
    assert SwapGenerator(64, id_dim=8, width=TINY_WIDTH).config == {
        "size": 64,
        "id_dim": 8,
        "width": TINY_WIDTH,
    }
    g = SwapGenerator(64, id_dim=8, width=TINY_WIDTH, attribute_upsample="resize")
    assert g.config["attribute_upsample"] == "resize"
    assert SwapGenerator(**g.config).encoder.upsample == "resize"
    with pytest.raises(ValueError, match="upsample must be one of"):
        AttributeEncoder(64, upsample="nearest")
