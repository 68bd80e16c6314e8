"""Mask kinds: area statistics, containment, determinism, resolution independence."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from facectx.masks import (
    CenterMask,
    FaceHullMask,
    FacialMask,
    IrregularMask,
    OcularMask,
    face_hull,
    hull_mask,
)


def hole(mask: torch.Tensor) -> torch.Tensor:
    return mask < 0.5


def check_mask(m: torch.Tensor, h: int, w: int) -> None:
    assert m.shape == (1, h, w) and m.dtype == torch.float32
    assert set(m.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("size", [64, 128, 256])
def test_center_area_is_three_fifths_squared(size):
    m = CenterMask()(size)
    check_mask(m, size, size)
    side = round(0.6 * size)
    assert hole(m).sum().item() == side * side
    assert abs(hole(m).float().mean().item() - 0.36) < 0.01
    ys, xs = torch.nonzero(hole(m)[0], as_tuple=True)
    # centred: equal margins up to one pixel
    assert abs(ys.min().item() - (size - 1 - ys.max().item())) <= 1
    assert abs(xs.min().item() - (size - 1 - xs.max().item())) <= 1


def test_center_non_square_and_jitter():
    m = CenterMask()((96, 160))
    check_mask(m, 96, 160)
    assert hole(m).sum().item() == round(0.6 * 96) * round(0.6 * 160)
    jit = CenterMask(jitter=0.15)
    g = torch.Generator().manual_seed(0)
    draws = [jit(128, None, g) for _ in range(50)]
    areas = {hole(d).sum().item() for d in draws}
    assert areas == {77 * 77}  # jitter moves the hole, never clips it
    assert len({tuple(torch.nonzero(hole(d)[0])[0].tolist()) for d in draws}) > 5
    with pytest.raises(ValueError, match="generator"):
        jit(128)


def test_irregular_area_within_range_over_200_draws():
    mask = IrregularMask(area_range=(0.1, 0.5))
    g = torch.Generator().manual_seed(123)
    areas = []
    for _ in range(200):
        m = mask(128, None, g)
        areas.append(hole(m).float().mean().item())
    check_mask(m, 128, 128)
    areas = np.array(areas)
    assert areas.min() >= 0.1 and areas.max() <= 0.5
    assert 0.25 < areas.mean() < 0.35  # the target is uniform in the range
    assert areas.std() > 0.08


@pytest.mark.parametrize("size", [64, 256, (96, 160)])
def test_irregular_any_resolution(size):
    mask = IrregularMask(area_range=(0.2, 0.3))
    g = torch.Generator().manual_seed(5)
    for _ in range(10):
        m = mask(size, None, g)
        h, w = (size, size) if isinstance(size, int) else size
        check_mask(m, h, w)
        assert 0.2 <= hole(m).float().mean().item() <= 0.3


def test_irregular_determinism():
    mask = IrregularMask()
    a = mask(128, None, torch.Generator().manual_seed(7))
    b = mask(128, None, torch.Generator().manual_seed(7))
    c = mask(128, None, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(a, mask(128, None, 7))  # an int seed is a generator seeded with it
    with pytest.raises(ValueError, match="generator"):
        mask(128)


def test_irregular_rejects_bad_ranges_and_impossible_targets():
    with pytest.raises(ValueError):
        IrregularMask(area_range=(0.5, 0.1))
    impossible = IrregularMask(area_range=(0.9, 0.95), width=(0.01, 0.01), max_strokes=3)
    with pytest.raises(RuntimeError, match="area_range"):
        impossible(64, None, 0)


def test_hull_contains_every_landmark_and_matches_numpy(random_landmarks):
    for lm in random_landmarks(128, 200, seed=1):
        m = FaceHullMask()(128, torch.from_numpy(lm))
        check_mask(m, 128, 128)
        assert torch.equal(m[0], torch.from_numpy(hull_mask(lm, 128)).float())
        # inner points (brows, eyes, nose, mouth) fall on hull pixels; boundary points (the
        # jaw, the brows' tops) lie within a pixel of one
        x, y = np.round(lm).astype(int).T
        assert m[0, y[27:], x[27:]].min().item() == 1.0
        near = torch.nn.functional.max_pool2d(m[None], 3, stride=1, padding=1)[0, 0]
        assert near[y, x].min().item() == 1.0
    assert torch.equal(face_hull(lm, 128), m)


def test_hull_area_statistics(random_landmarks):
    areas = [
        FaceHullMask()(128, torch.from_numpy(lm)).mean().item() for lm in random_landmarks(128, 200)
    ]
    assert 0.2 < min(areas) and max(areas) < 0.6


@pytest.mark.parametrize("brows", [False, True])
def test_facial_and_ocular_nested_inside_hull(random_landmarks, brows):
    facial, ocular = FacialMask(brows=brows), OcularMask(brows=brows)
    for lm in random_landmarks(128, 200, seed=2):
        lm_t = torch.from_numpy(lm)
        f, o = facial(128, lm_t), ocular(128, lm_t)
        check_mask(f, 128, 128)
        check_mask(o, 128, 128)
        assert not (hole(o) & ~hole(f)).any(), "ocular hole must lie inside the facial hole"
        assert hole(o).sum() > 0 and hole(f).sum() > 1.5 * hole(o).sum()
        if not brows:  # grown brows may poke out of the landmark hull at the top
            hull = torch.from_numpy(hull_mask(lm, 128)).bool()
            assert not (hole(f)[0] & ~hull).any(), "facial hole must lie inside the face hull"


def test_ocular_covers_both_eyes(template):
    lm = template(128)
    o = OcularMask(grow=0.0)(128, torch.from_numpy(lm))
    for part in (range(36, 42), range(42, 48)):
        cx, cy = np.round(lm[list(part)].mean(0)).astype(int)
        assert o[0, cy, cx] == 0
    nose_tip = np.round(lm[30]).astype(int)
    assert o[0, nose_tip[1], nose_tip[0]] == 1


@pytest.mark.parametrize("size", [64, 128, 256])
def test_landmark_masks_scale_with_resolution(template, size):
    lm = torch.from_numpy(template(size))
    ref = {
        k: hole(m(128, torch.from_numpy(template(128)))).float().mean().item()
        for k, m in {"facial": FacialMask(), "ocular": OcularMask(), "hull": FaceHullMask()}.items()
    }
    for k, m in {"facial": FacialMask(), "ocular": OcularMask(), "hull": FaceHullMask()}.items():
        frac = hole(m(size, lm)).float().mean().item()
        assert abs(frac - ref[k]) < 0.25 * ref[k] + 0.01, k


def test_landmark_masks_need_landmarks():
    for kind in (FaceHullMask(), FacialMask(), OcularMask()):
        with pytest.raises(ValueError, match="landmarks"):
            kind(64)
    with pytest.raises(ValueError, match="68"):
        FacialMask()(64, torch.zeros(5, 2))


def test_masks_are_deterministic_functions_and_picklable(template):
    lm = torch.from_numpy(template(128))
    for kind in (FaceHullMask(), CenterMask(), FacialMask(), OcularMask(), IrregularMask()):
        clone = pickle.loads(pickle.dumps(kind))  # DataLoader workers receive copies
        a = kind(128, lm, torch.Generator().manual_seed(3))
        b = clone(128, lm, torch.Generator().manual_seed(3))
        assert torch.equal(a, b), kind
        assert repr(kind).startswith(type(kind).__name__)
