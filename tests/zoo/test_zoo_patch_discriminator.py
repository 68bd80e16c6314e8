"""The multi-scale spectral-norm PatchGAN and the loss terms that use it."""

from __future__ import annotations

import pytest
import torch

from facectx.losses import CascadeLoss, terms
from facectx.zoo import PatchDiscriminator
from facectx.zoo.patch_discriminator import as_scales, patch_weights


@pytest.mark.parametrize(
    "size, logit_sizes",
    [(8, [(2, 2)]), (16, [(2, 2)]), (64, [(8, 8), (4, 4)]), (128, [(16, 16), (8, 8)])],
)
def test_scales_and_logit_sizes(size, logit_sizes):
    d = PatchDiscriminator(size, width=0.125, conditional=True)
    out = d(torch.randn(2, 4, size, size))
    assert len(out) == len(logit_sizes)
    for feats, hw in zip(out, logit_sizes):
        assert feats[-1].shape == (2, 1, *hw)
        assert len(feats) >= 3  # intermediate features for feature matching, then logits


def test_every_conv_is_spectrally_normalised_and_there_is_no_batch_norm():
    d = PatchDiscriminator(128, width=0.25)
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(hasattr(c, "parametrizations") for c in convs)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())


def test_wrong_channel_count_names_the_problem():
    d = PatchDiscriminator(64, width=0.125, conditional=True)
    with pytest.raises(ValueError, match="image \\+ mask"):
        d(torch.randn(1, 3, 64, 64))


def test_hinge_terms():
    logits = torch.tensor([[[[2.0, -2.0]]]])
    assert terms.hinge_discriminator(logits, real=True) == pytest.approx(1.5)  # relu(-1), relu(3)
    assert terms.hinge_discriminator(logits, real=False) == pytest.approx(1.5)
    assert terms.hinge_generator(logits) == pytest.approx(0.0)
    w = torch.tensor([[[[1.0, 0.0]]]])
    assert terms.hinge_generator(logits, w) == pytest.approx(-2.0)


def test_feature_matching_is_zero_for_equal_features_and_ignores_logits():
    a = [[torch.ones(1, 2, 4, 4), torch.zeros(1, 1, 2, 2)]]
    b = [[torch.ones(1, 2, 4, 4), torch.full((1, 1, 2, 2), 5.0)]]
    assert terms.feature_matching(a, b) == 0
    c = [[torch.full((1, 2, 4, 4), 3.0), torch.zeros(1, 1, 2, 2)]]
    assert terms.feature_matching(a, c) == pytest.approx(2.0)


def test_patch_weights_are_context_fractions():
    region = torch.zeros(1, 1, 8, 8)
    region[..., :, :4] = 1  # left half is context
    w = patch_weights(region, torch.zeros(1, 1, 2, 2))
    assert torch.equal(w, torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]]))


def test_context_only_adversarial_ignores_face_patches():
    """With adv_context_only, the generator's adversarial gradient never reaches logits of
    patches that are entirely face (pasted input pixels)."""
    loss = CascadeLoss(lambda_pc=0, lambda_id=0, adversarial="hinge", adv_context_only=True)
    logits = torch.zeros(1, 1, 2, 2, requires_grad=True)
    region = torch.zeros(1, 1, 8, 8)
    region[..., :4, :] = 1  # top half is context
    loss._adv_g([[logits]], region).backward()
    assert (logits.grad[..., 1, :] == 0).all() and (logits.grad[..., 0, :] != 0).all()


def test_as_scales_wraps_a_plain_tensor():
    t = torch.zeros(1, 1, 4, 4)
    assert as_scales(t)[0][0] is t
