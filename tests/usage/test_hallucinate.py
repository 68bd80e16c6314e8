"""Hallucinating raw photos (several faces each) and prepared folders; outputs, skips, resume."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from _config import compose_config
from facectx.faces.io import read_png
from facectx.inference.portraits import hallucinate_folder, hallucinate_photos, is_prepared_folder

from .conftest import needs_sample, replicate_sample

PHOTOS = ("couple.jpg", "selfie-many-people.jpg", "img1.jpg")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory, wild_photos, tiny_ckpt):
    """Three wild photos (incl. the couple and the group selfie) + one unreadable file."""
    inp = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        (inp / name).symlink_to(wild_photos / name)
    (inp / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path_factory.mktemp("hallucinated")
    summary = hallucinate_photos(str(tiny_ckpt), str(inp), str(out), batch_size=4, progress=False)
    return inp, out, summary


def test_photos_give_one_portrait_per_face(photo_run):
    _, out, summary = photo_run
    rows = _rows(out / "outputs.csv")
    by_source: dict[str, list[dict]] = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append(r)
    assert set(by_source) == set(PHOTOS)
    assert len(by_source["couple.jpg"]) == 2
    assert len(by_source["selfie-many-people.jpg"]) >= 3
    assert len(by_source["img1.jpg"]) >= 1
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == summary.portraits
    assert sorted(r["id"] for r in by_source["couple.jpg"]) == ["couple_0", "couple_1"]
    for r in rows:
        portrait = read_png(out / r["output"])
        assert portrait.shape == (128, 128, 3) and portrait.dtype == np.uint8
        assert read_png(out / r["mask"]).shape == (128, 128)
        assert read_png(out / r["preview"]).shape == (128, 3 * 128, 3)
    skipped = _rows(out / "skipped.csv")
    assert [(s["source"], s["reason"]) for s in skipped] == [("broken.jpg", "unreadable")]


def test_face_pixels_are_the_aligned_photo_exactly(photo_run):
    _, out, _ = photo_run
    for r in _rows(out / "outputs.csv"):
        portrait = read_png(out / r["output"])
        keep = read_png(out / r["mask"]) > 0
        aligned = read_png(out / r["preview"])[:, 256:]  # third panel: the aligned photo
        assert 0.1 < keep.mean() < 0.7
        np.testing.assert_array_equal(portrait[keep], aligned[keep])
        # outside the face the model generated something: not the black fill of the input
        assert (portrait[~keep] != 0).any()


def test_rerun_resumes_without_duplicates(photo_run, tiny_ckpt):
    inp, out, first = photo_run
    again = hallucinate_photos(str(tiny_ckpt), str(inp), str(out), progress=False)
    assert again.photos == 0 and again.portraits == 0
    assert again.already_done == len(PHOTOS) + 1
    rows = _rows(out / "outputs.csv")
    assert len(rows) == first.portraits == len({r["id"] for r in rows})


@needs_sample
def test_prepared_folder_keeps_stored_hull_and_face_pixels(tmp_path, tiny_ckpt):
    from facectx.assets import sample_root

    root = replicate_sample(tmp_path / "prep", 6)
    assert is_prepared_folder(root) and not is_prepared_folder(tmp_path)
    ids = [r["id"] for r in _rows(root / "manifest.csv")]
    with open(root / "manifest.csv", "a", newline="") as f:  # a row whose files are missing
        f.write("ghost,images/ghost.png,masks/ghost.png,,,ghost.jpg,0,,,\n")
    out = tmp_path / "out"
    s = hallucinate_folder(str(tiny_ckpt), str(root), str(out), batch_size=4, progress=False)
    assert s.portraits == 6 and s.skipped == {"unreadable": 1}
    assert [r["source"] for r in _rows(out / "skipped.csv")] == ["ghost"]
    rows = _rows(out / "outputs.csv")
    assert [r["id"] for r in rows] == ids
    for r in rows:
        base = r["id"].split("~")[0]
        image = read_png(Path(sample_root()) / "images" / f"{base}.png")
        keep = read_png(Path(sample_root()) / "masks" / f"{base}.png") > 0
        np.testing.assert_array_equal(read_png(out / r["mask"]) > 0, keep)
        np.testing.assert_array_equal(read_png(out / r["output"])[keep], image[keep])
        assert r["person"] and r["source"]


@needs_sample
def test_cli_config_dispatches_on_the_input(tmp_path, tiny_ckpt):
    """conf/hallucinate.yaml composes and run() takes a prepared folder or a single photo."""

    from facectx.hallucinate import run

    root = replicate_sample(tmp_path / "prep", 3)
    cfg = compose_config(
        "hallucinate",
        [
            f"ckpt={tiny_ckpt}",
            f"input={root}",
            f"output={tmp_path / 'out'}",
            "progress=false",
            f"paths.root_dir={tmp_path}",
        ],
    )
    summary = run(cfg)
    assert summary.mode == "prepared" and summary.portraits == 3
    assert len(list((tmp_path / "out" / "previews").glob("*.png"))) == 3


def test_an_empty_input_folder_is_an_error_not_a_silent_success(tmp_path):
    import subprocess
    import sys

    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "facectx.hallucinate", f"input={empty}", f"output={out}"]
    env = {**__import__("os").environ, "FACECTX_ROOT": str(tmp_path / "run")}
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "no images found" in res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert not out.exists()


def test_odd_files_give_portraits_or_skip_rows_with_the_shipped_model(odd_photos, tmp_path):
    """The shared odd-input folder through the shipped model: a portrait for every readable
    face photo (EXIF-rotated, CMYK, 16-bit, palette, RGBA, unicode names), a reason for the rest."""
    folder, expected = odd_photos
    out = tmp_path / "out"
    summary = hallucinate_photos(None, str(folder), str(out), progress=False)
    written = {r["source"] for r in _rows(out / "outputs.csv")}
    skipped = {r["source"]: r["reason"] for r in _rows(out / "skipped.csv")}
    assert written == {n for n, k in expected.items() if k == "face"}
    assert set(skipped) == {n for n, k in expected.items() if k == "skip"} and all(skipped.values())
    assert summary.portraits >= len(written) + 1  # the couple photo gives two


def test_a_read_only_output_stops_the_job_and_a_rerun_finishes(
    photo_run, tiny_ckpt, tmp_path, monkeypatch
):
    """EROFS while writing is the machine's problem: the job stops with the error (the CLI turns
    it into one line, exit 2: tests/test_environmental_errors.py), no photo is listed as done
    unless all its portraits were written, none is listed as skipped, and a rerun completes."""
    import errno

    import facectx.faces.io as io

    inp, straight, first = photo_run
    real = io.write_png
    calls = {"n": 0}

    def read_only(path, *a, **k):
        calls["n"] += 1
        if calls["n"] > 4:  # the couple's first portrait (3 PNGs) fits, its second does not
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, *a, **k)

    out = tmp_path / "out"
    monkeypatch.setattr(io, "write_png", read_only)
    with pytest.raises(OSError, match="Read-only file system"):
        hallucinate_photos(str(tiny_ckpt), str(inp), str(out), batch_size=1, progress=False)
    assert _rows(out / "outputs.csv") == []  # couple.jpg's two portraits land together or not
    assert [s["source"] for s in _rows(out / "skipped.csv")] in ([], ["broken.jpg"])
    monkeypatch.setattr(io, "write_png", real)
    again = hallucinate_photos(str(tiny_ckpt), str(inp), str(out), batch_size=1, progress=False)
    assert again.portraits == first.portraits
    done = sorted((r["id"], r["source"]) for r in _rows(out / "outputs.csv"))
    assert done == sorted((r["id"], r["source"]) for r in _rows(straight / "outputs.csv"))
    for r in _rows(out / "outputs.csv"):
        np.testing.assert_array_equal(read_png(out / r["output"]), read_png(straight / r["output"]))


def test_photos_are_aligned_in_the_models_recorded_frame(tmp_path, lfw_split_images):
    """No eye_distance/eye_y given: the frame is the loaded model's (``Hallucinator.frame``), so
    a model trained in another frame gets its own; explicit values still win."""
    import json

    import torch

    from .conftest import fake_checkpoint

    ckpt = fake_checkpoint(tmp_path / "m.ckpt")
    state = torch.load(ckpt, weights_only=True)
    state["facectx"]["frame"] = {"size": 128, "eye_distance": 0.31, "eye_y": 0.41}
    torch.save(state, ckpt)
    (photo,) = lfw_split_images("test", 1)

    def frame(output: Path, **kw) -> dict:
        hallucinate_photos(str(ckpt), str(photo), str(output), progress=False, **kw)
        return json.loads((output / "job.json").read_text())["frame"]

    recorded = frame(tmp_path / "a")
    assert (recorded["eye_distance"], recorded["eye_y"]) == (0.31, 0.41)
    explicit = frame(tmp_path / "b", eye_distance=0.27, eye_y=0.43)
    assert (explicit["eye_distance"], explicit["eye_y"]) == (0.27, 0.43)
