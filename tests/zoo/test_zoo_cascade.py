"""The cascade: per-size outputs, exact paste-back, gradient flow between blocks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from facectx.zoo import CascadeGenerator, CascadeTrace
from facectx.zoo.pyramid import build_pyramid

SIZES = (8, 16, 32, 64, 128)
TINY = 1 / 8  # width multiplier for fast tests


def test_outputs_per_size(pyramid):
    gen = CascadeGenerator(width=TINY)
    out = gen(pyramid)
    assert sorted(out) == list(SIZES)
    for s, y in out.items():
        assert y.shape == (2, 3, s, s)


def test_face_pixels_exact(pyramid):
    gen = CascadeGenerator(width=TINY)
    t = gen(pyramid, return_raw=True)
    assert isinstance(t, CascadeTrace)
    for s in SIZES:
        keep = pyramid[s]["mask"].bool().expand(-1, 3, -1, -1)
        masked = pyramid[s]["masked"]
        assert keep.any() and (~keep).any()
        assert torch.equal(t.outputs[s][keep], masked[keep])
        assert torch.equal(t.outputs[s][~keep], t.raw[s][~keep])
        assert torch.equal(t.inputs[s][keep], masked[keep])
        if s > SIZES[0]:
            assert torch.equal(t.inputs[s][~keep], t.guides[s][~keep])
    assert torch.equal(t.inputs[8], pyramid[8]["masked"])
    assert sorted(t.guides) == list(SIZES[1:])


@pytest.mark.parametrize("detach", [True, False])
def test_gradients_reach_every_parameter(pyramid, detach):
    gen = CascadeGenerator(width=TINY, detach_between_blocks=detach)
    out = gen(pyramid)
    loss = sum((out[s] - pyramid[s]["image"]).abs().mean() for s in SIZES)
    loss.backward()
    for name, p in gen.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("detach", [True, False])
def test_detach_between_blocks(pyramid, detach):
    gen = CascadeGenerator(width=TINY, detach_between_blocks=detach)
    out = gen(pyramid)
    loss_128 = (out[128] - pyramid[128]["image"]).abs().mean()
    params_8 = list(gen.blocks["block_8"].parameters())
    up_128 = list(gen.upscalers["up_128"].parameters())
    grads = torch.autograd.grad(loss_128, params_8 + up_128, allow_unused=True)
    g8, gup = grads[: len(params_8)], grads[len(params_8) :]
    reaches_8 = any(g is not None and g.abs().sum() > 0 for g in g8)
    assert reaches_8 is (not detach)
    assert all(g is not None and g.abs().sum() > 0 for g in gup)  # upscaler trains either way


def test_subsets_of_sizes(pyramid):
    out = CascadeGenerator(sizes=(8, 16), width=TINY)(pyramid)
    assert sorted(out) == [8, 16]
    gen = CascadeGenerator(sizes=(128,), width=TINY)
    assert len(gen.upscalers) == 0
    assert CascadeGenerator(sizes=[32, 64], width=TINY)(pyramid)[64].shape == (2, 3, 64, 64)
    assert gen(pyramid)[128].shape == (2, 3, 128, 128)
    for bad in [(8, 32), (16, 8), (), (4, 8), (128, 256)]:
        with pytest.raises(ValueError):
            CascadeGenerator(sizes=bad, width=TINY)


def test_pyramid_errors(pyramid):
    gen = CascadeGenerator(sizes=(8, 16), width=TINY)
    with pytest.raises(KeyError, match="no size 16"):
        gen({8: pyramid[8]})
    with pytest.raises(KeyError, match="'mask'"):
        gen({8: pyramid[8], 16: {"masked": pyramid[16]["masked"]}})
    bad = {8: pyramid[8], 16: {"masked": pyramid[16]["masked"][:, :1], "mask": pyramid[16]["mask"]}}
    with pytest.raises(ValueError, match=r"pyramid\[16\]\['masked'\]"):
        gen(bad)
    bad = {
        8: pyramid[8],
        16: {"masked": pyramid[16]["masked"][:1], "mask": pyramid[16]["mask"][:1]},
    }
    with pytest.raises(ValueError, match="batch"):
        gen(bad)


def test_build_pyramid_helper(make_sample):
    s = make_sample(batch=1)
    pyr = build_pyramid(s["image"], s["masked"], s["mask"], SIZES)
    full = s["mask"]
    for size, level in pyr.items():
        k = 128 // size
        m = level["mask"]
        assert set(m.unique().tolist()) <= {0.0, 1.0}
        # 1 only where the whole k×k cell is 1
        cells = full.unfold(2, k, k).unfold(3, k, k).amin(dim=(-1, -2))
        assert torch.equal(m, cells)
        if k > 1:  # same downsampling as facectx.zoo.pyramid (no re-masking)
            want = F.interpolate(s["masked"], size=size, mode="bilinear", antialias=True)
            assert torch.allclose(level["masked"], want)
        assert level["image"].shape == (1, 3, size, size)
    assert torch.equal(pyr[128]["masked"], s["masked"])


def test_hallucinate(sample):
    gen = CascadeGenerator(sizes=(32, 64, 128), width=TINY)
    with torch.inference_mode():
        y = gen.hallucinate(sample["masked"], sample["mask"])
    assert y.shape == (2, 3, 128, 128)
    keep = sample["mask"].bool().expand(-1, 3, -1, -1)
    assert torch.equal(y[keep], sample["masked"][keep])
    with pytest.raises(ValueError):
        gen.hallucinate(sample["masked"][..., :64, :64], sample["mask"][..., :64, :64])


def test_shuffle_blur_removes_every_period_two_pattern_and_adds_no_parameters(pyramid):
    from facectx.zoo.layers import ShuffleBlur

    x = torch.randn(2, 4, 16, 16)
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 2.0 - 1
    stripes = (torch.arange(16)[None, :] % 2).float().expand(16, 16)
    blur = ShuffleBlur()
    for pattern in (checker, stripes):
        diff = blur(x + pattern) - blur(x)  # linear: the pattern's own response
        assert diff[..., 1:-1, 1:-1].sub(diff[..., 1:-1, 1:-1].mean()).abs().max() < 1e-5
    plain = CascadeGenerator(width=0.0625)
    blurred = CascadeGenerator(width=0.0625, shuffle_blur=True)
    assert plain.state_dict().keys() == blurred.state_dict().keys()
    assert blurred.init_args()["shuffle_blur"] is True
    assert "shuffle_blur" not in plain.init_args()  # older checkpoints' metadata is unchanged
    out = CascadeGenerator(**blurred.init_args())(pyramid)
    assert out[128].shape[-1] == 128
