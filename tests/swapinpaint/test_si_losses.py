"""SwapInpaint loss terms on tiny hand-computed tensors, and the bundle's weighting."""

from __future__ import annotations

import math

import pytest
import torch

from facectx.losses.swapinpaint import (
    SwapInpaintLoss,
    adversarial_discriminator,
    adversarial_generator,
    attribute_l2,
    double_attribute,
    gray_gradient,
    hole_l1,
    identity_cosine,
    kl_standard_normal,
    masked_half_l2,
    multiscale_l1,
)


def full(shape, value):
    return torch.full(shape, float(value))


def test_kl_to_standard_normal_by_hand():
    z = torch.zeros(2, 3, 2, 2)
    assert kl_standard_normal(z, z + 1).item() == 0.0
    assert kl_standard_normal(z + 1, z + 1).item() == pytest.approx(0.5)
    e = math.e
    assert kl_standard_normal(z, z + e).item() == pytest.approx(0.5 * (e * e - 1) - 1)
    # mean over elements: half the elements at mu = 2 (KL 2), half at 0
    mu = torch.tensor([[2.0, 0.0]])
    assert kl_standard_normal(mu, torch.ones(1, 2)).item() == pytest.approx(1.0)


def test_multiscale_l1_sums_levels_against_the_downsampled_target():
    target = torch.zeros(1, 3, 8, 8)
    outs = [full((1, 3, 2, 2), 0.5), full((1, 3, 4, 4), 0.25), full((1, 3, 8, 8), 0.25)]
    assert multiscale_l1(outs, target).item() == pytest.approx(1.0)
    # a valid mask covering half of the image restricts every level to that half
    valid = torch.ones(1, 1, 8, 8)
    valid[..., 4:] = 0
    target2 = torch.zeros(1, 3, 8, 8)
    target2[..., 6:] = 5.0  # invalid pixels (beyond the downsampling filter's reach) differ
    outs2 = [torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 8, 8)]
    # level 4: the valid half is columns 0-1 (min-pooled), target there is 0 -> 0 error
    assert multiscale_l1(outs2, target2, valid).item() == pytest.approx(0.0)


def test_masked_half_l2_counts_known_pixels_of_same_person_pairs_only():
    pred = torch.zeros(2, 3, 4, 4)
    target = torch.zeros(2, 3, 4, 4)
    keep = torch.ones(2, 1, 4, 4)
    keep[:, :, :2] = 0  # top half is the hole
    target[:, :, 2:] = 2.0  # known region differs by 2 -> ½·4 = 2
    target[:, :, :2] = 100.0  # the hole differs a lot but is not compared
    assert masked_half_l2(pred, target, keep, torch.tensor([1.0, 1.0])).item() == pytest.approx(2.0)
    assert masked_half_l2(pred, target, keep, torch.tensor([0.0, 0.0])).item() == 0.0
    target[1] = 0.0  # second image perfect; average over same pairs only
    assert masked_half_l2(pred, target, keep, torch.tensor([1.0, 1.0])).item() == pytest.approx(1.0)
    assert masked_half_l2(pred, target, keep, torch.tensor([1.0, 0.0])).item() == pytest.approx(2.0)


def test_identity_cosine_distance():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[3.0, 0.0], [0.0, 2.0], [-1.0, 0.0]])
    # 1 - cos: 0, 1, 2 -> mean 1
    assert identity_cosine(a, b).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        identity_cosine(a, torch.zeros(3, 3))


def test_attribute_and_double_attribute_losses():
    x = [torch.zeros(1, 2, 2, 2), torch.zeros(1, 4, 4, 4)]
    a = [full((1, 2, 2, 2), 1.0), full((1, 4, 4, 4), 2.0)]  # level means 1 and 4 -> ½·5
    assert attribute_l2(a, x).item() == pytest.approx(2.5)
    b = [full((1, 2, 2, 2), 2.0), torch.zeros(1, 4, 4, 4)]  # ½·4 = 2
    assert double_attribute(a, b, x).item() == pytest.approx(4.5)


def test_adversarial_forms():
    zero = [torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 1, 1)]
    assert adversarial_generator("bce", zero).item() == pytest.approx(math.log(2))
    r, f = adversarial_discriminator("bce", zero, zero)
    assert r.item() == pytest.approx(math.log(2)) and f.item() == pytest.approx(math.log(2))
    r, f = adversarial_discriminator("hinge", full((1, 1, 2, 2), 2), full((1, 1, 2, 2), -2))
    assert r.item() == 0.0 and f.item() == 0.0
    r, f = adversarial_discriminator("hinge", torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))
    assert r.item() == 1.0 and f.item() == 1.0
    assert adversarial_generator("hinge", full((1, 1, 2, 2), 3)).item() == -3.0
    assert adversarial_generator("lsgan", torch.zeros(1, 1, 2, 2)).item() == 1.0
    # averaged over scales: scale means 0 and 2 -> 1
    assert (
        adversarial_generator("hinge", [torch.zeros(1, 1, 2, 2), full((1, 1, 1, 1), -2)]).item()
        == 1.0
    )
    with pytest.raises(ValueError, match="bce"):
        adversarial_generator("wgan", zero)


def test_bundle_applies_each_weight_once_and_logs_raw_and_weighted():
    loss = SwapInpaintLoss()  # paper weights: C 20/20/1, G 1/10/5/10
    scales = [torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 8, 8)]
    target = full((1, 3, 8, 8), 0.5)  # rec = 0.5 + 0.5
    mu, std = torch.ones(1, 2), torch.ones(1, 2)  # kl = 0.5
    d_fake = [torch.zeros(1, 1, 2, 2)]  # bce = log 2
    total, logs = loss.content_loss(scales, target, mu, std, d_fake)
    assert logs["c/rec"].item() == pytest.approx(1.0)
    assert logs["c/rec_w"].item() == pytest.approx(20.0)
    assert logs["c/kl_w"].item() == pytest.approx(10.0)
    assert total.item() == pytest.approx(20.0 + 10.0 + math.log(2))
    assert logs["c/total"].item() == pytest.approx(total.item())

    keep = torch.ones(1, 1, 2, 2)
    swapped, content = torch.zeros(1, 3, 2, 2), full((1, 3, 2, 2), 1.0)  # rec = ½
    ids = (torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]))  # id = 1
    att = ([full((1, 1, 2, 2), 1.0)], [torch.zeros(1, 1, 2, 2)], [torch.zeros(1, 1, 2, 2)])
    total, logs = loss.swap_loss(
        swapped, content, keep, torch.tensor([1.0]), *ids, *att, d_fake=[full((1, 1, 1, 1), 2.0)]
    )
    # adv (hinge) -2, rec 10·½, id 5·1, att 10·½
    assert logs["g/adv"].item() == -2.0
    assert logs["g/rec_w"].item() == pytest.approx(5.0)
    assert logs["g/id_w"].item() == pytest.approx(5.0)
    assert logs["g/att_w"].item() == pytest.approx(5.0)
    assert total.item() == pytest.approx(13.0)


def test_zero_weights_switch_terms_off():
    loss = SwapInpaintLoss(lambda_id=0.0, lambda_att=0.0, lambda_content_kl=0.0)
    assert not loss.active("swap", "id") and loss.active("swap", "rec")
    _, logs = loss.content_loss(
        [torch.zeros(1, 3, 2, 2)], torch.zeros(1, 3, 2, 2), None, None, [torch.zeros(1, 1, 1, 1)]
    )
    assert "c/kl" not in logs and "c/rec" in logs
    _, logs = loss.swap_loss(
        torch.zeros(1, 3, 2, 2),
        torch.zeros(1, 3, 2, 2),
        torch.ones(1, 1, 2, 2),
        torch.ones(1),
        d_fake=torch.zeros(1, 1, 1, 1),
    )
    assert set(logs) == {"g/adv", "g/adv_w", "g/rec", "g/rec_w", "g/total"}
    with pytest.raises(ValueError, match="every swap loss weight is 0"):
        SwapInpaintLoss(lambda_adv=0, lambda_rec=0, lambda_id=0, lambda_att=0)
    with pytest.raises(ValueError, match="adversarial kind"):
        SwapInpaintLoss(adv="wgan")


def test_valid_mask_restricts_the_reconstruction_term():
    loss = SwapInpaintLoss(lambda_adv=0, lambda_id=0, lambda_att=0)
    keep = torch.ones(1, 1, 2, 2)
    valid = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    content = torch.zeros(1, 3, 2, 2)
    content[..., 1] = 4.0  # only outside the photo
    _, logs = loss.swap_loss(torch.zeros(1, 3, 2, 2), content, keep, torch.ones(1), valid=valid)
    assert logs["g/rec"].item() == 0.0


def test_identity_of_the_composite_scores_the_output_and_its_gradient_reaches_only_the_hole():
    """λ_id_out: I applied to Y (``output``), not Y_sp; off by default; weighted once."""

    class MeanColour(torch.nn.Module):  # a toy identity network: the mean colour
        def forward(self, x):
            return x.mean((2, 3))

    assert not SwapInpaintLoss().active("swap", "id_out")
    loss = SwapInpaintLoss(lambda_adv=0, lambda_rec=0, lambda_id=0, lambda_att=0, lambda_id_out=2.0)
    loss.use_identity(MeanColour())
    swapped = torch.rand(1, 3, 4, 4, requires_grad=True)
    content = torch.rand(1, 3, 4, 4)
    keep = torch.ones(1, 1, 4, 4)
    keep[..., :2, :] = 0  # hole: the top half
    y = keep * content + (1 - keep) * swapped
    ref = torch.tensor([[1.0, 0.0, 0.0]])
    total, logs = loss.swap_loss(swapped, content, keep, torch.zeros(1), id_reference=ref, output=y)
    expected = identity_cosine(y.mean((2, 3)), ref)
    assert logs["g/id_out"].item() == pytest.approx(expected.item())
    assert logs["g/id_out_w"].item() == pytest.approx(2 * expected.item())
    total.backward()
    grad = swapped.grad.abs().sum(1)[0]
    assert grad[:2].sum() > 0 and grad[2:].sum() == 0  # only the hole of Y_sp reaches Y
    with pytest.raises(ValueError, match="lambda_id_out"):
        loss.swap_loss(swapped, content, keep, torch.zeros(1), id_reference=ref)


def test_hole_l1_compares_the_hole_of_same_person_pairs_only():
    pred = torch.zeros(2, 3, 4, 4)
    target = torch.zeros(2, 3, 4, 4)
    hole = torch.zeros(2, 1, 4, 4)
    hole[:, :, :2] = 1  # top half is the hole
    target[:, :, :2] = 0.5  # hole differs by 0.5
    target[:, :, 2:] = 100.0  # the known region differs a lot but is not compared
    same = torch.tensor([1.0, 1.0])
    assert hole_l1(pred, target, hole, same).item() == pytest.approx(0.5)
    assert hole_l1(pred, target, hole, torch.tensor([0.0, 0.0])).item() == 0.0
    target[1, :, :2] = 0.0  # second image exact in its hole: average over same pairs only
    assert hole_l1(pred, target, hole, same).item() == pytest.approx(0.25)
    assert hole_l1(pred, target, hole, torch.tensor([1.0, 0.0])).item() == pytest.approx(0.5)


def test_blurred_hole_l1_keeps_colour_errors_and_drops_fine_detail():
    """``blur``: a hole whose colour is off costs as much as without blur, a zero-mean
    checker (detail the real face does not share) costs far less, a flat image nothing."""
    hole = torch.zeros(1, 1, 32, 32)
    hole[..., 8:24, 8:24] = 1
    same = torch.ones(1)
    flat = torch.zeros(1, 3, 32, 32)
    shifted = flat + 0.3  # a colour error over the whole picture
    ii, jj = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    checker = (((ii + jj) % 2) * 2 - 1).float().expand(1, 3, 32, 32) * 0.3
    assert hole_l1(shifted, flat, hole, same, blur=2.0).item() == pytest.approx(0.3, rel=1e-4)
    plain = hole_l1(checker, flat, hole, same).item()
    assert plain == pytest.approx(0.3)
    assert hole_l1(checker, flat, hole, same, blur=2.0).item() < 0.05 * plain
    assert hole_l1(flat, flat, hole, same, blur=2.0).item() == 0.0
    assert "hole×3 (blur 2 px)" in SwapInpaintLoss(lambda_hole=3, hole_blur=2).describe()
    with pytest.raises(ValueError, match="hole_blur"):
        SwapInpaintLoss(hole_blur=-1.0)


def test_hole_term_is_off_by_default_weighted_once_and_pulls_only_the_hole_to_the_real_face():
    assert not SwapInpaintLoss().active("swap", "hole")
    loss = SwapInpaintLoss(lambda_adv=0, lambda_rec=0, lambda_id=0, lambda_att=0, lambda_hole=3.0)
    swapped = torch.zeros(1, 3, 4, 4, requires_grad=True)
    content = torch.rand(1, 3, 4, 4)
    real = torch.ones(1, 3, 4, 4)
    keep = torch.ones(1, 1, 4, 4)
    keep[..., :2, :] = 0  # hole: the top half
    valid = torch.ones(1, 1, 4, 4)
    valid[..., 0, :] = 0  # the first row lies outside the photo
    total, logs = loss.swap_loss(swapped, content, keep, torch.ones(1), valid=valid, real=real)
    assert logs["g/hole"].item() == pytest.approx(1.0)
    assert logs["g/hole_w"].item() == pytest.approx(3.0)
    total.backward()
    grad = swapped.grad.abs().sum(1)[0]
    assert grad[1].min() > 0  # the valid hole row moves towards the real face
    assert grad[0].sum() == 0 and grad[2:].sum() == 0  # outside the photo, known region: not
    assert (swapped.grad[0, :, 1] < 0).all()  # descent raises Y_sp towards X = 1
    # another person's reference: the real face is not the answer
    _, logs = loss.swap_loss(swapped, content, keep, torch.zeros(1), real=real)
    assert logs["g/hole"].item() == 0.0
    with pytest.raises(ValueError, match="lambda_hole"):
        loss.swap_loss(swapped, content, keep, torch.ones(1))


def test_swap_late_replaces_the_weights_from_late_start_on():
    loss = SwapInpaintLoss(
        lambda_adv=0, lambda_id=0, lambda_att=0, lambda_rec=10, lambda_hole=3,
        swap_late={"rec": 1.0}, late_start=100,
    )  # fmt: skip
    swapped = torch.zeros(1, 3, 4, 4)
    content = torch.full((1, 3, 4, 4), 0.5)
    real = torch.full((1, 3, 4, 4), 0.25)
    keep = torch.ones(1, 1, 4, 4)
    keep[..., :2, :] = 0
    same = torch.ones(1)

    def weighted(iteration):
        _, logs = loss.swap_loss(swapped, content, keep, same, real=real, iteration=iteration)
        assert logs["g/rec"].item() > 0 and logs["g/hole"].item() > 0
        return logs["g/rec_w"] / logs["g/rec"], logs["g/hole_w"] / logs["g/hole"]

    assert [w.item() for w in weighted(None)] == pytest.approx([10, 3])
    assert [w.item() for w in weighted(99)] == pytest.approx([10, 3])
    assert [w.item() for w in weighted(100)] == pytest.approx([1, 3])  # only rec changes
    assert "swap from iteration 100: rec×1, hole×3" in loss.describe()


@pytest.mark.parametrize(
    "late, start, match",
    [
        ({"nope": 1.0}, 5, "unknown terms"),
        ({"id_out": 1.0}, 5, "off"),  # id_out is 0 at first: its networks would be missing
        ({"rec": 1.0}, None, "late_start"),
        ({"rec": 1.0}, -1, "late_start"),
        (None, 5, "names no weights"),
        ({"adv": 0, "rec": 0, "id": 0, "att": 0}, 5, "nothing would train"),
    ],
)
def test_swap_late_rejects_what_cannot_work(late, start, match):
    with pytest.raises(ValueError, match=match):
        SwapInpaintLoss(swap_late=late, late_start=start)


def test_gray_gradient_keeps_values_and_lets_gradients_change_brightness_only():
    x = torch.rand(2, 3, 5, 5, requires_grad=True)
    y = gray_gradient(x)
    assert torch.equal(y, x)
    g = torch.randn(2, 3, 5, 5)
    (y * g).sum().backward()
    # the gradient is g projected onto the gray axis: its channel mean, in every channel
    assert torch.allclose(x.grad, g.mean(1, keepdim=True).expand_as(g), atol=1e-6)


class _MeanColour(torch.nn.Module):  # a toy identity network that sees colour
    def forward(self, x):
        return x.mean((2, 3))


def _identity_grad(loss, iteration=None):
    swapped = torch.rand(1, 3, 4, 4, requires_grad=True)
    content = torch.rand(1, 3, 4, 4)
    keep = torch.ones(1, 1, 4, 4)
    keep[..., :2, :] = 0
    y = keep * content + (1 - keep) * swapped
    ref = torch.tensor([[1.0, 0.0, 0.0]])
    total, logs = loss.swap_loss(
        swapped, content, keep, torch.zeros(1), id_reference=ref, output=y, iteration=iteration
    )
    total.backward()
    return swapped.grad, logs


def test_gray_identity_grad_keeps_the_loss_and_cannot_change_colour():
    """``identity_grad=gray``: the same values of both identity terms; their gradient moves each
    pixel's three channels together (brightness), so it cannot paint colour."""
    kw = dict(lambda_adv=0, lambda_rec=0, lambda_att=0, lambda_id=1.0, lambda_id_out=2.0)
    torch.manual_seed(0)
    rgb, logs_rgb = _identity_grad(SwapInpaintLoss(**kw, identity=_MeanColour()))
    torch.manual_seed(0)
    gray, logs_gray = _identity_grad(
        SwapInpaintLoss(**kw, identity_grad="gray", identity=_MeanColour())
    )
    for k in ("g/id", "g/id_out", "g/total"):
        assert logs_gray[k].item() == pytest.approx(logs_rgb[k].item())
    assert (rgb[:, 0] - rgb[:, 1]).abs().max() > 1e-4  # rgb: the red reference asks for red
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])
    assert torch.allclose(gray, rgb.mean(1, keepdim=True).expand_as(rgb), atol=1e-6)
    assert "identity terms: gray gradient" in SwapInpaintLoss(identity_grad="gray").describe()


def test_late_identity_grad_switches_at_late_start():
    kw = dict(lambda_adv=0, lambda_rec=0, lambda_att=0, lambda_id=1.0, identity=_MeanColour())
    loss = SwapInpaintLoss(**kw, late_identity_grad="gray", late_start=10)
    assert loss.identity_grad_at(None) == "rgb" and loss.identity_grad_at(9) == "rgb"
    assert loss.identity_grad_at(10) == "gray"
    early, _ = _identity_grad(loss, iteration=9)
    late, _ = _identity_grad(loss, iteration=10)
    assert (early[:, 0] - early[:, 1]).abs().max() > 1e-4
    assert torch.allclose(late[:, 0], late[:, 1]) and torch.allclose(late[:, 1], late[:, 2])
    assert loss.swap_weights(10) == loss.swap_weights(None)  # no weight changes with it
    assert "swap from iteration 10: id×1; identity terms: gray gradient" in loss.describe()


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"identity_grad": "grey"}, "identity_grad must be one of"),
        ({"late_identity_grad": "luma", "late_start": 5}, "late_identity_grad must be one of"),
        ({"late_identity_grad": "gray"}, "late_identity_grad needs late_start"),
    ],
)
def test_identity_grad_rejects_what_cannot_work(kw, match):
    with pytest.raises(ValueError, match=match):
        SwapInpaintLoss(**kw)
