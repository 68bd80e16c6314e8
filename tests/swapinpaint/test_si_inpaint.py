"""Inference: the Lightning-free Inpainter, Poisson-blended aligned results, and the CLI on raw
photos (full resolution out, pixels outside the warped-back hole unchanged, batch mode with
skipped photos and resume)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _config import compose_config
from facectx.inference import Inpainter, InpaintError
from facectx.inference.inpaint_jobs import inpaint_photos

from .conftest import TinyIdentity, hide_shipped_inpainter, needs_dlib, random_pairs
from .conftest import swapinpaint_checkpoint as _checkpoint


@pytest.fixture
def tiny_inpainter(tmp_path) -> Inpainter:
    path = _checkpoint(tmp_path / "tiny.ckpt", 64, 16, "tiny-identity")
    return Inpainter.from_checkpoint(path, identity=TinyIdentity())


def test_references_steer_the_output_and_known_pixels_stay(tiny_inpainter):
    b = random_pairs(2, 64)
    a = tiny_inpainter(b["masked"], b["mask"], b["reference"])
    again = tiny_inpainter(b["masked"], b["mask"], b["reference"])
    other = tiny_inpainter(b["masked"], b["mask"], b["reference"].flip(-1))
    assert torch.equal(a["output"], again["output"])  # deterministic
    hole = b["mask"] < 0.5
    assert not torch.equal(
        a["output"][hole.expand_as(a["output"])], other["output"][hole.expand_as(a["output"])]
    )
    m = b["mask"]
    assert torch.allclose(a["output"] * m, b["image"] * m, atol=1e-6)


def test_aligned_blend_keeps_known_pixels_exactly(tiny_inpainter):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ref = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    keep = np.ones((64, 64), np.float32)
    keep[20:44, 16:48] = 0
    for blend in (True, False):
        r = tiny_inpainter.inpaint_aligned(image, keep, ref, blend=blend)
        assert np.array_equal(r.output[keep > 0], image[keep > 0])
        assert not np.array_equal(r.output[keep == 0], image[keep == 0])
        assert r.panel().shape == (64, 5 * 64, 3)


def test_wrong_checkpoints_and_inputs_raise(tmp_path, tiny_inpainter):
    from facectx.inference import CheckpointError

    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="SwapInpaint"):
        Inpainter.from_checkpoint(tmp_path / "other.ckpt", identity=TinyIdentity())
    with pytest.raises(ValueError, match="canonical"):
        tiny_inpainter(
            torch.zeros(1, 3, 32, 32), torch.ones(1, 1, 32, 32), torch.zeros(1, 3, 32, 32)
        )
    path = _checkpoint(tmp_path / "c.ckpt", 64, 32, "x")
    with pytest.raises(CheckpointError, match="16-D"):
        Inpainter.from_checkpoint(path, identity=TinyIdentity())


@needs_dlib
def test_cli_inpaints_a_raw_photo_at_full_resolution(tmp_path, wild_photos):
    from facectx.faces.io import read_image

    ckpt = _checkpoint(tmp_path / "m.ckpt", 128, 128, "dlib-resnet")
    photo, reference = wild_photos / "img1.jpg", wild_photos / "img5.jpg"
    out = tmp_path / "out" / "img1.png"
    counts = inpaint_photos(
        str(ckpt), str(photo), str(out), reference=str(reference), mask="facial", save_hole=True
    )
    assert counts["done"] == 1 and out.is_file()
    src, res = read_image(photo), read_image(out)
    assert res.shape == src.shape  # full resolution (1868 x 1382)
    hole = read_image(out.with_name("img1_hole.png"))[..., 0] > 127  # the warped-back hole
    changed = (res != src).any(axis=2)
    assert 1000 < hole.sum() < 0.2 * hole.size
    assert changed.sum() > 0.5 * hole.sum()
    assert np.array_equal(res[~hole], src[~hole])  # every pixel outside it is the input's


@needs_dlib
def test_a_photo_sized_mask_file_bounds_the_change(tmp_path, wild_photos):
    from facectx.faces.io import read_image, write_png

    ckpt = _checkpoint(tmp_path / "m.ckpt", 128, 128, "dlib-resnet")
    photo = wild_photos / "img5.jpg"  # small: fast detection
    src = read_image(photo)
    hole = np.zeros(src.shape[:2], np.uint8)
    hole[180:260, 100:230] = 255  # white = fill, drawn on the photo
    write_png(tmp_path / "hole.png", hole)
    out = tmp_path / "out.png"
    inpaint_photos(
        str(ckpt), str(photo), str(out), reference=str(photo), mask=str(tmp_path / "hole.png")
    )
    changed = (read_image(out) != src).any(axis=2)
    assert changed.sum() > 1000 and not (changed & (hole == 0)).any()


@needs_dlib
def test_cli_batch_mode_reports_skipped_photos_and_resumes(tmp_path, wild_photos):
    import shutil

    from facectx.data.manifest import read_rows
    from facectx.faces.io import write_png

    ckpt = _checkpoint(tmp_path / "m.ckpt", 128, 128, "dlib-resnet")
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(wild_photos / "img5.jpg", folder / "a.jpg")
    write_png(folder / "blank.png", np.full((200, 200, 3), 128, np.uint8))  # no face
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    counts = inpaint_photos(
        str(ckpt), str(folder), str(out), reference=str(wild_photos / "img5.jpg"), mask="ocular"
    )
    assert counts == {"done": 1, "skipped": 2, "already_done": 0, "total": 3}
    assert (out / "a.png").is_file()
    reasons = {r["image"].rsplit("/", 1)[-1]: r["reason"] for r in read_rows(out / "skipped.csv")}
    assert reasons == {"blank.png": "no_face", "broken.jpg": "unreadable"}
    again = inpaint_photos(
        str(ckpt), str(folder), str(out), reference=str(wild_photos / "img5.jpg"), mask="ocular"
    )
    assert again["already_done"] == 1 and again["done"] == 0

    # a CSV of image,reference pairs (paths relative to the CSV)
    (folder / "pairs.csv").write_text("image,reference\na.jpg,a.jpg\nbroken.jpg,a.jpg\n")
    out2 = tmp_path / "out2"
    counts = inpaint_photos(str(ckpt), None, str(out2), pairs=str(folder / "pairs.csv"))
    assert counts == {"done": 1, "skipped": 1, "already_done": 0, "total": 2}
    assert (out2 / "a.png").is_file()


@needs_dlib
def test_a_reference_without_a_face_is_an_error(tmp_path, wild_photos):
    from facectx.faces.io import read_image

    model = Inpainter.from_checkpoint(_checkpoint(tmp_path / "m.ckpt", 128, 128, "dlib-resnet"))
    with pytest.raises(InpaintError, match="reference"):
        model.inpaint_photo(
            read_image(wild_photos / "img5.jpg"), np.full((100, 100, 3), 90, np.uint8)
        )


def test_cli_mask_argument_takes_group_options_or_files(tmp_path):
    from hydra.utils import instantiate

    from facectx.inpaint import mask_arguments
    from facectx.masks import OcularMask

    argv = ["prog", "mask=ocular", "mask=/tmp/hole.png", "mask.grow=0.06", "output=x"]
    assert mask_arguments(argv) == [
        "prog",
        "mask=ocular",
        "mask_file=/tmp/hole.png",
        "mask.grow=0.06",
        "output=x",
    ]
    cfg = compose_config("inpaint", ["ckpt=c", "output=o", "mask=ocular", "mask.grow=0.06"])
    mask = instantiate(cfg.mask)
    assert isinstance(mask, OcularMask) and mask.grow == 0.06 and cfg.mask_file is None
    # the detector is a config group, as in hallucinate and app (detector=mtcnn was refused)
    from facectx.faces.detect import DlibHogDetector

    assert isinstance(instantiate(cfg.detector), DlibHogDetector)
    cfg = compose_config("inpaint", ["ckpt=c", "output=o", "detector=mtcnn"])
    assert cfg.detector._target_ == "facectx.faces.detect.MtcnnDetector"


@needs_dlib
def test_batch_rerun_with_other_settings_or_model_is_refused(tmp_path):
    from facectx._jobrecord import OutputFolderError
    from facectx.faces.io import write_png

    ckpt = _checkpoint(tmp_path / "m.ckpt", 128, 128, "dlib-resnet")
    other = _checkpoint(tmp_path / "o.ckpt", 128, 128, "dlib-resnet", seed=1)
    folder = tmp_path / "photos"
    folder.mkdir()
    write_png(folder / "blank.png", np.full((64, 64, 3), 128, np.uint8))  # no face: skipped
    ref, out = str(folder / "blank.png"), tmp_path / "out"
    counts = inpaint_photos(str(ckpt), str(folder), str(out), reference=ref, mask="ocular")
    assert counts["skipped"] == 1 and (out / "job.json").is_file()
    with pytest.raises(OutputFolderError, match=r"mask ocular -> facial"):
        inpaint_photos(str(ckpt), str(folder), str(out), reference=ref, mask="facial")
    with pytest.raises(OutputFolderError, match=r"model .*m\.ckpt -> .*o\.ckpt"):
        inpaint_photos(str(other), str(folder), str(out), reference=ref, mask="ocular")
    inpaint_photos(str(ckpt), str(folder), str(out), reference=ref, mask="ocular")  # resumes


def test_cli_without_ckpt_or_the_shipped_file_says_how_to_get_one(tmp_path, monkeypatch, cli_error):
    """No ckpt= runs the shipped SwapInpaint model; while its file is missing the command ends
    in one error line naming ckpt= and how to train a model, then the registry's text."""
    import sys

    from facectx import inpaint

    hide_shipped_inpainter(monkeypatch)  # the file is missing until the LFW model ships
    argv = ["image=x.jpg", "reference=y.jpg", "output=o", f"hydra.run.dir={tmp_path / 'run'}"]
    monkeypatch.setattr(sys, "argv", ["facectx-inpaint", *argv])
    error, text = cli_error(inpaint.main)
    assert "SwapInpaint" in error and "experiment=swapinpaint_quickstart" in error
    assert "ckpt=" in error and "missing_inpainter.pt" in text  # then where it looked


@needs_dlib
def test_odd_files_are_inpainted_or_skipped_with_a_reason(tmp_path, odd_photos, wild_photos):
    """The shared odd-input folder (tests/conftest.py) through batch inpainting."""
    from facectx.data.manifest import read_rows

    folder, expected = odd_photos
    ckpt = _checkpoint(tmp_path / "m.ckpt", 128, 128, "dlib-resnet")
    out = tmp_path / "out"
    counts = inpaint_photos(
        str(ckpt), str(folder), str(out), reference=str(wild_photos / "img5.jpg"), mask="center"
    )
    faces = {n for n, k in expected.items() if k == "face"}
    skipped = {r["image"].rsplit("/", 1)[-1]: r["reason"] for r in read_rows(out / "skipped.csv")}
    assert set(skipped) == set(expected) - faces and all(skipped.values())
    assert counts == {
        "done": len(faces),
        "skipped": len(skipped),
        "already_done": 0,
        "total": len(expected),
    }
    written = {p.stem for p in out.glob("*.png")}
    assert written == {n.rsplit(".", 1)[0] for n in faces}
