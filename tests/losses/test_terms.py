"""Each loss term on tiny hand-computed tensors; weights applied once; frozen nets stay frozen."""

import pytest
import torch
from torch import nn

from facectx.losses import CascadeLoss, terms


def test_pixel_l1_l2_by_hand():
    pred = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    target = torch.zeros_like(pred)
    assert terms.pixel_l1(pred, target).item() == pytest.approx(1.5)
    assert terms.pixel_l2(pred, target).item() == pytest.approx((0 + 1 + 4 + 9) / 4)
    weight = torch.tensor([[[[0.0, 0.0], [1.0, 1.0]]]])  # only the bottom row counts
    assert terms.pixel_l1(pred, target, weight).item() == pytest.approx(2.5)


def test_lsgan_terms_by_hand():
    d = torch.tensor([0.5, 1.0, 0.0])
    assert terms.lsgan_generator(d).item() == pytest.approx((0.25 + 0 + 1) / 3)
    assert terms.lsgan_discriminator(d, 0.9).item() == pytest.approx((0.16 + 0.01 + 0.81) / 3)
    assert terms.lsgan_discriminator(d, 0.0).item() == pytest.approx((0.25 + 1 + 0) / 3)


def test_identity_mse_by_hand():
    a = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    assert terms.identity_mse(a, b).item() == pytest.approx((1 + 4 + 0 + 4) / 4)
    with pytest.raises(ValueError, match="shape"):
        terms.identity_mse(a, b[:, :1])


def test_total_variation_eq5_by_hand():
    # one 1-channel 2x2 image [[0, 1], [3, 5]]: horizontal diffs 1, 2; vertical 3, 4
    x = torch.tensor([[[[0.0, 1.0], [3.0, 5.0]]]])
    assert terms.total_variation(x).item() == pytest.approx(1 + 4 + 9 + 16)
    # batch mean, channel sum
    x2 = torch.cat([x, torch.zeros_like(x)]).repeat(1, 2, 1, 1)
    assert terms.total_variation(x2).item() == pytest.approx(2 * 30 / 2)


class Halves(nn.Module):
    """A fake 'identity network': the mean of each image half, 2-D features."""

    def forward(self, x):
        return torch.stack([x[..., : x.shape[-1] // 2].mean((1, 2, 3)), x.mean((1, 2, 3))], 1)


class Dist(nn.Module):
    def forward(self, a, b):
        return (a - b).abs().mean((1, 2, 3))


def _pyr(sizes, fill):
    return {s: torch.full((2, 3, s, s), fill) for s in sizes}


def test_weights_applied_once_and_logged_raw_and_weighted():
    loss = CascadeLoss(
        lambda_pc=2.0,
        lambda_adv=0.5,
        lambda_id=3.0,
        lambda_tv=0.0,
        lpips=Dist(),
        identity=Halves(),
        lpips_min_size=16,
    )
    fake, real = _pyr((8, 16), 0.5), _pyr((8, 16), 0.0)
    d_fake = {8: torch.full((2, 1), 0.0), 16: torch.full((2, 1), 0.0)}
    total, logs = loss.generator_loss(fake, real, d_fake)
    # block 8: pixel .5 + adv .5*1 + id 3*.25 (no pc: below lpips_min_size)
    assert "g8/pc" not in logs and "g16/pc" in logs
    assert logs["g8/total"].item() == pytest.approx(0.5 + 0.5 + 0.75)
    # block 16 adds pc 2 * 0.5
    assert logs["g16/total"].item() == pytest.approx(0.5 + 0.5 + 0.75 + 1.0)
    assert logs["g16/pc_w"].item() == pytest.approx(2 * logs["g16/pc"].item())
    assert total.item() == pytest.approx(logs["g8/total"].item() + logs["g16/total"].item())
    assert "g8/tv" not in logs  # weight 0: not computed


def test_switched_off_terms_and_missing_networks():
    loss = CascadeLoss(lambda_pc=1.0, lambda_id=10.0, lpips=None, identity=None, lambda_adv=0.0)
    assert loss.active_terms(128) == ["pixel", "tv"]
    assert not loss.uses_adversarial
    _, logs = loss.generator_loss(_pyr((32,), 1.0), _pyr((32,), 0.0))
    assert set(logs) == {"g32/pixel", "g32/pixel_w", "g32/tv", "g32/tv_w", "g32/total", "g/total"}
    with pytest.raises(ValueError, match="pixel"):
        CascadeLoss(pixel="l3")


def test_discriminator_loss_separate_real_and_fake():
    loss = CascadeLoss(real_label=0.9)
    d_real = {8: torch.full((4, 1), 0.9)}
    d_fake = {8: torch.full((4, 1), 1.0)}
    total, logs = loss.discriminator_loss(d_real, d_fake)
    assert logs["d8/real"].item() == pytest.approx(0.0)
    assert logs["d8/fake"].item() == pytest.approx(1.0)
    assert total.item() == pytest.approx(0.5)


def test_valid_mask_restricts_pixel_loss():
    loss = CascadeLoss(lambda_adv=0.0, lambda_tv=0.0)
    fake = {8: torch.ones(1, 3, 8, 8)}
    real = {8: torch.zeros(1, 3, 8, 8)}
    valid = {8: torch.zeros(1, 1, 8, 8)}
    valid[8][..., :4] = 1
    fake[8][..., 4:] = 100.0  # error outside the valid region must not count
    _, logs = loss.generator_loss(fake, real, valid=valid)
    assert logs["g8/pixel"].item() == pytest.approx(1.0)


def test_frozen_networks_follow_dtype_but_not_state_or_training():
    net = nn.Linear(2, 2)
    loss = CascadeLoss(identity=net)
    assert list(loss.parameters()) == []
    assert loss.state_dict() == {}
    loss.train()
    assert not net.training and not net.weight.requires_grad
    loss.double()
    assert net.weight.dtype == torch.float64


def test_ssim_distance_matches_the_evaluation_and_prefers_a_flat_guess_to_wrong_texture():
    from facectx.metrics.image import ssim

    g = torch.Generator().manual_seed(0)
    real = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    assert terms.ssim_distance(real, real).item() == pytest.approx(0.0, abs=1e-6)
    fake = (torch.rand(2, 3, 32, 32, generator=g) * 2 - 1).requires_grad_(True)
    d = terms.ssim_distance(fake, real)
    assert d.item() == pytest.approx(1 - ssim(fake.detach(), real).mean().item(), abs=1e-5)
    d.backward()
    assert fake.grad.abs().sum() > 0
    # the property the term exists for: texture in the wrong place scores worse than flat grey
    flat = torch.zeros_like(real)
    assert terms.ssim_distance(flat, real) < terms.ssim_distance(fake.detach(), real)
    with pytest.raises(ValueError, match="11 px"):
        terms.ssim_distance(real[..., :8, :8], real[..., :8, :8])


def test_ssim_term_only_on_large_blocks_and_weighted_once():
    loss = CascadeLoss(lambda_adv=0.0, lambda_tv=0.0, lambda_ssim=2.0, ssim_min_size=16)
    assert loss.active_terms(8) == ["pixel"] and loss.active_terms(16) == ["pixel", "ssim"]
    g = torch.Generator().manual_seed(1)
    fake = {s: torch.rand(1, 3, s, s, generator=g) for s in (8, 16)}
    real = {s: torch.zeros(1, 3, s, s) for s in (8, 16)}
    _, logs = loss.generator_loss(fake, real)
    assert "g8/ssim" not in logs
    assert logs["g16/ssim_w"].item() == pytest.approx(2 * logs["g16/ssim"].item())
    assert CascadeLoss().active_terms(128).count("ssim") == 0  # off by default (paper eq. 6)
    with pytest.raises(ValueError, match="ssim_min_size"):
        CascadeLoss(ssim_min_size=8)


def test_ssim_term_starts_at_its_iteration():
    loss = CascadeLoss(lambda_adv=0.0, lambda_tv=0.0, lambda_ssim=1.0, ssim_start=10)
    assert loss.active_terms(64, iteration=9) == ["pixel"]
    assert loss.active_terms(64, iteration=10) == ["pixel", "ssim"]
    assert loss.active_terms(64) == ["pixel", "ssim"]  # no iteration: every switched-on term
    fake, real = {64: torch.rand(1, 3, 64, 64)}, {64: torch.zeros(1, 3, 64, 64)}
    _, before = loss.generator_loss(fake, real, iteration=3)
    _, after = loss.generator_loss(fake, real, iteration=10)
    assert "g64/ssim" not in before and "g64/ssim" in after
    assert after["g64/total"] > before["g64/total"]
    with pytest.raises(ValueError, match="ssim_start"):
        CascadeLoss(ssim_start=-1)
