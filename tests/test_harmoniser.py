"""The context harmoniser (facectx.zoo.harmoniser): what it may change, and its training input."""

from __future__ import annotations

import pytest
import torch

from facectx.losses.harmoniser import near_face_l1
from facectx.zoo.exemplar import rgb_to_lab
from facectx.zoo.harmoniser import ContextHarmoniser, relight_context
from facectx.zoo.layers import count_parameters


def _batch(b: int = 2, size: int = 32, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(b, 3, size, size, generator=gen) * 1.6 - 0.8
    keep = torch.zeros(b, 1, size, size)
    keep[:, :, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
    valid = torch.ones(b, 1, size, size)
    valid[:, :, :, :2] = 0  # a strip beyond the photo's edge
    return image, keep, valid


def _trained_like(net: ContextHarmoniser, seed: int = 1) -> ContextHarmoniser:
    """Give the zero-initialised head weights, as training would."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        net.head.weight.copy_(torch.randn(net.head.weight.shape, generator=gen) * 0.5)
        net.head.bias.copy_(torch.randn(net.head.bias.shape, generator=gen) * 0.5)
    return net


def test_an_untrained_harmoniser_returns_its_input():
    image, keep, valid = _batch()
    out = ContextHarmoniser(width=0.25)(image, keep, valid)
    assert torch.equal(out, image)


def test_only_context_inside_the_photo_changes():
    image, keep, valid = _batch()
    net = _trained_like(ContextHarmoniser(width=0.25))
    out = net(image, keep, valid)
    frozen = (keep > 0.5) | (valid < 0.5)
    assert torch.equal(out[frozen.expand_as(out)], image[frozen.expand_as(image)])
    context = ~frozen.expand_as(out)
    assert (out[context] - image[context]).abs().mean() > 1e-3  # it does act on the context
    assert out.min() >= -1 and out.max() <= 1


def test_gradients_reach_every_parameter():
    image, keep, valid = _batch()
    net = _trained_like(ContextHarmoniser(width=0.25))
    target = image.flip(3)
    near_face_l1(net(image, keep, valid), target, keep, valid).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_width_scales_the_network_and_scale_one_runs_at_full_size():
    small, full = ContextHarmoniser(width=0.25), ContextHarmoniser(width=1.0)
    assert count_parameters(small) < count_parameters(full) / 8
    image, keep, valid = _batch(size=16)
    out = _trained_like(ContextHarmoniser(width=0.25, scale=1))(image, keep, valid)
    assert out.shape == image.shape


def test_bad_sizes_say_what_is_needed():
    net = ContextHarmoniser(width=0.25)
    image, keep, valid = _batch(size=24)  # 24 does not divide by 16
    with pytest.raises(ValueError, match="divides by 16"):
        net(image, keep, valid)
    image, keep, valid = _batch(size=32)
    with pytest.raises(ValueError, match="kept and valid"):
        net(image, keep[:, :, :16], valid)


def test_relighting_changes_only_the_context_and_is_seeded():
    image, keep, _ = _batch(b=8, size=32)
    a = relight_context(image, keep, torch.Generator().manual_seed(3), chance=1.0)
    b = relight_context(image, keep, torch.Generator().manual_seed(3), chance=1.0)
    c = relight_context(image, keep, torch.Generator().manual_seed(4), chance=1.0)
    assert torch.equal(a, b) and not torch.equal(a, c)
    inside = (keep > 0.5).expand_as(a)
    assert torch.equal(a[inside], image[inside])
    # the context's lightness moves by several L* on average in every image
    moved = (rgb_to_lab(a)[:, 0] - rgb_to_lab(image)[:, 0]).abs()
    assert (moved * (1 - keep[:, 0])).flatten(1).mean(1).min() > 0.5


def test_relighting_can_be_switched_off():
    image, keep, _ = _batch()
    out = relight_context(image, keep, torch.Generator().manual_seed(0), chance=0.0)
    assert torch.allclose(out, image, atol=2e-3)  # only the Lab round trip


def test_near_face_l1_ignores_the_face_and_weights_the_ring_near_it():
    image, keep, valid = _batch(b=1, size=32)
    assert near_face_l1(image, image, keep, valid) == 0
    face_only = image + keep * 0.5
    assert near_face_l1(face_only, image, keep, valid) == 0
    near = image.clone()
    near[:, :, 7, 8:24] += 0.5  # one row 1 px above the face
    far = image.clone()
    far[:, :, 0, 8:24] += 0.5  # one row at the frame's top
    assert near_face_l1(near, image, keep, valid) > near_face_l1(far, image, keep, valid)


def test_edged_relighting_changes_most_next_to_the_face():
    size = 64
    image = torch.zeros(16, 3, size, size)  # flat grey: any change is the re-lighting's
    keep = torch.zeros(16, 1, size, size)
    keep[:, :, 24:40, 24:40] = 1
    plain = relight_context(image, keep, torch.Generator().manual_seed(5), chance=1.0, faded=0)
    edged = relight_context(
        image, keep, torch.Generator().manual_seed(5), chance=1.0, faded=0, edged=1.0, edge=6.0
    )
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    away = torch.maximum((ys - 31.5).abs(), (xs - 31.5).abs()) - 8  # px outside the square
    near, far = (away > 0) & (away <= 3), away >= 20

    def change(out, where):
        return (rgb_to_lab(out)[:, 0] - rgb_to_lab(image)[:, 0]).abs()[:, where].mean()

    assert change(edged, near) > 4 * change(edged, far)  # a band at the outline, not beyond
    assert change(plain, far) > 0.5 * change(plain, near)  # without it: the whole context
    # edged=0 draws nothing more: the same stream as a call that leaves it out
    same = relight_context(
        image, keep, torch.Generator().manual_seed(5), chance=1.0, faded=0, edged=0
    )
    assert torch.equal(same, plain)
