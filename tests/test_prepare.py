"""python -m facectx.prepare: bad inputs, resume, parallel workers, the Hydra config."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from facectx.data.manifest import MANIFEST, SKIPPED, read_manifest, read_rows
from facectx.faces.naming import face_id, person_from_stem, unique_stems
from facectx.faces.pipeline import PreparerSpec
from facectx.preparation import prepare_folder, read_splits

REPO = Path(__file__).resolve().parents[1]


def _folder_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in (".png", ".npy")
    }


def _no_tmp(root: Path) -> bool:
    return not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def lfw_small(lfw_split_images, tmp_path_factory) -> Path:
    """A folder of 10 LFW test-split photos plus one non-image, for the folder-level tests."""
    root = tmp_path_factory.mktemp("lfw_small")
    for p in lfw_split_images("test", 10):
        shutil.copy(p, root / p.name)
    (root / "notes.jpg").write_text("this is not a photo\n")
    return root


def test_bad_files_cli_exit_zero(lfw_split_images, tmp_path):
    src = lfw_split_images("test", 1)[0]
    face = np.asarray(Image.open(src).convert("RGB"))
    inp = tmp_path / "in"
    (inp / "sub").mkdir(parents=True)
    shutil.copy(src, inp / src.name)
    shutil.copy(src, inp / "sub" / "Nested_Person_0001.JPG")
    rgba = np.dstack([face, np.full(face.shape[:2], 255, np.uint8)])
    rgba[:10, :10, 3] = 0
    Image.fromarray(rgba, "RGBA").save(inp / "rgba.png")
    Image.fromarray(face).convert("L").save(inp / "gray.png")
    gray16 = np.asarray(Image.fromarray(face).convert("L")).astype(np.uint16) * 257
    Image.fromarray(gray16).save(inp / "gray16.png")
    Image.fromarray(face[:10, :10]).save(inp / "tiny.png")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)).save(inp / "noise.png")
    (inp / "text.jpg").write_text("hello, I am not a JPEG\n")
    data = src.read_bytes()
    (inp / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "splits.csv").write_text(f"image,person,split\n{src.name},X,test\n")

    out = tmp_path / "out"
    env = {**os.environ, "FACECTX_ROOT": str(tmp_path / "run")}  # Hydra's logs go here
    cmd = [
        sys.executable,
        "-m",
        "facectx.prepare",
        f"input={inp}",
        f"output={out}",
        f"splits={tmp_path / 'splits.csv'}",
        "workers=1",
        "progress=false",
    ]
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "faces written" in res.stdout and "img/s" in res.stdout

    rows = {r["source"]: r for r in read_manifest(out)}
    assert set(rows) == {
        src.name,
        "sub/Nested_Person_0001.JPG",
        "rgba.png",
        "gray.png",
        "gray16.png",
    }
    nested = rows["sub/Nested_Person_0001.JPG"]
    assert nested["id"] == "sub__Nested_Person_0001_0" and nested["person"] == "Nested_Person"
    assert rows[src.name]["split"] == "test" and rows["gray.png"]["split"] == ""
    assert person_from_stem(src.stem) != ""
    assert rows[src.name]["person"] == "X"  # splits.csv's label wins over the file name's
    skipped = {r["source"]: r["reason"] for r in read_rows(out / SKIPPED)}
    assert skipped == {
        "tiny.png": "too_small",
        "noise.png": "no_face",
        "text.jpg": "unreadable",
        "truncated.jpg": "unreadable",
    }
    for r in rows.values():
        img = cv2.imread(str(out / r["image"]))
        mask = cv2.imread(str(out / r["mask"]), cv2.IMREAD_UNCHANGED)
        valid = cv2.imread(str(out / r["valid"]), cv2.IMREAD_UNCHANGED)
        assert img.shape == (128, 128, 3) and mask.shape == valid.shape == (128, 128)
        assert set(np.unique(mask)) <= {0, 255} and set(np.unique(valid)) <= {0, 255}
        assert np.load(out / r["landmarks"]).shape == (68, 2)
    assert (out / "meta.json").is_file() and _no_tmp(out)
    assert not (tmp_path / "logs").exists() and (tmp_path / "run" / "logs" / "prepare").is_dir()


def test_resume_after_limit_matches_a_straight_run(lfw_small, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    s = prepare_folder(lfw_small, straight, workers=1, progress=False)
    assert s.photos == 11 and s.faces >= 9 and s.skipped["unreadable"] == 1

    first = prepare_folder(lfw_small, resumed, workers=1, limit=4, progress=False)
    assert first.photos == 4 and first.remaining == 7
    # Simulate a kill mid-photo: a not-yet-listed face's file and a temp file lie around.
    pending = sorted(p.name for p in lfw_small.iterdir())[5]
    stale = resumed / "images" / f"{Path(pending).stem}_0.png"
    stale.write_bytes(b"half-written")
    (resumed / "images" / ".x.png.999.tmp").write_bytes(b"junk")
    second = prepare_folder(lfw_small, resumed, workers=1, progress=False)
    assert second.photos == 7 and second.already_done == 4
    third = prepare_folder(lfw_small, resumed, workers=1, progress=False)
    assert third.photos == 0 and third.already_done == 11

    def rows(root):
        raw = read_rows(root / MANIFEST)
        assert len(raw) == len({r["id"] for r in raw})  # no duplicate ids, even before dedup
        return sorted(raw, key=lambda r: r["id"])

    assert rows(straight) == rows(resumed)
    assert sorted(map(str, read_rows(straight / SKIPPED))) == sorted(
        map(str, read_rows(resumed / SKIPPED))
    )
    assert _folder_files(straight) == _folder_files(resumed)
    assert _no_tmp(resumed) and stale.read_bytes() != b"half-written"


def test_two_workers_match_one(lfw_small, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    prepare_folder(lfw_small, one, workers=1, chunksize=2, progress=False)
    s = prepare_folder(lfw_small, two, workers=2, chunksize=2, progress=False)
    assert s.photos == 11
    # same rows in the same (input) order, byte-identical files
    assert read_rows(one / MANIFEST) == read_rows(two / MANIFEST)
    assert _folder_files(one) == _folder_files(two) and _no_tmp(two)


def test_refuses_to_mix_frames_and_skips_own_output(lfw_small, tmp_path):
    inp = tmp_path / "in"
    shutil.copytree(lfw_small, inp)
    out = inp / "prepared"  # output inside input must not be re-ingested
    spec = PreparerSpec(size=64)
    a = prepare_folder(inp, out, spec=spec, workers=1, limit=2, progress=False)
    b = prepare_folder(inp, out, spec=spec, workers=1, limit=2, progress=False)
    assert a.photos == b.photos == 2 and b.already_done == 2
    assert all(not r["source"].startswith("prepared/") for r in read_rows(out / MANIFEST))
    with pytest.raises(ValueError, match="different settings"):
        prepare_folder(inp, out, spec=PreparerSpec(size=128), workers=1, progress=False)
    with pytest.raises(ValueError, match="differ"):
        prepare_folder(inp, inp, workers=1, progress=False)


def test_missing_input_is_refused_before_anything_is_created(tmp_path):
    from facectx._conf import ConfigError

    missing, out = tmp_path / "no_such_photos", tmp_path / "out"
    with pytest.raises(ConfigError, match=rf"input={missing}: does not exist.*{out}"):
        prepare_folder(missing, out, workers=1, progress=False)
    assert not out.exists()
    env = {**os.environ, "FACECTX_ROOT": str(tmp_path / "run"), "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "facectx.prepare", f"input={missing}", f"output={out}"]
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    text = res.stdout + res.stderr
    assert res.returncode == 2 and "Traceback" not in text and "does not exist" in text, text
    assert not out.exists()


def test_largest_says_how_many_faces_it_left_out(lfw_split_images, tmp_path, caplog):
    a, b = (np.asarray(Image.open(p).convert("RGB")) for p in lfw_split_images("test", 2))
    inp = tmp_path / "in"
    inp.mkdir()
    Image.fromarray(np.concatenate([a, b], axis=1)).save(inp / "two.png")  # two faces
    with caplog.at_level(logging.INFO, logger="facectx.prepare"):
        s = prepare_folder(inp, tmp_path / "largest", workers=1, progress=False)
    assert s.faces == 1 and s.dropped_faces >= 1 and s.dropped_photos == 1
    assert f"left out {s.dropped_faces} more face(s) in 1 photo(s)" in caplog.text
    assert "faces=all" in caplog.text
    every = prepare_folder(
        inp, tmp_path / "all", spec=PreparerSpec(faces="all"), workers=1, progress=False
    )
    assert every.faces == 1 + s.dropped_faces and every.dropped_faces == 0


def test_only_split_filters_sources(lfw_small, tmp_path):
    names = sorted(p.name for p in lfw_small.glob("*.jpg"))[:3]
    (tmp_path / "s.csv").write_text("image,split\n" + "".join(f"{n},train\n" for n in names))
    s = prepare_folder(
        lfw_small,
        tmp_path / "o",
        splits=tmp_path / "s.csv",
        only_split="train",
        workers=1,
        progress=False,
    )
    assert s.photos == 3
    assert {r["split"] for r in read_rows(tmp_path / "o" / MANIFEST)} == {"train"}
    with pytest.raises(ValueError, match="needs splits"):
        prepare_folder(lfw_small, tmp_path / "p", only_split="train", progress=False)


def test_naming_helpers(tmp_path):
    assert face_id("Aaron_Eckhart_0001.jpg", 0) == "Aaron_Eckhart_0001_0"
    assert face_id("a/b/photo.v2.png", 3) == "a__b__photo.v2_3"
    # clashing stems: the later source keeps its extension, so no two photos share files
    assert unique_stems(["a/b.jpg", "a__b.jpg", "x.jpg", "x.png"]) == {
        "a/b.jpg": "a__b",
        "a__b.jpg": "a__b.jpg",
        "x.jpg": "x",
        "x.png": "x.png",
    }
    assert person_from_stem("Aaron_Eckhart_0001") == "Aaron_Eckhart"
    assert person_from_stem("img12") == "" and person_from_stem("selfie-many-people") == ""
    (tmp_path / "s.csv").write_text("image,split,person\nsub/A_B_0001.jpg,val,A_B\n")
    assert read_splits(tmp_path / "s.csv")["A_B_0001.jpg"]["split"] == "val"
    (tmp_path / "bad.csv").write_text("file,set\nx.jpg,train\n")
    with pytest.raises(ValueError, match="image,split"):
        read_splits(tmp_path / "bad.csv")


def test_config_composes_for_every_detector_and_landmarker():
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from facectx._conf import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("prepare", overrides=["input=/in", "output=/out", "upsample=0"])
        assert cfg.task == "prepare" and cfg.size == 128 and cfg.faces == "largest"
        assert cfg.detector._target_.endswith("DlibHogDetector") and cfg.detector.upsample == 0
        assert instantiate(cfg.detector).upsample == 0
        assert cfg.landmarks._target_.endswith("DlibLandmarker")
        for det, target in (("mtcnn", "MtcnnDetector"), ("fan", "S3fdDetector")):
            c = compose("prepare", overrides=["input=/in", "output=/out", f"detector={det}"])
            assert c.detector._target_.endswith(target)
        c = compose("prepare", overrides=["input=/in", "output=/out", "landmarks=fan"])
        assert c.landmarks._target_.endswith("FanLandmarker")


def test_embedded_sample_is_current_and_small():
    import json

    from facectx.assets import sample_root
    from facectx.geometry.frame import CanonicalFrame, eye_centres

    root = sample_root()
    rows = read_manifest(root)
    assert len(rows) >= 200 and {r["split"] for r in rows} == {"train"}
    assert all(r["person"] for r in rows)
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert total <= 5_000_000, f"embedded sample is {total / 1e6:.2f} MB"
    meta = json.loads((root / "meta.json").read_text())
    frame = CanonicalFrame(**meta["frame"])
    # made with today's frame definition (regenerate it if CanonicalFrame changes)
    for r in rows[:20]:
        lm = np.load(root / r["landmarks"])
        np.testing.assert_allclose(eye_centres(lm), frame.eye_targets, atol=1e-3)
        img = cv2.imread(str(root / r["image"]))
        assert img.shape == (frame.size, frame.size, 3)


def test_a_full_disk_stops_the_job_and_a_rerun_finishes_every_photo(
    lfw_small, tmp_path, monkeypatch
):
    """ENOSPC is the machine's problem, not the photo's: the job stops (never a skip row), the
    photos written before stay done, and a rerun after space is freed does all the rest."""
    import errno

    import facectx.faces.io as prep  # prepare's workers import write_png from here per call
    from facectx._jobrecord import JobStoppedError

    out = tmp_path / "out"
    real = prep.write_png
    calls = {"n": 0}

    def full_disk(path, *a, **k):
        calls["n"] += 1
        if calls["n"] > 6:  # two faces' images (3 PNGs each) fit on the "disk"
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(prep, "write_png", full_disk)
    with pytest.raises(JobStoppedError, match=r"No space left on device.*rerun the same command"):
        prepare_folder(lfw_small, out, workers=1, chunksize=1, progress=False)
    done = {r["source"] for r in read_rows(out / MANIFEST)}
    assert not any(r["reason"] == "error" for r in read_rows(out / SKIPPED))
    assert 1 <= len(done) <= 2
    monkeypatch.setattr(prep, "write_png", real)
    again = prepare_folder(lfw_small, out, workers=1, progress=False)
    straight = prepare_folder(lfw_small, tmp_path / "straight", workers=1, progress=False)
    assert again.already_done + again.photos == straight.photos == 11
    assert len(read_rows(out / MANIFEST)) == len(read_rows(tmp_path / "straight" / MANIFEST))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_sigkill_of_prepare_leaves_no_worker_alive(lfw_split_images, tmp_path):
    import signal
    import time

    inp = tmp_path / "in"
    inp.mkdir()
    for p in lfw_split_images("test", 40):
        shutil.copy(p, inp / p.name)
    env = {**os.environ, "FACECTX_ROOT": str(tmp_path / "run")}
    cmd = [sys.executable, "-m", "facectx.prepare", f"input={inp}", f"output={tmp_path / 'out'}"]
    cmd += ["workers=2", "chunksize=1", "progress=false"]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        manifest = tmp_path / "out" / MANIFEST
        while time.monotonic() < deadline and not (
            manifest.is_file() and len(manifest.read_text().splitlines()) > 2
        ):
            time.sleep(0.5)
        from _procs import alive, children

        workers = children(proc.pid)
        assert workers, "prepare started no worker processes"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        time.sleep(5)
        assert [w for w in workers if alive(w)] == []
    finally:
        proc.kill()


def test_odd_files_are_prepared_or_skipped_and_nothing_crashes(odd_photos, tmp_path):
    """The shared odd-input folder (tests/conftest.py): every file ends up written or listed
    in skipped.csv with a reason; the 400-megapixel header is refused without decoding it."""
    folder, expected = odd_photos
    out = tmp_path / "out"
    summary = prepare_folder(folder, out, workers=1, progress=False)
    written = {r["source"] for r in read_manifest(out)}
    skipped = {r["source"]: r["reason"] for r in read_rows(out / SKIPPED)}
    assert written == {n for n, k in expected.items() if k == "face"}
    assert set(skipped) == {n for n, k in expected.items() if k == "skip"}
    assert skipped["bomb_400mp.png"] == "unreadable" and skipped["noise.png"] == "no_face"
    assert all(skipped.values()) and summary.photos == len(expected)
