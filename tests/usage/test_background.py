"""Background replacement: segmenters, Laplacian blending, face pixels kept, folders."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from _config import compose_config
from facectx.faces.io import read_png, write_png
from facectx.segment import GrabCutSegmenter, NetworkSegmenter, SegmenterNotAvailableError
from facectx.segment.folder import pick_backgrounds, replace_folder
from facectx.segment.replace import fit_background, laplacian_blend, replace_background

from .conftest import needs_sample, replicate_sample


def _gradient(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([40 + 150 * y / h, 200 - 120 * x / w, 90 + 0 * x], -1).astype(np.uint8)


def _synthetic_portrait(size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A flat grey background, a skin-coloured head and neck, a dark-blue torso; the face hull
    is an ellipse inside the head."""
    import cv2

    img = np.full((size, size, 3), 200, np.uint8)
    cv2.ellipse(img, (64, 52), (26, 34), 0, 0, 360, (205, 150, 120), -1)
    cv2.rectangle(img, (52, 80), (76, 96), (205, 150, 120), -1)  # neck
    cv2.rectangle(img, (24, 92), (104, 127), (30, 40, 120), -1)
    face = np.zeros((size, size), np.uint8)
    cv2.ellipse(face, (64, 58), (18, 22), 0, 0, 360, 1, -1)
    return img, face


def _sample_face(i: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from facectx.assets import sample_root

    root = Path(sample_root())
    with open(root / "manifest.csv", newline="") as f:
        row = list(csv.DictReader(f))[i]
    return read_png(root / row["image"]), read_png(root / row["mask"])


def test_laplacian_blend_selects_by_alpha():
    rng = np.random.default_rng(0)
    fg = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    bg = _gradient(128, 128)
    ones, zeros = np.ones((128, 128), np.float32), np.zeros((128, 128), np.float32)
    assert np.abs(laplacian_blend(fg, bg, ones).astype(int) - fg).max() <= 1
    assert np.abs(laplacian_blend(fg, bg, zeros).astype(int) - bg).max() <= 1
    # odd sizes are padded and cropped back
    assert laplacian_blend(fg[:100, :90], bg[:100, :90], ones[:100, :90], levels=5).shape == (
        100,
        90,
        3,
    )


def test_fit_background_covers_and_crops():
    for shape in ((300, 90, 3), (40, 400, 3), (64, 64, 3)):
        out = fit_background(_gradient(*shape[:2]), (128, 128))
        assert out.shape == (128, 128, 3) and out.dtype == np.uint8


def test_pick_backgrounds_is_deterministic_and_distinct():
    a = pick_backgrounds("face_0", 5, 3, seed=0)
    assert a == pick_backgrounds("face_0", 5, 3, seed=0)
    assert len(set(a)) == 3 and all(0 <= j < 5 for j in a)
    assert pick_backgrounds("face_0", 1, 2, seed=0) == [0, 0]


def test_grabcut_finds_the_person_not_the_background():
    img, face = _synthetic_portrait()
    alpha = GrabCutSegmenter()(img, face)
    assert alpha.shape == (128, 128) and alpha.dtype == np.float32
    assert alpha.min() >= 0 and alpha.max() <= 1
    assert (alpha[face > 0] == 1).all()
    assert alpha[20:30, 55:75].mean() > 0.9  # top of the head (outside the face hull)
    assert alpha[110:125, 30:100].mean() > 0.9  # torso
    assert alpha[:3].max() == 0 and alpha[:, :3].max() == 0 and alpha[:, -3:].max() == 0
    assert alpha[5:40, 5:20].mean() < 0.05  # grey background beside the head


def test_saliency_region_fills_the_outer_contour_around_the_face():
    import cv2

    from facectx.segment import saliency_region

    img = np.full((128, 128, 3), 230, np.uint8)
    cv2.circle(img, (64, 70), 40, (90, 60, 50), -1)  # a head on a flat background
    face = np.zeros((128, 128), bool)
    face[55:85, 50:78] = True
    region = saliency_region(img, face)
    disc = np.zeros((128, 128), np.uint8)
    cv2.circle(disc, (64, 70), 40, 1, -1)
    assert region is not None and region[face].all()
    iou = (region & (disc > 0)).sum() / (region | (disc > 0)).sum()
    assert iou > 0.9
    assert saliency_region(np.zeros_like(img), face) is None  # no gradient at all


@needs_sample
def test_grabcut_is_deterministic():
    seg = GrabCutSegmenter()
    first = seg(*_sample_face(3))
    seg(*_sample_face(4))  # advances OpenCV's RNG in between
    np.testing.assert_array_equal(seg(*_sample_face(3)), first)


def _border(size: int = 128, width: int = 3) -> np.ndarray:
    """Top, left and right bands: the sure-background sides of GrabCutSegmenter."""
    border = np.zeros((size, size), bool)
    border[:width], border[:, :width], border[:, -width:] = True, True, True
    return border


def test_replacement_on_a_clean_portrait_puts_the_background_at_the_border():
    portrait, face = _synthetic_portrait()
    bg = _gradient(200, 300)
    res = replace_background(portrait, face, bg)
    keep = face > 0
    np.testing.assert_array_equal(res.image[keep], portrait[keep])
    fitted = fit_background(bg, (128, 128)).astype(int)
    out, border = res.image.astype(int), _border()
    assert np.abs(out[border] - fitted[border]).mean() < 3
    assert np.abs(out[30:40, 50:78] - portrait[30:40, 50:78]).mean() < 3  # head kept


@needs_sample
def test_replacement_keeps_face_hull_and_changes_the_border():
    """A real aligned LFW face (hair reaching the frame): face pixels exact, border replaced."""
    portrait, face = _sample_face(3)
    bg = _gradient(200, 300)
    res = replace_background(portrait, face, bg)
    keep = face > 0
    np.testing.assert_array_equal(res.image[keep], portrait[keep])
    fitted = fit_background(bg, (128, 128)).astype(int)
    out, border = res.image.astype(int), _border()
    to_bg = np.abs(out[border] - fitted[border]).mean()
    to_portrait = np.abs(out[border] - portrait.astype(int)[border]).mean()
    assert to_portrait > 20 and to_bg < 0.5 * to_portrait
    assert (res.alpha[border] == 0).all()


def test_network_segmenter_without_weights_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("FACECTX_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("FACECTX_WEIGHTS", raising=False)
    with pytest.raises(SegmenterNotAvailableError) as e:
        NetworkSegmenter()
    msg = str(e.value)
    assert "deeplabv3_mobilenet_v3_large-fc3c493d.pth" in msg and "segmenter=grabcut" in msg
    with pytest.raises(
        SegmenterNotAvailableError, match=r"not in the facectx\.pretrained registry"
    ):
        NetworkSegmenter(name="no-such-net")
    # the same through the CLI's config group

    from facectx.segment.folder import build_segmenter

    cfg = compose_config(
        "background", ["segmenter=network", "input=x", "backgrounds=y", "output=z"]
    )
    with pytest.raises(SegmenterNotAvailableError, match="segmenter=grabcut"):
        build_segmenter(cfg.segmenter)


def test_network_segmenter_interface_with_random_weights(tmp_path, monkeypatch):
    import warnings

    monkeypatch.setenv("FACECTX_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg = NetworkSegmenter(allow_random_init=True, input_size=64)
    img, face = _synthetic_portrait()
    alpha = seg(img, face)
    assert alpha.shape == (128, 128) and alpha.dtype == np.float32
    assert 0 <= alpha.min() and alpha.max() <= 1 and (alpha[face > 0] == 1).all()


@needs_sample
def test_folder_replacement_from_hallucinate_output(tmp_path, tiny_ckpt):

    from facectx.background import run
    from facectx.inference.portraits import hallucinate_folder

    prepared = replicate_sample(tmp_path / "prep", 3)
    hall = tmp_path / "hall"
    hallucinate_folder(str(tiny_ckpt), str(prepared), str(hall), progress=False)
    bgs = tmp_path / "bgs"
    bgs.mkdir()
    write_png(bgs / "a.png", _gradient(160, 240))
    write_png(bgs / "b.png", 255 - _gradient(90, 90))
    out = tmp_path / "out"
    s = replace_folder(hall, bgs, out, per_face=2, progress=False)
    assert (s.portraits, s.outputs) == (3, 6)
    with open(out / "backgrounds.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and len({r["id"] for r in rows}) == 6
    with open(hall / "outputs.csv", newline="") as f:
        inputs = {r["id"]: r for r in csv.DictReader(f)}
    for r in rows:
        src = inputs[r["input_id"]]
        keep = read_png(hall / src["mask"]) > 0
        np.testing.assert_array_equal(
            read_png(out / r["output"])[keep], read_png(hall / src["output"])[keep]
        )
        assert r["person"] == src["person"]
    for pid in inputs:  # two different backgrounds per portrait
        assert {r["background"] for r in rows if r["input_id"] == pid} == {"a.png", "b.png"}
    # the CLI config resumes: nothing left to do
    cfg = compose_config(
        "background",
        [
            f"input={hall}",
            f"backgrounds={bgs}",
            f"output={out}",
            "per_face=2",
            "progress=false",
            f"paths.root_dir={tmp_path}",
        ],
    )
    again = run(cfg)
    assert again.outputs == 0 and again.already_done == 3


def test_folder_without_masks_is_refused(tmp_path):
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="face mask"):
        replace_folder(tmp_path, tmp_path, tmp_path / "out", progress=False)
