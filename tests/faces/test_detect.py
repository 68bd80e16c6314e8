"""Detectors and landmarkers: HOG, MTCNN, and FAN's refusal to run (or download) without weights."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facectx.faces.detect import (
    Detection,
    DlibHogDetector,
    S3fdDetector,
    build_detector,
    mtcnn_to_dlib_box,
)
from facectx.faces.io import read_image
from facectx.faces.landmarks import (
    DlibLandmarker,
    FanLandmarker,
    MissingWeightsError,
    build_landmarker,
)
from facectx.geometry.frame import eye_centres


@pytest.fixture(scope="module")
def lfw_face(lfw_split_images) -> np.ndarray:
    return read_image(lfw_split_images("test", 1)[0])


def test_hog_finds_the_lfw_face_and_max_side_maps_boxes_back(lfw_face):
    det = DlibHogDetector(upsample=1)
    (d,) = det(lfw_face)
    assert isinstance(d, Detection) and d.score > 0
    assert 0 <= d.box[0] < d.box[2] <= 150 and 0 <= d.box[1] < d.box[3] <= 150
    big = cv2.resize(lfw_face, (450, 450), interpolation=cv2.INTER_CUBIC)
    (d3,) = DlibHogDetector(upsample=1, max_side=150)(big)  # detects on a 150 px copy
    np.testing.assert_allclose(np.array(d3.box) / 3, d.box, atol=3)


def test_dlib_landmarks_on_a_box(lfw_face):
    det, lmk = DlibHogDetector(), DlibLandmarker()
    boxes = [d.box for d in det(lfw_face)]
    lm = lmk(lfw_face, boxes)
    assert lm.shape == (1, 68, 2) and lm.dtype == np.float32
    (le, re) = eye_centres(lm[0])
    assert le[0] < re[0] and 25 < np.hypot(*(re - le)) < 60  # LFW: ~41 px apart
    assert lmk(lfw_face, []).shape == (0, 68, 2)


def test_mtcnn_boxes_reshaped_for_dlib(lfw_face):
    pytest.importorskip("facenet_pytorch")
    from facectx.faces.detect import MtcnnDetector
    from facectx.faces.pipeline import FacePreparer

    det = MtcnnDetector()
    (d,) = det(lfw_face)
    assert d.score > 0.9
    hog = DlibHogDetector()(lfw_face)[0]
    # after reshaping, MTCNN's box sits close to the HOG box
    assert np.abs(np.array(d.box) - np.array(hog.box)).max() < 0.15 * hog.width
    assert det(np.zeros((10, 10, 3), np.uint8)) == []  # MTCNN itself crashes on tiny images
    faces = FacePreparer(detector=det, landmarker="dlib").prepare(lfw_face)
    assert len(faces) == 1


def test_mtcnn_to_dlib_box_geometry():
    x0, y0, x1, y1 = mtcnn_to_dlib_box((100.0, 100.0, 188.0, 215.3))
    assert x1 - x0 == pytest.approx(100.0) and y1 - y0 == pytest.approx(100.0, rel=1e-3)
    assert x0 == pytest.approx(91.4) and y0 == pytest.approx(114.8, rel=1e-3)


def test_fan_without_weights_fails_fast_with_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MissingWeightsError) as e:
        FanLandmarker()
    msg = str(e.value)
    assert (
        "2DFAN4-11f355bf06.pth.tar" in msg
        and str(tmp_path / "torch" / "hub" / "checkpoints") in msg
    )
    assert "landmarks=dlib" in msg or "landmarks=" in msg
    with pytest.raises(MissingWeightsError, match=r"s3fd-619a316812\.pth"):
        S3fdDetector()
    with pytest.raises(MissingWeightsError):
        build_landmarker("fan")
    assert not (tmp_path / "torch" / "hub" / "checkpoints").exists() or not any(
        (tmp_path / "torch" / "hub" / "checkpoints").iterdir()
    )  # nothing was downloaded


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown detector"):
        build_detector("viola-jones")
    with pytest.raises(ValueError, match="unknown landmarker"):
        build_landmarker("aam")


@pytest.mark.slow
def test_fan_plumbing_with_random_weights(tmp_path, monkeypatch, lfw_face):
    """The FAN code paths run end to end when weight files exist (random ones here)."""
    torch = pytest.importorskip("torch")
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    ckpt = tmp_path / "torch" / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(FAN(4).state_dict(), ckpt / FanLandmarker.WEIGHTS)
    torch.save(s3fd().state_dict(), ckpt / S3fdDetector.WEIGHTS)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    lm = FanLandmarker()(lfw_face, [(20.0, 30.0, 130.0, 140.0)])
    assert lm.shape == (1, 68, 2) and np.isfinite(lm).all()
    dets = S3fdDetector(min_score=0.99)(lfw_face)
    assert isinstance(dets, list)
