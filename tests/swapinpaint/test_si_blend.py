"""Poisson blending: pixels outside the hole are the target's exactly; inside, the source's
gradients meet the target's boundary."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facectx.blend import dilate_mask, poisson_blend


def smooth_image(seed: int, h: int = 96, w: int = 80) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3)).astype(np.uint8), (0, 0), 3)


def holes(h: int = 96, w: int = 80) -> list[np.ndarray]:
    centre = np.zeros((h, w), bool)
    centre[30:60, 20:50] = True
    border = np.zeros((h, w), bool)
    border[:25, :30] = True  # touches two image borders
    border[80:, 60:] = True
    ring = np.zeros((h, w), np.uint8)
    cv2.circle(ring, (40, 48), 20, 1, 5)
    return [centre, border, ring.astype(bool)]


@pytest.mark.parametrize("k", range(3))
@pytest.mark.parametrize("dilate", [0, 3])
def test_output_equals_target_outside_the_hole(k, dilate):
    target, source = smooth_image(0), smooth_image(1)
    hole = holes()[k]
    out = poisson_blend(target, source, hole, dilate=dilate)
    assert out.shape == target.shape and out.dtype == np.uint8
    assert np.array_equal(out[~hole], target[~hole])
    assert not np.array_equal(out[hole], target[hole])


def test_blending_removes_a_colour_offset_and_keeps_source_detail():
    target = smooth_image(0)
    hole = holes()[0]
    source = np.clip(target.astype(int) + 60, 0, 255).astype(np.uint8)  # same detail, brighter
    out = poisson_blend(target, source, hole)
    assert np.abs(out.astype(int) - target)[hole].mean() < 3  # the offset is gone
    pasted = target.copy()
    pasted[hole] = source[hole]
    assert np.abs(pasted.astype(int) - target)[hole].mean() > 40


def test_same_source_and_target_give_back_the_target():
    img = smooth_image(3)
    out = poisson_blend(img, img, holes()[1])
    assert np.abs(out.astype(int) - img).max() <= 1


def test_empty_hole_and_bad_inputs():
    img = smooth_image(0)
    assert np.array_equal(poisson_blend(img, img, np.zeros(img.shape[:2], bool)), img)
    with pytest.raises(ValueError, match="source"):
        poisson_blend(img, img[:-1], holes()[0])
    with pytest.raises(ValueError, match="hole"):
        poisson_blend(img, img, np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="uint8"):
        poisson_blend(img.astype(float), img, holes()[0])


def test_dilate_mask_grows_by_the_radius():
    m = np.zeros((11, 11), bool)
    m[5, 5] = True
    assert dilate_mask(m, 0).sum() == 1
    grown = dilate_mask(m, 2)
    assert grown[5, 3] and grown[5, 7] and not grown[5, 8]
