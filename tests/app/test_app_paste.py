"""The "Pasted back into the photo" view: each face's generated context goes back into the photo
without covering another face, and the page offers only detectors that can run here.

The synthetic tests need no model: two faces whose aligned squares overlap, with a red and a
green portrait, so any trace of one face's portrait on the other shows in one colour channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from facectx.demo import Demo, paste_back, read_photo

S = 32  # aligned frame of the synthetic faces
HULL = (10, 12, 22, 28)  # x0, y0, x1, y1 of the (square) face hull in the aligned frame


@dataclass
class FakeFace:
    """What paste_back reads of an ``AlignedFace``."""

    matrix: np.ndarray
    mask: np.ndarray
    valid: np.ndarray
    box: tuple[float, float, float, float]


def _face(cx: float, cy: float, side: float) -> FakeFace:
    """A face whose aligned square is ``side`` source px wide around (cx, cy); its detector box
    is its hull's bounding box, as dlib's HOG box roughly is."""
    s = S / side
    m = np.array([[s, 0, S / 2 - s * cx], [0, s, S / 2 - s * cy]], np.float64)
    mask = np.zeros((S, S), np.uint8)
    x0, y0, x1, y1 = HULL
    mask[y0:y1, x0:x1] = 1

    def src(x, y):
        return cx + (x - S / 2) / s, cy + (y - S / 2) / s

    box = (*src(x0, y0), *src(x1, y1))
    return FakeFace(m, mask, np.ones((S, S), np.uint8), box)


def _scene():
    """A big face whose square reaches well over a small neighbour's head, red and green."""
    rng = np.random.default_rng(0)
    photo = np.zeros((120, 160, 3), np.uint8)
    photo[..., 2] = rng.integers(0, 256, photo.shape[:2], dtype=np.uint8)  # blue: the photo
    big, small = _face(45, 55, 120), _face(100, 50, 40)
    red = np.zeros((S, S, 3), np.uint8)
    red[..., 0] = 200
    green = np.zeros((S, S, 3), np.uint8)
    green[..., 1] = 200
    return photo, [big, small], [red, green]


def _head(box, shape) -> np.ndarray:
    """The head around a detector box (brows to chin): an ellipse taking in the forehead half a
    box above it and a fifth of a box on each side."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    ys, xs = np.mgrid[: shape[0], : shape[1]] + 0.5
    dx = (xs - (x0 + x1) / 2) / (0.6 * w)
    dy = (ys - (y0 + 0.25 * h)) / (0.75 * h)
    return dx * dx + dy * dy <= 1


def _hull(face, shape) -> np.ndarray:
    from facectx.faces.align import warp_to_source

    return warp_to_source(face.mask * 255, face.matrix, shape) >= 128


def test_a_face_is_never_covered_by_another_faces_portrait():
    photo, faces, portraits = _scene()
    shape = photo.shape[:2]
    pasted = paste_back(photo, faces, portraits)
    big_head, small_head = _head(faces[0].box, shape), _head(faces[1].box, shape)
    # the big face's square does reach over the small face's head ...
    from facectx.faces.align import warp_to_source

    square = warp_to_source(np.full((S, S), 255, np.uint8), faces[0].matrix, shape) > 0
    assert (square & small_head).sum() > 0.3 * small_head.sum()
    # ... yet nothing red lands on it, and nothing green on the big face's head
    assert not pasted[small_head, 0].any()
    assert not pasted[big_head, 1].any()
    # both faces' hulls are the photo's own pixels
    for f in faces:
        hull = _hull(f, shape)
        assert np.array_equal(pasted[hull], photo[hull])
    # each face got its context: red around the big one, green around the small one
    assert (pasted[..., 0] > 100).sum() > 500
    assert (pasted[..., 1] > 100).sum() > 50


def test_the_context_fades_out_inside_the_square():
    """No tilted square: the square's corners keep the photo, the context has a soft edge."""
    from facectx.faces.align import warp_to_source

    photo, faces, portraits = _scene()
    shape = photo.shape[:2]
    pasted = paste_back(photo, faces[:1], portraits[:1])
    corners = np.zeros((S, S), np.uint8)
    corners[:4, :4] = corners[:4, -4:] = corners[-4:, :4] = corners[-4:, -4:] = 255
    corner = warp_to_source(corners, faces[0].matrix, shape) >= 128
    assert corner.any() and np.array_equal(pasted[corner], photo[corner])
    red = pasted[..., 0]
    levels = np.unique(red[(red > 0) & (red < 200)])
    assert len(levels) > 20  # a ramp, not a hard cut


def test_extra_protected_boxes_keep_faces_that_were_not_pasted():
    """faces=largest pastes one face; the others the detector found stay untouched."""
    photo, faces, portraits = _scene()
    shape = photo.shape[:2]
    alone = paste_back(photo, faces[:1], portraits[:1])
    kept = paste_back(photo, faces[:1], portraits[:1], protect=[faces[1].box])
    small_head = _head(faces[1].box, shape)
    assert alone[small_head, 0].any()  # without being told, a face it never saw is covered
    assert not kept[small_head, 0].any()


def test_face_areas_cover_forehead_and_box():
    from facectx.demo import face_areas

    _, faces, _ = _scene()
    areas = face_areas([f.box for f in faces], (120, 160))
    assert areas.shape == (2, 120, 160) and areas.dtype == bool
    for f, area in zip(faces, areas, strict=True):
        x0, y0, x1, y1 = f.box
        h = y1 - y0
        cx = int((x0 + x1) / 2)
        assert area[int(y0 + h / 2), int(x0) + 1 : int(x1) - 1].all()  # across the face
        assert area[int(y0 - 0.3 * h), cx]  # the forehead above the box
        assert not area[min(int(y1 + 0.4 * h), 119), cx]  # not the neck and shoulders


def test_paste_back_without_faces_is_the_photo():
    photo = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    assert np.array_equal(paste_back(photo, [], []), photo)
    assert np.array_equal(paste_back(photo, [], [], protect=[(1, 1, 20, 20)]), photo)


# ---- real photos with several faces -----------------------------------------------------------
def own_paste_agrees(photo, faces, portraits, protect, pasted) -> list[str]:
    """Faces whose area in ``pasted`` is not what pasting that face alone gives (the photo's
    pixels or that face's own context): a list of complaints, empty when all is well."""
    shape = photo.shape[:2]
    from facectx.demo import face_areas

    areas = face_areas(protect, shape)
    complaints = []
    for i, (face, portrait) in enumerate(zip(faces, portraits, strict=True)):
        own = paste_back(photo, [face], [portrait], protect=protect)
        j = next(k for k, b in enumerate(protect) if tuple(b) == tuple(face.box))
        area = areas[j]
        if not np.array_equal(pasted[area], own[area]):
            n = int((pasted[area] != own[area]).any(axis=1).sum())
            complaints.append(f"face {i + 1}: {n} of {int(area.sum())} px not its own")
        hull = _hull(face, shape)
        if not np.array_equal(pasted[hull], photo[hull]):
            complaints.append(f"face {i + 1}: its hull changed")
    return complaints


@pytest.mark.parametrize("name", ["selfie-many-people.jpg", "couple.jpg"])
def test_real_group_photos_keep_every_face_its_own(demo, wild_photos, name):
    photo = read_photo(wild_photos / name)
    result = demo.hallucinate(photo)
    assert len(result.faces) >= 2
    prep = demo.preparer(128, demo.hallucinator.frame, "hog", "all")
    found = prep.run(photo)
    protect = [d.box for d in found.detections]
    portraits = [f.portrait for f in result.faces]
    assert own_paste_agrees(photo, found.faces, portraits, protect, result.pasted) == []
    changed = (result.pasted != photo).any(axis=2)
    assert changed.mean() > 0.02  # the context did go in


# ---- which detectors the page offers ----------------------------------------------------------
def test_only_detectors_that_can_run_are_offered(hallucinator, tmp_path, monkeypatch):
    from facectx.faces.detect import S3fdDetector, available_detectors, detector_problem

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert "fan" not in available_detectors()
    assert "s3fd" in detector_problem("fan") and "hog" in available_detectors()
    d = Demo(hallucinator, work_dir=tmp_path / "results")
    assert "fan" not in d.detectors and d.detectors[0] == "hog"
    # weights in place: offered (nothing is loaded to decide)
    weights = tmp_path / "torch" / "hub" / "checkpoints" / S3fdDetector.WEIGHTS
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"placeholder")
    assert "fan" in available_detectors() and detector_problem("fan") is None


def test_mtcnn_is_offered_only_with_facenet_pytorch(monkeypatch):
    import importlib.util

    from facectx.faces.detect import available_detectors, detector_problem

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "facenet_pytorch" else real(name, *a),
    )
    assert "mtcnn" not in available_detectors()
    assert "facenet-pytorch" in detector_problem("mtcnn")


def test_an_unavailable_starting_detector_ends_the_app_with_the_reason(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from facectx._conf import ConfigError
    from facectx.app import load_demo

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cfg = OmegaConf.create(
        {"detector": "fan", "faces": "all", "ckpt": None, "device": "cpu", "use_ema": True}
    )
    cfg.upsample = 1
    with pytest.raises(ConfigError, match=r"detector=fan cannot run here.*s3fd"):
        load_demo(cfg)


def test_the_server_prints_its_address_and_no_share_link_noise(tmp_path, capfd, caplog):
    import logging

    import gradio as gr

    from facectx.app import free_port
    from facectx.app_ui import launch

    d = Demo(None, work_dir=tmp_path / "results")
    with gr.Blocks() as page:
        gr.Markdown("hello")
    port = free_port()
    with caplog.at_level(logging.INFO, logger="facectx.app"):
        try:
            launch(page, d, "127.0.0.1", port, block=False)
        finally:
            page.close()
    out = capfd.readouterr()
    printed = out.out + out.err
    assert "share" not in printed and "public link" not in printed, printed
    said = [r.getMessage() for r in caplog.records]
    assert any(f"http://127.0.0.1:{port}" in m for m in said), said
