"""FacePreparer on real photos: LFW test-split crops and multi-face wild photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facectx.faces.io import read_image
from facectx.faces.pipeline import SKIP_REASONS, AlignedFace, FacePreparer
from facectx.geometry.frame import CanonicalFrame, eye_centres


@pytest.fixture(scope="module")
def preparer() -> FacePreparer:
    return FacePreparer(CanonicalFrame(128), detector="hog", landmarker="dlib")


def test_lfw_test_split_prepares_aligned_faces(preparer, lfw_split_images):
    paths = lfw_split_images("test", 100)
    assert len(paths) == 100
    frame = preparer.frame
    prepared, valid_fraction = 0, []
    for p in paths:
        faces = preparer.prepare(read_image(p))
        if not faces:
            continue
        prepared += 1
        assert len(faces) == 1  # faces="largest"
        f = faces[0]
        assert isinstance(f, AlignedFace)
        assert f.image.shape == (128, 128, 3) and f.image.dtype == np.uint8
        for m in (f.mask, f.valid):
            assert m.shape == (128, 128) and m.dtype == np.uint8 and set(np.unique(m)) <= {0, 1}
        assert f.landmarks.shape == (68, 2) and f.landmarks.dtype == np.float32
        assert f.matrix.shape == (2, 3)
        # eyes land on the canonical targets
        assert np.abs(eye_centres(f.landmarks) - frame.eye_targets).max() < 2.0
        # every landmark is inside the hull mask (1 px of slack for rasterising the border)
        grown = cv2.dilate(f.mask, np.ones((3, 3), np.uint8))
        xy = np.clip(np.round(f.landmarks).astype(int), 0, 127)
        assert grown[xy[:, 1], xy[:, 0]].all()
        valid_fraction.append(f.valid.mean())
    assert prepared >= 95, f"only {prepared}/100 LFW test images prepared"
    # LFW crops cover nearly the whole frame at the default geometry
    assert np.median(valid_fraction) > 0.95 and min(valid_fraction) > 0.5


def _like(prep: FacePreparer, **kw) -> FacePreparer:
    """Another policy on the same loaded models (loading dlib's predictor takes ~1 s)."""
    return FacePreparer(prep.frame, detector=prep.detector, landmarker=prep.landmarker, **kw)


def test_couple_and_group_photos_give_several_faces(preparer, wild_photos):
    prep = _like(preparer, faces="all")
    counts = {}
    for name in ("couple.jpg", "selfie-many-people.jpg"):
        faces = prep.prepare(read_image(wild_photos / name))
        counts[name] = len(faces)
        areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
        assert areas == sorted(areas, reverse=True)  # face 0 is the largest
        for f in faces:
            np.testing.assert_allclose(eye_centres(f.landmarks), prep.frame.eye_targets, atol=1e-3)
    assert counts["couple.jpg"] >= 2 and counts["selfie-many-people.jpg"] >= 3, counts


def test_face_policies_and_skip_reasons(preparer, wild_photos):
    img = read_image(wild_photos / "selfie-many-people.jpg")
    largest = preparer.run(img)
    assert len(largest.faces) == 1 and largest.reason == ""
    one = _like(preparer, faces="one").run(img)
    assert one.faces == [] and one.reason == "too_many_faces"
    tiny = _like(preparer, faces="all", min_face=500).run(img)
    assert tiny.faces == [] and tiny.reason == "too_small" and "min_face=500" in tiny.detail

    prep = preparer
    assert prep.run(np.zeros((10, 10, 3), np.uint8)).reason == "too_small"
    noise = np.random.default_rng(0).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    assert prep.run(noise).reason == "no_face"
    assert {"too_small", "no_face", "too_many_faces"} <= set(SKIP_REASONS)
    with pytest.raises(ValueError, match="uint8"):
        prep.run(np.zeros((50, 50), np.uint8))
    with pytest.raises(ValueError, match="faces must be"):
        FacePreparer(faces="some")


def test_matrix_maps_back_to_the_source(preparer, lfw_split_images):
    from facectx.faces.align import warp_to_source

    src = read_image(lfw_split_images("test", 1)[0])
    f = preparer.prepare(src)[0]
    back = warp_to_source(f.image, f.matrix, src.shape[:2])
    hull = warp_to_source(f.mask * 255, f.matrix, src.shape[:2], cv2.INTER_NEAREST) == 255
    err = np.abs(back.astype(int) - src.astype(int))[hull]
    assert np.median(err) <= 8  # bilinear down then up, inside the face
