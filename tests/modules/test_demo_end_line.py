"""``make demo`` ends by saying what a few minutes of training gave (iterations, the sample grid)
and how to see the shipped model on the same faces, with a command that works as printed."""

from __future__ import annotations

import csv
import logging
import shlex
import shutil
from pathlib import Path

from omegaconf import OmegaConf

from _config import compose_config
from facectx._endnote import sample_run_note
from facectx.assets import sample_root
from facectx.train import run

from .conftest import QUICK, compose_train, needs_sample

SMALL = QUICK


def _tiny_sample(dst: Path, n: int = 2) -> Path:
    """A prepared folder holding the embedded sample's first ``n`` faces."""
    src = sample_root()
    with (src / "manifest.csv").open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows, fields = list(reader)[:n], reader.fieldnames
    for r in rows:
        for key in ("image", "mask", "valid", "landmarks"):
            (dst / r[key]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src / r[key], dst / r[key])
    shutil.copy(src / "meta.json", dst / "meta.json")
    with (dst / "manifest.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return dst


@needs_sample
def test_a_quickstart_run_ends_with_what_it_got_and_the_shipped_model_command(
    tmp_path, caplog, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.INFO)
    out = run(compose_train(tmp_path, [*SMALL, "trainer.max_steps=2"]))
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("facectx")]
    what, last = ours[-2:]
    grid = Path(out["output_dir"]) / "samples" / "latest.png"
    assert grid.is_file()
    assert what.startswith("quickstart: 2 iterations")
    assert "grid: run/samples/latest.png" in what  # relative to the working directory
    assert all(len(m) <= 240 and "\n" not in m for m in (what, last))  # the log's line rule

    # the command, as printed, composes and runs (on 2 of the sample's faces, for time)
    command = last[last.index("python -m facectx.hallucinate") :]
    tokens = shlex.split(command)
    assert tokens[:3] == ["python", "-m", "facectx.hallucinate"]
    args = dict(t.split("=", 1) for t in tokens[3:])
    assert (tmp_path / args["input"]).resolve() == sample_root().resolve()
    assert (tmp_path / args["output"]).resolve().parent == Path(out["output_dir"]).resolve()
    from facectx.hallucinate import run as hallucinate

    tiny = _tiny_sample(tmp_path / "tiny")
    cfg = compose_config("hallucinate", [*tokens[3:], "progress=false"], root=tmp_path)
    cfg.input = str(tiny)
    summary = hallucinate(cfg)
    assert summary.portraits == 2
    assert len(list((tmp_path / args["output"] / "previews").glob("*.png"))) == 2


def _cfg(**data):
    target = "facectx.data.datamodule.FaceDataModule"
    return OmegaConf.create(
        {"task": "quickstart", "data": {"_target_": target, "root": None, **data}}
    )


def _summary(tmp_path, **kw):
    return {
        "output_dir": str(tmp_path),
        "status": "finished",
        "stop_reason": "time limit reached (trainer.max_time=00:00:08:00)",
        "iterations": 37,
        "seconds": 481.2,
        **kw,
    }


def test_the_note_says_few_iterations_give_rough_colour_and_names_a_missing_grid(tmp_path):
    what, command = sample_run_note(_cfg(), _summary(tmp_path))
    assert what.startswith("quickstart: 37 iterations, too few")
    assert "rough colour" in what and "no sample grid" in what
    assert "python -m facectx.hallucinate input=" in command
    many = sample_run_note(_cfg(), _summary(tmp_path, iterations=20_000))[0]
    assert "20000 iterations" in many and "rough" not in many


def test_no_note_for_own_data_another_task_or_a_failed_run(tmp_path):
    assert sample_run_note(_cfg(root=str(tmp_path)), _summary(tmp_path)) == []
    pairs = OmegaConf.create({"task": "swapinpaint_quickstart", "data": {"root": None}})
    pairs.data._target_ = "facectx.data.pairs.PairDataModule"
    assert sample_run_note(pairs, _summary(tmp_path)) == []
    assert sample_run_note(_cfg(), _summary(tmp_path, status="failed")) == []
