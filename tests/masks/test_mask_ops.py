"""Dilation, feathering, conservative downsampling, masking, and the mixed sampler."""

from __future__ import annotations

import pytest
import torch

from facectx.masks import (
    CenterMask,
    FacialMask,
    IrregularMask,
    MaskSampler,
    apply_mask,
    dilate_hole,
    downsample_keep,
    feather,
    sample_batch,
)


def test_dilate_grows_the_hole_by_k_pixels():
    m = CenterMask()(64)  # hole rows/cols 13..50 (38 px)
    d = dilate_hole(m, 3)
    assert set(d.unique().tolist()) <= {0.0, 1.0}
    assert (d <= m).all()  # only more hole
    assert (d[0, 32, :] == 0).sum() == 38 + 2 * 3  # a straight edge moves by exactly k
    assert torch.equal(dilate_hole(m, 0), m)
    batched = dilate_hole(m[None].repeat(2, 1, 1, 1), 3)
    assert batched.shape == (2, 1, 64, 64) and torch.equal(batched[1], d)


def test_kind_dilate_option_matches_op():
    assert torch.equal(CenterMask(dilate=2)(64), dilate_hole(CenterMask()(64), 2))


def test_feather_is_soft_outside_the_hole_only():
    m = CenterMask()(64)
    f = feather(m, 4)
    assert f.shape == m.shape
    assert (f[m == 0] == 0).all()  # the hole stays exactly 0
    assert ((f > 0) & (f < 1)).any()  # not binary
    assert f.min() >= 0 and f.max() <= 1
    assert (f[0, 32, :8] == 1).all()  # far from the hole: fully known
    assert (f[0, 32, 51:55].diff() > 0).all()  # ramps up away from the hole
    assert torch.equal(feather(torch.ones(1, 8, 8), 3), torch.ones(1, 8, 8))
    soft = FacialMask(feather=3)
    assert soft.feather == 3


def test_downsample_keep_is_conservative():
    g = torch.Generator().manual_seed(0)
    m = sample_batch(IrregularMask(), 64, n=4, generator=g)
    for s in (8, 16, 32, 48):
        d = downsample_keep(m, s)
        assert d.shape == (4, 1, s, s)
        assert set(d.unique().tolist()) <= {0.0, 1.0}
        if 64 % s == 0:
            cell_all_known = torch.nn.functional.avg_pool2d(m, 64 // s) == 1
            assert torch.equal(d.bool(), cell_all_known)
    assert downsample_keep(m, 64) is m


def test_apply_mask():
    img = torch.rand(2, 3, 16, 16) * 2 - 1
    m = (torch.rand(2, 1, 16, 16) > 0.5).float()
    out = apply_mask(img, m)
    assert torch.equal(out[m.expand_as(img) == 1], img[m.expand_as(img) == 1])
    assert (out[m.expand_as(img) == 0] == -1).all()


def test_sampler_frequencies_and_determinism():
    center, irregular = CenterMask(), IrregularMask()
    sampler = MaskSampler(
        kinds={"irregular": 0.25, "center": 0.75}, masks={"center": center, "irregular": irregular}
    )
    g = torch.Generator().manual_seed(0)
    names = [sampler.sample(32, None, g)[0] for _ in range(400)]
    assert abs(names.count("center") / 400 - 0.75) < 0.07
    a = sample_batch(sampler, 32, n=6, generator=11)
    b = sample_batch(sampler, 32, n=6, generator=11)
    c = sample_batch(sampler, 32, n=6, generator=12)
    assert a.shape == (6, 1, 32, 32) and torch.equal(a, b) and not torch.equal(a, c)
    only = MaskSampler(
        kinds={"center": 1.0, "irregular": 0.0}, masks={"center": center, "irregular": irregular}
    )
    assert all(only.sample(32, None, i)[0] == "center" for i in range(50))


def test_sampler_validates():
    with pytest.raises(ValueError, match="same kinds"):
        MaskSampler(kinds={"center": 1.0}, masks={"irregular": IrregularMask()})
    with pytest.raises(ValueError, match="probabilities"):
        MaskSampler(kinds={"center": -1.0}, masks={"center": CenterMask()})
    with pytest.raises(ValueError, match="generator"):
        MaskSampler(kinds={"center": 1.0}, masks={"center": CenterMask()})(32)


def test_sample_batch_with_landmarks(template):
    lms = torch.stack([torch.from_numpy(template(64)), torch.from_numpy(template(64, scale=0.9))])
    out = sample_batch(FacialMask(), 64, landmarks=lms)
    assert out.shape == (2, 1, 64, 64) and not torch.equal(out[0], out[1])
    with pytest.raises(ValueError):
        sample_batch(CenterMask(), 64)
