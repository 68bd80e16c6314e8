"""CASIA-Net patch discriminators: depth per size, output range, He initialisation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from facectx.zoo import CasiaDiscriminator, casia_depth

SIZES = (8, 16, 32, 64, 128)
TINY = 1 / 8  # width multiplier for fast tests


@pytest.mark.parametrize("size", SIZES)
def test_output_shape_and_range(size):
    d = CasiaDiscriminator(size, width=TINY)
    y = d(torch.rand(3, 3, size, size) * 2 - 1)
    assert y.shape == (3, 1, 4, 4) and d.out_size == 4
    assert ((y > 0) & (y < 1)).all()


def test_depth_table():
    assert {s: casia_depth(s) for s in SIZES} == {8: 1, 16: 2, 32: 3, 64: 4, 128: 5}
    assert casia_depth(256) == 5  # stages run out: output 8×8
    assert CasiaDiscriminator(256, width=TINY)(torch.zeros(2, 3, 256, 256)).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError):
        casia_depth(4)


def test_casia_filters_and_norms():
    d = CasiaDiscriminator(128)
    convs = [m for m in d.features.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 64, 128, 96, 192, 128, 256, 160, 320]
    assert [c.stride[0] for c in convs] == [1, 2] * 5
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert [hasattr(u, "bn") for u in d.features] == [False] + [True] * 9
    assert d.head.out_channels == 1
    assert not any(isinstance(m, nn.MaxPool2d | nn.AvgPool2d | nn.Linear) for m in d.modules())
    acts = [m for m in d.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 10 and all(a.negative_slope == 0.2 for a in acts)
    assert CasiaDiscriminator(8, width=0.5).features.conv12.conv.out_channels == 32


def test_he_init_statistics():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        d = CasiaDiscriminator(128)
    for name, m in d.named_modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            want = math.sqrt(2 / ((1 + 0.2**2) * fan_in))
            w = m.weight.detach()
            tol = 0.1 if w.numel() > 500 else 0.3
            assert abs(w.std().item() / want - 1) < tol, name
            assert abs(w.mean().item()) < 0.1 * want, name
            if m.bias is not None:
                assert torch.equal(m.bias, torch.zeros_like(m.bias)), name
        elif isinstance(m, nn.BatchNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight))
            assert torch.equal(m.bias, torch.zeros_like(m.bias))


def test_rejects_bad_input():
    d = CasiaDiscriminator(16, width=TINY)
    with pytest.raises(ValueError):
        d(torch.zeros(1, 3, 32, 32))
