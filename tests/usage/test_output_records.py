"""Output folders record what produced them (``job.json`` / ``meta.json``): a rerun with another
model or other settings is refused in one line, the same inputs resume; a ProGAN checkpoint
saved before its last growth is refused instead of making tiny portraits."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facectx._jobrecord import JOB, OutputFolderError, check_or_record, weights_digest
from facectx.inference import CheckpointError, Hallucinator, load_hallucinator
from facectx.inference.portraits import hallucinate_folder, hallucinate_photos

from .conftest import fake_checkpoint, needs_sample, replicate_sample

SCALES = [8, 16, 32, 64, 128]


@pytest.fixture(scope="module")
def two_ckpts(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ckpts")
    return fake_checkpoint(tmp / "a.ckpt", seed=0), fake_checkpoint(tmp / "b.ckpt", seed=1)


@pytest.fixture(scope="module")
def unfinished_ckpt(tmp_path_factory):
    """A ProGAN run stopped at block_8 (of 8..128)."""
    progan = {"size": 8, "scales": SCALES, "epochs_per_scale": [1] * 5, "final": False}
    return fake_checkpoint(
        tmp_path_factory.mktemp("progan") / "epoch000.ckpt", sizes=(8,), progan=progan
    )


def _png_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


# ---------------------------------------------------------------------------- the record itself


def test_record_refuses_a_difference_and_adopts_a_legacy_folder(tmp_path, caplog):
    out = tmp_path / "out"
    rec = {"job": "x", "model": "a.ckpt", "weights": "1111", "seed": 0}
    assert check_or_record(out, rec, ["job", "weights", "seed"]) == rec
    assert check_or_record(out, {**rec, "model": "moved/a.ckpt"}, ["job", "weights", "seed"])
    with pytest.raises(OutputFolderError) as e:
        check_or_record(out, {**rec, "model": "b.ckpt", "weights": "2222", "seed": 1})
    msg = str(e.value)
    assert "\n" not in msg and str(out) in msg and "output=" in msg and "delete" in msg
    assert "model a.ckpt -> b.ckpt" in msg and "seed 0 -> 1" in msg

    legacy = tmp_path / "legacy"  # results of an older facectx, no record: adopted, with a word
    legacy.mkdir()
    (legacy / "outputs.csv").write_text("id\nx\n")
    with caplog.at_level(logging.WARNING, logger="facectx"):
        check_or_record(legacy, rec, results=("outputs.csv",))
    assert "older facectx" in caplog.text and (legacy / JOB).is_file()


def test_weights_digest_follows_the_weights_not_the_file(two_ckpts, tmp_path):
    import shutil

    a, b = two_ckpts
    moved = shutil.copy(a, tmp_path / "moved.ckpt")
    digest = [weights_digest(Hallucinator.from_checkpoint(p).generator) for p in (a, moved, b)]
    assert digest[0] == digest[1] != digest[2]


# ---------------------------------------------------------------------------- hallucinate


@needs_sample
def test_hallucinate_into_a_folder_of_another_checkpoint_is_refused(tmp_path, two_ckpts):
    a, b = two_ckpts
    root = replicate_sample(tmp_path / "prep", 3)
    out = tmp_path / "out"
    first = hallucinate_folder(str(a), str(root), str(out), progress=False)
    assert first.portraits == 3
    record = json.loads((out / JOB).read_text())
    assert record["job"] == "hallucinate" and record["model"] == str(a.resolve())
    before = _png_bytes(out)
    with pytest.raises(OutputFolderError, match=r"out .*different.*model .*output=.*delete") as e:
        hallucinate_folder(str(b), str(root), str(out), progress=False)
    assert "\n" not in str(e.value)
    assert _png_bytes(out) == before  # the first checkpoint's portraits, untouched
    again = hallucinate_folder(str(a), str(root), str(out), progress=False)  # same: resumes
    assert again.portraits == 0 and again.already_done == 3
    fresh = hallucinate_folder(str(b), str(root), str(tmp_path / "out_b"), progress=False)
    assert fresh.portraits == 3 and _png_bytes(tmp_path / "out_b") != before


def test_hallucinate_photos_with_other_face_settings_is_refused(tmp_path, two_ckpts, lfw_dir):
    a, _ = two_ckpts
    photos = tmp_path / "photos"
    photos.mkdir()
    name = sorted(p.name for p in (lfw_dir / "images").glob("*.jpg"))[0]
    (photos / name).symlink_to(lfw_dir / "images" / name)
    out = tmp_path / "out"
    first = hallucinate_photos(str(a), str(photos), str(out), progress=False)
    assert first.photos == 1
    with pytest.raises(OutputFolderError, match=r"faces all -> largest"):
        hallucinate_photos(str(a), str(photos), str(out), faces="largest", progress=False)
    with pytest.raises(OutputFolderError, match=r"min_face"):
        hallucinate_photos(str(a), str(photos), str(out), min_face=40, progress=False)
    again = hallucinate_photos(str(a), str(photos), str(out), progress=False)
    assert again.photos == 0 and again.already_done == 1


# ---------------------------------------------------------------------------- augment, background


@needs_sample
def test_augment_into_a_folder_of_another_checkpoint_is_refused(tmp_path, two_ckpts):
    from facectx.inference.predict import augment

    a, b = two_ckpts
    root = replicate_sample(tmp_path / "prep", 2)
    out = tmp_path / "aug"
    assert augment(str(a), str(root), str(out), num_workers=0)["written"] == 2
    with pytest.raises(OutputFolderError, match=r"model .*a\.ckpt -> .*b\.ckpt"):
        augment(str(b), str(root), str(out), num_workers=0)
    assert augment(str(a), str(root), str(out), num_workers=0)["already_done"] == 2


@needs_sample
def test_background_with_other_settings_is_refused(tmp_path):
    from facectx.faces.io import write_png
    from facectx.segment.folder import replace_folder

    root = replicate_sample(tmp_path / "prep", 2)
    bgs = tmp_path / "bgs"
    bgs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        write_png(bgs / f"bg{i}.png", rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    out = tmp_path / "out"
    assert replace_folder(root, bgs, out, preview=False, progress=False).outputs == 2
    with pytest.raises(OutputFolderError, match=r"seed 0 -> 3"):
        replace_folder(root, bgs, out, seed=3, progress=False)
    with pytest.raises(OutputFolderError, match=r"per_face 1 -> 2"):
        replace_folder(root, bgs, out, per_face=2, progress=False)
    assert replace_folder(root, bgs, out, progress=False).already_done == 2


# ---------------------------------------------------------------------------- unfinished ProGAN


def test_progan_checkpoint_before_its_last_growth_is_refused(unfinished_ckpt, tmp_path):
    pattern = rf"{unfinished_ckpt.name}.*8 px.*128 px.*8x8.*Train longer.*ckpt_path="
    with pytest.raises(CheckpointError, match=pattern):
        Hallucinator.from_checkpoint(unfinished_ckpt)
    with pytest.raises(CheckpointError, match=pattern):
        load_hallucinator(str(unfinished_ckpt))  # hallucinate, augment and export load this way
    assert Hallucinator.from_checkpoint(unfinished_ckpt, allow_unfinished=True).size == 8

    from facectx.inference.export import export_model

    with pytest.raises(CheckpointError, match="before the network grew"):
        export_model(str(unfinished_ckpt), "packed", str(tmp_path / "g.pt"), check_faces=0)
    assert not (tmp_path / "g.pt").exists()


def test_finished_progan_checkpoint_loads(tmp_path):
    progan = {"size": 128, "scales": SCALES, "epochs_per_scale": [1] * 5, "final": True}
    ckpt = fake_checkpoint(tmp_path / "last.ckpt", progan=progan)
    assert Hallucinator.from_checkpoint(ckpt).size == 128


@needs_sample
def test_cli_refusals_are_one_line_with_exit_code_2(tmp_path, unfinished_ckpt):
    root = replicate_sample(tmp_path / "prep", 1)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "FACECTX_ROOT": str(tmp_path / "run")}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "facectx.hallucinate",
            f"ckpt={unfinished_ckpt}",
            f"input={root}",
            f"output={tmp_path / 'out'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    text = res.stdout + res.stderr
    assert res.returncode == 2, text[-3000:]
    assert "Traceback" not in text and "Train longer" in text
    assert not (tmp_path / "out").exists()
