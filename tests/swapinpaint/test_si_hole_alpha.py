"""``hole_alpha``: the fade of a full-resolution inpainting result into the photo at the hole's
edge (the hole comes from the 128 px frame, so on a large photo its edge is a staircase)."""

from __future__ import annotations

import numpy as np

from facectx.inference.inpainter import hole_alpha


def _scaled(scale: float) -> np.ndarray:
    """Aligned -> photo matrix of a photo ``scale`` times the frame's size."""
    return np.array([[1 / scale, 0, 0], [0, 1 / scale, 0]], np.float64)


def test_nothing_outside_the_hole_and_all_of_the_result_deep_inside():
    hole = np.zeros((200, 200), bool)
    hole[50:150, 40:160] = True
    a = hole_alpha(hole, _scaled(8.0))
    assert a.dtype == np.float32 and a.shape == hole.shape
    assert (a[~hole] == 0).all()  # no pixel outside the hole changes
    assert a[100, 100] == 1.0 and a[70:130, 60:140].min() == 1.0
    assert a[50, 100] < 0.2 and 0.2 < a[53, 100] < 0.9  # a ramp at the edge, not a cut
    assert ((a >= 0) & (a <= 1)).all()


def test_a_staircase_edge_becomes_a_smooth_ramp():
    # a diagonal hole drawn on a 16 px grid and scaled up 8x: steps of 8 photo pixels
    small = np.tri(16, 16, dtype=bool)
    hole = np.kron(small, np.ones((8, 8), bool))
    a = hole_alpha(hole, _scaled(8.0))
    # along a row, the weight rises gradually from the edge, with no jump to 1 at the step
    row = a[60]
    inside = np.flatnonzero(hole[60])
    assert row[inside[-1]] < 0.5 and row[inside[0]] > 0.99
    assert np.abs(np.diff(row)).max() < 0.5


def test_a_photo_no_larger_than_the_frame_keeps_the_hard_hole():
    hole = np.zeros((64, 64), bool)
    hole[10:30, 10:30] = True
    assert np.array_equal(hole_alpha(hole, _scaled(1.0)), hole.astype(np.float32))
