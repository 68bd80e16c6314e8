"""Pixel metrics on hand-computed cases, and agreement with torchmetrics."""

from __future__ import annotations

import math

import pytest
import torch

from facectx.metrics import mse, psnr, region_mean, ssim


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_identical_images_score_perfectly():
    x = _rand(3, 3, 32, 32)
    assert torch.allclose(ssim(x, x), torch.ones(3))
    assert torch.equal(mse(x, x), torch.zeros(3))
    assert torch.isinf(psnr(x, x)).all()


def test_mse_and_psnr_hand_case():
    # [-1, 1] images 0.0 and 0.5 are 0.5 and 0.75 in [0, 1]: every pixel differs by 0.25.
    a, b = torch.zeros(2, 3, 8, 8), torch.full((2, 3, 8, 8), 0.5)
    assert torch.allclose(mse(a, b), torch.full((2,), 0.0625))
    assert torch.allclose(psnr(a, b), torch.full((2,), 10 * math.log10(1 / 0.0625)))


def test_region_restricts_the_average():
    a, b = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    b[..., :2] = 1.0  # left half differs by 0.5 in [0, 1] units
    left = torch.zeros(1, 1, 4, 4)
    left[..., :2] = 1
    assert mse(a, b, left).item() == pytest.approx(0.25)
    assert mse(a, b, 1 - left).item() == 0.0
    assert mse(a, b).item() == pytest.approx(0.125)
    assert torch.isnan(mse(a, b, torch.zeros(1, 1, 4, 4))).all()  # empty region


def test_full_frame_region_matches_torchmetrics():
    from torchmetrics.functional.image import (
        peak_signal_noise_ratio,
        structural_similarity_index_measure,
    )

    a, b = _rand(2, 3, 24, 24, seed=1), _rand(2, 3, 24, 24, seed=2)
    ones = torch.ones(2, 1, 24, 24)
    ua, ub = (a + 1) / 2, (b + 1) / 2
    for k in range(2):
        tm_ssim = structural_similarity_index_measure(ua[k : k + 1], ub[k : k + 1], data_range=1.0)
        assert ssim(a, b)[k].item() == pytest.approx(tm_ssim.item(), abs=1e-6)
        tm_psnr = peak_signal_noise_ratio(ua[k : k + 1], ub[k : k + 1], data_range=1.0)
        assert psnr(a, b)[k].item() == pytest.approx(tm_psnr.item(), abs=1e-4)
    assert torch.allclose(ssim(a, b, ones), ssim(a, b), atol=1e-6)
    assert torch.allclose(psnr(a, b, ones), psnr(a, b), atol=1e-4)


def test_region_mean_weights_every_channel():
    v = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    r = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).expand(2, 1, 2, 2)
    assert torch.equal(region_mean(v, r), v[:, :, 0, 0].mean(1))


def test_shape_errors_are_explicit():
    with pytest.raises(ValueError, match="same shape"):
        mse(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))
    with pytest.raises(ValueError, match="region"):
        mse(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4))


def test_colour_detail_counts_colour_speckles_not_light_detail_or_flat_colour():
    from facectx.metrics.image import colour_detail

    g = torch.Generator().manual_seed(0)
    flat = torch.zeros(1, 3, 32, 32)
    flat[:, 0] = 0.4  # a flat reddish skin tone
    gray_noise = torch.rand(1, 1, 32, 32, generator=g).expand(1, 3, 32, 32) * 0.4 - 0.2
    colour_noise = torch.rand(1, 3, 32, 32, generator=g) * 0.4 - 0.2
    assert colour_detail(flat).item() < 1e-3  # a uniform colour has no colour detail
    assert colour_detail((flat + gray_noise).clamp(-1, 1)).item() < 0.5  # light-dark only
    noisy = colour_detail((flat + colour_noise).clamp(-1, 1)).item()
    assert noisy > 5.0
    region = torch.zeros(1, 1, 32, 32)
    region[..., 8:24, 8:24] = 1
    half = flat.clone()
    half[..., 8:24, 8:24] = (flat + colour_noise)[..., 8:24, 8:24]
    assert colour_detail(half, region).item() > 0.8 * noisy  # measured where the region is
    assert torch.isnan(colour_detail(flat, torch.zeros(1, 1, 32, 32))).all()
    with pytest.raises(ValueError, match="region"):
        colour_detail(flat, torch.ones(1, 1, 8, 8))


def test_edge_strength_sees_a_step_where_the_region_is_and_nothing_on_flat_colour():
    from facectx.metrics.image import edge_strength

    flat = torch.full((1, 3, 16, 16), 0.2)
    step = flat.clone()
    step[..., :, 8:] = -0.6  # a vertical edge between columns 7 and 8
    on_edge = torch.zeros(1, 1, 16, 16)
    on_edge[..., 7:9] = 1
    away = torch.zeros(1, 1, 16, 16)
    away[..., 1:4] = 1
    assert edge_strength(flat).item() < 1e-6
    strong = edge_strength(step, on_edge).item()
    assert strong > 0.2
    assert edge_strength(step, away).item() < 1e-6
    soft = flat.clone()
    soft[..., :, 8:] = -0.1  # a weaker step scores less
    assert 0 < edge_strength(soft, on_edge).item() < 0.5 * strong
    with pytest.raises(ValueError, match="region"):
        edge_strength(flat, torch.ones(1, 1, 8, 8))
