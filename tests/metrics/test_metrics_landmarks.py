"""Pose and expression errors: zero for identical landmarks, positive for changed faces."""

from __future__ import annotations

import numpy as np
import pytest

from facectx.metrics import expression_error, head_pose, pose_difference, pose_error


@pytest.fixture(scope="module")
def faces():
    """(10, 68, 2) real aligned landmarks from the embedded sample (128 px frame)."""
    from facectx.assets import sample_root
    from facectx.data.manifest import read_manifest

    root = sample_root()
    rows = read_manifest(root)[:10]
    return np.stack([np.load(root / r["landmarks"]) for r in rows]).astype(np.float64)


def _rotate(lm, degrees, centre=63.5):
    t = np.radians(degrees)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return (lm - centre) @ rot.T + centre


def test_identical_landmarks_give_zero(faces):
    assert np.allclose(pose_error(faces, faces, 128), 0.0)
    assert np.allclose(expression_error(faces, faces), 0.0, atol=1e-12)


def test_in_plane_rotation_is_a_pure_roll_change(faces):
    diff = pose_difference(faces, _rotate(faces, 10.0), 128)
    assert np.allclose(diff[:, 2], 10.0, atol=0.05)  # roll
    assert np.allclose(diff[:, :2], 0.0, atol=0.05)  # yaw, pitch unchanged
    assert np.allclose(pose_error(faces, _rotate(faces, 10.0), 128), 10.0 / 3, atol=0.05)
    # a similarity (rotation) changes no expression
    assert np.allclose(expression_error(faces, _rotate(faces, 10.0)), 0.0, atol=1e-9)


def test_turning_the_nose_changes_yaw(faces):
    turned = faces.copy()
    turned[:, 27:36, 0] += 3.0  # nose moves right: the head turns
    diff = pose_difference(faces, turned, 128)
    assert (diff[:, 0] > 2.0).all()


def test_opening_the_mouth_is_an_expression_error(faces):
    opened = faces.copy()
    lower_lip = [55, 56, 57, 58, 59, 64, 65, 66, 67]
    opened[:, lower_lip, 1] += 6.0
    err = expression_error(faces, opened)
    iod = np.linalg.norm(faces[:, 36:42].mean(1) - faces[:, 42:48].mean(1), axis=1)
    # the anchors do not move, so the error is exactly the mean displacement / eye distance
    assert np.allclose(err, 6.0 * len(lower_lip) / 42 / iod)
    assert np.allclose(pose_error(faces, opened, 128), 0.0)


def test_pose_of_canonical_faces_is_roughly_frontal(faces):
    pose = head_pose(faces, 128)
    assert np.isfinite(pose).all()
    assert (np.abs(pose[:, 2]) < 10).all()  # eyes are levelled by the alignment


def test_nan_landmarks_give_nan_not_an_error(faces):
    bad = faces[:2].copy()
    bad[1] = np.nan
    assert np.isnan(pose_error(faces[:2], bad, 128)[1])
    assert np.isnan(expression_error(faces[:2], bad)[1])
    with pytest.raises(ValueError, match="68, 2"):
        pose_error(faces[:, :10], faces[:, :10], 128)
