"""The web demo's logic without a browser: photo -> aligned, masked and hallucinated faces, the
photo with the results pasted back, background replacement, downloads, inpainting with a
reference, and the sentences shown for users' mistakes. Plus the command line."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from facectx.demo import (
    EXAMPLES,
    NO_INPAINT,
    AppError,
    drawn_hole,
    example_photos,
    paste_back,
    read_photo,
)

from .conftest import plain_image

REPO = Path(__file__).resolve().parents[2]


def _squares(faces, shape) -> np.ndarray:
    """Union of the faces' aligned squares warped back into the photo, grown by 2 px."""
    import cv2

    from facectx.faces.align import warp_to_source

    s = faces[0].image.shape[0]
    union = np.zeros(shape, bool)
    for f in faces:
        union |= warp_to_source(np.full((s, s), 255, np.uint8), f.matrix, shape) > 0
    return cv2.dilate(union.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0


def test_a_real_photo_gives_faces_portraits_and_the_photo_pasted_back(demo, wild_photos):
    from facectx.faces.align import warp_to_source

    photo = wild_photos / "img12.jpg"
    seen: list[tuple[float, str]] = []
    result = demo.hallucinate(str(photo), progress=lambda f, d: seen.append((f, d)))
    original = read_photo(photo)
    assert len(result.faces) == 1 and result.dropped == 0
    face = result.faces[0]
    for a in (face.aligned, face.masked, face.portrait):
        assert a.shape == (128, 128, 3) and a.dtype == np.uint8
    keep = face.keep > 0
    assert 0.15 < keep.mean() < 0.8
    assert np.array_equal(face.portrait[keep], face.aligned[keep])  # the face is the photo's
    assert not face.masked[~keep].any()  # black outside the face: the model's input
    assert face.background is None
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and len(seen) >= 3

    # pasted back: the photo's size; outside the face's warped-back square nothing changed,
    # the face hull is the photo's own full-resolution pixels, the context changed
    assert result.pasted.shape == original.shape
    found = demo.preparer(128, demo.hallucinator.frame, "hog", "all").run(original).faces
    outside = ~_squares(found, original.shape[:2])
    assert outside.mean() > 0.5
    assert np.array_equal(result.pasted[outside], original[outside])
    hull = warp_to_source(face.keep * 255, found[0].matrix, original.shape[:2]) >= 128
    assert np.array_equal(result.pasted[hull], original[hull])
    changed = (result.pasted != original).any(axis=2)
    assert changed.sum() > 0.05 * (~outside).sum()


def test_all_or_largest_faces(demo, wild_photos):
    both = demo.hallucinate(wild_photos / "couple.jpg", faces="all")
    one = demo.hallucinate(wild_photos / "couple.jpg", faces="largest")
    assert len(both.faces) == 2 and both.dropped == 0
    assert len(one.faces) == 1 and one.dropped == 1
    assert np.array_equal(one.faces[0].aligned, both.faces[0].aligned)  # largest first
    # the same face; a batch of two may round a pixel differently than a batch of one
    diff = one.faces[0].portrait.astype(int) - both.faces[0].portrait.astype(int)
    assert np.abs(diff).max() <= 1
    assert both.pasted.shape == one.pasted.shape == read_photo(wild_photos / "couple.jpg").shape


def test_background_replacement_keeps_the_face(demo, wild_photos):
    rng = np.random.default_rng(0)
    background = rng.integers(0, 256, (90, 200, 3), dtype=np.uint8)  # any size: fitted
    result = demo.hallucinate(wild_photos / "img12.jpg", background=background)
    face = result.faces[0]
    assert face.background is not None and face.background.shape == (128, 128, 3)
    keep = face.keep > 0
    assert np.array_equal(face.background[keep], face.portrait[keep])
    assert not np.array_equal(face.background, face.portrait)


def test_downloads_hold_every_image(demo, wild_photos):
    from facectx.faces.io import read_png

    result = demo.hallucinate(wild_photos / "img12.jpg", background=np.zeros((8, 8, 3), np.uint8))
    saved = demo.save_hallucinated(result)
    with zipfile.ZipFile(saved.zip) as z:
        names = set(z.namelist())
    kinds = ("aligned", "masked", "mask", "portrait", "background")
    assert names == {"pasted.png", *(f"face1_{kind}.png" for kind in kinds)}
    assert read_png(saved.images["pasted"]).shape == result.pasted.shape
    assert np.array_equal(read_png(saved.images["face1_portrait"]), result.faces[0].portrait)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: plain_image(tmp / "wall.png"), "No face found in the photo"),
        (lambda tmp: _write(tmp / "notes.jpg", b"not an image"), "Could not read the photo"),
        (lambda tmp: _write(tmp / "cut.jpg", _truncated_jpeg()), "Could not read the photo"),
        (lambda tmp: tmp / "missing.jpg", "Could not read the photo"),
        (lambda tmp: None, "Upload the photo first"),
        (lambda tmp: np.zeros((10, 10, 3), np.uint8), "too small"),
    ],
    ids=["no-face", "not-an-image", "truncated", "missing", "nothing", "tiny"],
)
def test_users_mistakes_are_sentences(demo, tmp_path, make, message):
    with pytest.raises(AppError) as e:
        demo.hallucinate(make(tmp_path))
    text = str(e.value)
    assert message in text
    assert "Traceback" not in text and "\n" not in text
    assert text.endswith(".")


def test_an_unreadable_background_is_named(demo, wild_photos, tmp_path):
    with pytest.raises(AppError, match="Could not read the background image"):
        demo.hallucinate(wild_photos / "img12.jpg", background=_write(tmp_path / "b.png", b"x"))


def test_an_unavailable_detector_is_a_sentence(demo, wild_photos, monkeypatch):
    import facectx.faces.pipeline as pipeline

    def broken(*args, **kwargs):
        raise ImportError("detector=mtcnn needs facenet-pytorch")

    monkeypatch.setattr(pipeline, "build_detector", broken)
    with pytest.raises(AppError, match="mtcnn detector is not available"):
        demo.preparer(128, None, "mtcnn", "largest")


def test_example_photos_have_a_face_the_default_detector_finds(demo):
    photos = example_photos()
    assert [p.name for p in photos] == list(EXAMPLES)
    for p in photos:
        result = demo.hallucinate(p, faces="largest")
        assert len(result.faces) == 1, p.name


def test_paste_back_without_faces_is_the_photo():
    photo = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    assert np.array_equal(paste_back(photo, [], []), photo)


def test_drawn_hole_from_the_editor_value():
    layer = np.zeros((100, 200, 4), np.uint8)
    layer[10:30, 20:60, 3] = 255  # a painted stroke
    hole = drawn_hole({"background": None, "layers": [layer], "composite": None}, (50, 100))
    assert hole.shape == (50, 100) and hole[10, 20] and not hole[40, 90]
    assert 0.03 < hole.mean() < 0.06
    assert drawn_hole({"layers": [np.zeros((10, 10, 4), np.uint8)]}, (10, 10)) is None
    assert drawn_hole(None, (10, 10)) is None
    assert drawn_hole(np.ones((10, 10), bool), (10, 10)).all()


# ---- inpaint --------------------------------------------------------------------------------
def test_inpaint_without_a_checkpoint_says_how_to_get_one(demo, wild_photos):
    with pytest.raises(AppError) as e:
        demo.inpaint(wild_photos / "img12.jpg", wild_photos / "img5.jpg")
    assert str(e.value) == NO_INPAINT
    assert "python -m facectx.train experiment=swapinpaint_quickstart" in NO_INPAINT
    assert "inpaint_ckpt=" in NO_INPAINT


@pytest.mark.parametrize("mask", ["facial", "irregular"])
def test_inpaint_changes_only_the_hole_at_full_resolution(inpaint_demo, wild_photos, mask):
    photo = read_photo(wild_photos / "img12.jpg")
    result = inpaint_demo.inpaint(photo, wild_photos / "img5.jpg", mask=mask)
    assert result.image.shape == photo.shape
    assert 100 < result.hole.sum() < 0.3 * result.hole.size
    changed = (result.image != photo).any(axis=2)
    assert changed.any() and not (changed & ~result.hole).any()
    assert len(result.panels) == 1 and result.panels[0].shape == (128, 5 * 128, 3)
    saved = inpaint_demo.save_inpainted(result)
    with zipfile.ZipFile(saved.zip) as z:
        assert {"inpainted.png", "hole.png", "face1_panel.png"} <= set(z.namelist())


def test_inpaint_a_drawn_hole(inpaint_demo, wild_photos):
    photo = read_photo(wild_photos / "img12.jpg")
    h, w = photo.shape[:2]
    layer = np.zeros((h // 2, w // 2, 4), np.uint8)  # the editor's canvas may be smaller
    layer[h // 8 : h // 4, w // 5 : w // 3, 3] = 255  # over the left eye region
    drawn = {"background": None, "layers": [layer], "composite": None}
    result = inpaint_demo.inpaint(photo, wild_photos / "img5.jpg", mask="drawn", drawn=drawn)
    user = drawn_hole(drawn, (h, w))
    assert result.hole.any() and not (result.hole & ~user).any()
    assert not ((result.image != photo).any(axis=2) & ~user).any()
    with pytest.raises(AppError, match="paint the region"):
        inpaint_demo.inpaint(photo, wild_photos / "img5.jpg", mask="drawn", drawn=None)


def test_inpaint_mistakes_are_sentences(inpaint_demo, wild_photos, tmp_path):
    wall = plain_image(tmp_path / "wall.png")
    face = wild_photos / "img12.jpg"
    with pytest.raises(AppError, match=r"^No face found in the reference photo"):
        inpaint_demo.inpaint(face, wall)
    with pytest.raises(AppError, match=r"^No face found in the photo"):
        inpaint_demo.inpaint(wall, face)
    with pytest.raises(AppError, match="Could not read the reference photo"):
        inpaint_demo.inpaint(face, _write(tmp_path / "r.jpg", b"nope"))
    with pytest.raises(AppError, match="Upload the reference photo first"):
        inpaint_demo.inpaint(face, None)


# ---- command line ---------------------------------------------------------------------------
def test_importing_the_app_does_no_work():
    code = (
        "import os, sys, facectx.app; "
        "print(sorted(m for m in ('gradio', 'torch', 'hydra') if m in sys.modules), "
        "os.environ.get('GRADIO_ANALYTICS_ENABLED'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_ANALYTICS_ENABLED"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.split() == ["[]", "None"]


def test_config_composes_with_the_documented_defaults():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from facectx._conf import ConfigError, config_dir
    from facectx.app import detector_name

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("app", overrides=["port=0"])
        mtcnn = compose("app", overrides=["detector=mtcnn"])
    assert cfg.host == "127.0.0.1" and cfg.port == 0
    assert cfg.ckpt is None and cfg.inpaint_ckpt is None
    assert detector_name(cfg.detector) == "hog" and cfg.faces == "all"
    assert detector_name(mtcnn.detector) == "mtcnn"
    with pytest.raises(ConfigError, match="detector=retina"):
        detector_name("retina")


def test_a_bad_checkpoint_ends_the_command_in_one_line(tmp_path):
    bad = _write(tmp_path / "broken.ckpt", b"not a checkpoint")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "facectx.app",
            f"ckpt={bad}",
            "port=0",
            f"paths.log_dir={tmp_path / 'logs'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr + out.stdout
    errors = [line for line in (out.stderr + out.stdout).splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "broken.ckpt" in errors[0], out.stdout + out.stderr


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated_jpeg() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()[:200]
