"""Warping into and out of the canonical frame, on synthetic images and landmarks."""

from __future__ import annotations

import numpy as np

from facectx.faces.align import (
    align_face,
    invert_affine,
    matrix_scale,
    warp_to_frame,
    warp_to_source,
)
from facectx.geometry.frame import CanonicalFrame, eye_centres, transform_points


def _smooth(h, w) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 127 + 100 * np.sin(x / 37.0) * np.cos(y / 29.0)
    return np.stack([r, 255 - r, np.full_like(r, 60)], -1).astype(np.uint8)


def _landmarks(cx, cy, eye_dist, angle=0.0) -> np.ndarray:
    """68 points whose eye groups (36-41, 42-47) centre on two eyes; the rest around a face."""
    rng = np.random.default_rng(0)
    lm = np.zeros((68, 2))
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    left, right = np.array([-eye_dist / 2, 0]), np.array([eye_dist / 2, 0])
    ring = (
        np.stack(
            [
                np.cos(np.linspace(0, 2 * np.pi, 6, endpoint=False)),
                np.sin(np.linspace(0, 2 * np.pi, 6, endpoint=False)),
            ],
            -1,
        )
        * eye_dist
        * 0.1
    )
    lm[36:42] = left + ring
    lm[42:48] = right + ring
    others = [i for i in range(68) if not 36 <= i < 48]
    lm[others] = rng.uniform(
        [-eye_dist, -0.5 * eye_dist], [eye_dist, 1.6 * eye_dist], (len(others), 2)
    )
    return lm @ rot.T + [cx, cy]


def test_align_face_puts_eyes_on_targets_and_masks_consistent():
    frame = CanonicalFrame(128)
    img = _smooth(300, 400)
    lm = _landmarks(210, 140, 60, angle=0.3)
    aligned, mask, valid, lm_a, m = align_face(img, lm, frame)
    assert aligned.shape == (128, 128, 3) and aligned.dtype == np.uint8
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    assert valid.dtype == np.uint8 and valid.all()  # face well inside the photo
    assert lm_a.dtype == np.float32 and lm_a.shape == (68, 2)
    np.testing.assert_allclose(eye_centres(lm_a), frame.eye_targets, atol=1e-3)
    np.testing.assert_allclose(matrix_scale(m), frame.eye_distance * 128 / 60, rtol=1e-6)
    np.testing.assert_allclose(transform_points(lm, m), lm_a, atol=1e-3)


def test_valid_marks_pixels_outside_the_photo():
    frame = CanonicalFrame(64)
    img = np.full((100, 100, 3), 200, np.uint8)
    lm = _landmarks(20, 50, 30)  # face near the left edge: the frame reaches past x = 0
    aligned, _, valid, _, m = align_face(img, lm, frame)
    assert 0 < valid.mean() < 1
    assert (aligned[valid == 0] == 0).all()  # black outside the photo
    assert (aligned[valid == 1] == 200).all()  # no blending with black at the photo's edge
    # columns left of the source's x = 0 are invalid
    src_x0_in_frame = transform_points(np.array([[0.0, 50.0]]), m)[0, 0]
    assert valid[32, : int(np.floor(src_x0_in_frame)) - 1].sum() == 0


def test_strong_downscale_is_antialiased():
    # A 1-px checkerboard shrunk 8x should average to grey, not alias into stripes.
    board = ((np.indices((800, 800)).sum(0) % 2) * 255).astype(np.uint8)
    img = np.repeat(board[:, :, None], 3, 2)
    m = np.array([[1 / 8, 0, 0], [0, 1 / 8, 0]])
    out, valid = warp_to_frame(img, m, 64)
    assert valid[:-1, :-1].all()
    assert abs(out[4:-4, 4:-4].mean() - 127.5) < 3 and out[4:-4, 4:-4].std() < 10


def test_warp_to_source_inverts():
    img = _smooth(240, 320)
    m = np.array([[0.5, -0.1, -20.0], [0.1, 0.5, 10.0]])
    aligned, valid = warp_to_frame(img, m, 96)
    back = warp_to_source(aligned, m, img.shape[:2])
    back_valid = warp_to_source(valid * 255, m, img.shape[:2]) == 255
    # inside the region that was in frame, the round trip is close (bilinear twice)
    diff = np.abs(back.astype(int) - img.astype(int))[back_valid]
    assert back_valid.sum() > 1000 and np.median(diff) <= 6
    np.testing.assert_allclose(invert_affine(invert_affine(m)), m, atol=1e-9)
