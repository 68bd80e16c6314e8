"""``python -m facectx.hallucinate ... samples=K seed=S`` with the exemplar model: K portraits
per face (``<id>_s<j>.png``, a row each, the K side by side in the preview), the settings in
job.json (a rerun with others is refused), and the cascade refusing K > 1 in one line."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from facectx.assets import sample_root
from facectx.faces.io import read_png
from facectx.inference.exemplar import pack_bank
from facectx.inference.portraits import hallucinate_folder, hallucinate_photos

from .conftest import needs_sample, replicate_sample

pytestmark = [needs_sample, pytest.mark.usefixtures("one_thread")]

NO_ID = {"shape": 1.0, "colour": 1.0, "hull": 1.0, "coverage": 1.0}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def bank(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bank") / "bank.pt"
    return pack_bank(sample_root(), out, feature=None, weights=NO_ID, progress=False).path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    return replicate_sample(tmp_path_factory.mktemp("prep") / "faces", 3)


def _cli(args: list[str], tmp_path: Path, monkeypatch, capfd) -> tuple[int, str]:
    from facectx import hallucinate

    argv = [*args, f"hydra.run.dir={tmp_path / 'run'}", "progress=false"]
    monkeypatch.setattr(sys, "argv", ["facectx-hallucinate", *argv])
    code = 0
    try:
        hallucinate.main()
    except SystemExit as e:
        code = int(e.code or 0)
    return code, "".join(capfd.readouterr())


def test_samples_2_writes_two_portraits_per_face(bank, prepared, tmp_path, monkeypatch, capfd):
    out = tmp_path / "out"
    args = [f"ckpt={bank}", f"input={prepared}", f"output={out}", "samples=2", "top=6"]
    code, text = _cli(args, tmp_path, monkeypatch, capfd)
    assert code == 0, text[-3000:]
    rows = _rows(out / "outputs.csv")
    ids = [r["id"] for r in _rows(prepared / "manifest.csv")]
    assert [(r["id"], r["sample"]) for r in rows] == [(i, j) for i in ids for j in ("0", "1")]
    for r in rows:
        assert r["output"] == f"{r['id']}_s{r['sample']}.png" and r["preview"]
    for face in ids:
        keep = read_png(out / f"masks/{face}.png") > 0
        preview = read_png(out / f"previews/{face}.png")
        assert preview.shape == (128, 4 * 128, 3)  # masked | s0 | s1 | original
        original = preview[:, 3 * 128 :]
        s0, s1 = (read_png(out / f"{face}_s{j}.png") for j in (0, 1))
        assert np.array_equal(s0[keep], original[keep]) and np.array_equal(s1[keep], original[keep])
        assert np.abs(s0.astype(int) - s1.astype(int))[~keep].mean() > 5  # two contexts
        assert not (out / f"{face}.png").exists()
    job = json.loads((out / "job.json").read_text())
    assert job["samples"] == 2 and job["seed"] == 0

    code, text = _cli(args, tmp_path, monkeypatch, capfd)  # the same again: all done
    assert code == 0 and len(_rows(out / "outputs.csv")) == len(rows), text[-3000:]
    for other in ("samples=3", "seed=1"):
        code, text = _cli([*args, other], tmp_path, monkeypatch, capfd)
        errors = [line for line in text.splitlines() if "[ERROR]" in line]
        assert code == 2 and len(errors) == 1, text[-3000:]
        assert other.split("=")[0] in errors[0] and str(out) in errors[0]


def test_one_sample_keeps_the_usual_layout(bank, prepared, tmp_path):
    out = tmp_path / "one"
    summary = hallucinate_folder(str(bank), str(prepared), str(out), progress=False)
    rows = _rows(out / "outputs.csv")
    assert summary.portraits == 3 and "sample" not in rows[0]
    assert all((out / f"{r['id']}.png").is_file() for r in rows)
    with pytest.raises(ValueError, match="samples=2"):  # its outputs.csv has no sample column
        hallucinate_folder(str(bank), str(prepared), str(out), samples=2, progress=False)


def test_photos_get_k_portraits_per_face(bank, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "AJ_Lamas_0001.png").write_bytes(
        (sample_root() / "images" / "AJ_Lamas_0001_0.png").read_bytes()
    )
    out = tmp_path / "out"
    summary = hallucinate_photos(str(bank), str(photos), str(out), samples=3, progress=False)
    rows = _rows(out / "outputs.csv")
    assert summary.portraits == 3 == len(rows)
    assert [r["output"] for r in rows] == [f"AJ_Lamas_0001_0_s{j}.png" for j in range(3)]
    assert read_png(out / rows[0]["preview"]).shape == (128, 5 * 128, 3)


def test_the_cascade_refuses_samples_in_one_line(tmp_path, monkeypatch, capfd):
    args = [
        "ckpt=pretrained:lfw-128",
        f"input={sample_root()}",
        f"output={tmp_path / 'out'}",
        "samples=2",
    ]
    code, text = _cli(args, tmp_path, monkeypatch, capfd)
    errors = [line for line in text.splitlines() if "[ERROR]" in line]
    assert code == 2 and len(errors) == 1 and "Traceback" not in text, text[-3000:]
    assert "deterministic" in errors[0] and "exemplar-lfw-128" in errors[0]
    assert not (tmp_path / "out").exists()


def test_the_default_portrait_model_is_the_exemplar_one():
    """hallucinate, the web demo and from_pretrained() without a name run exemplar-lfw-128; the
    tools that need a network keep the cascade."""
    from facectx.inference.hallucinator import pretrained_name
    from facectx.pretrained.hallucinators import DEFAULT_PORTRAIT, DEFAULT_PRETRAINED

    assert DEFAULT_PORTRAIT == "exemplar-lfw-128" and DEFAULT_PRETRAINED == "lfw-128"
    assert pretrained_name(None, DEFAULT_PORTRAIT) == "exemplar-lfw-128"
    assert pretrained_name("pretrained:lfw-128", DEFAULT_PORTRAIT) == "lfw-128"
    assert pretrained_name(None) == "lfw-128"
