"""``python -m facectx.evaluate`` takes the shipped model like every other tool (no ``ckpt=`` or
``ckpt=pretrained:lfw-128``), explains a folder without splits, moves its progress bar within a
single batch and labels the columns of ``samples.png``.

Four faces of the embedded sample (its only split is ``train``) and only the metrics that need
no downloaded weights keep each run to a second or two."""

from __future__ import annotations

import csv
import sys

import numpy as np
import pytest
from PIL import Image

from facectx.evaluate import run
from metrics.helpers import compose_eval

CHEAP = [
    "identity=none",
    "lpips=none",
    "fid.enabled=false",
    "landmarks.enabled=false",
    "split=train",
    "limit=4",
    "num_samples=2",
]


pytestmark = pytest.mark.usefixtures("one_thread")


def _rows(result) -> dict[str, dict]:
    return {r["method"]: r for r in result.rows}


@pytest.mark.parametrize("ckpt", [[], ["ckpt=pretrained:lfw-128"]], ids=["no ckpt", "pretrained"])
def test_the_shipped_model_is_evaluated_by_default_and_by_name(ckpt, tmp_path):
    result = run(compose_eval(tmp_path, [*ckpt, *CHEAP]))
    rows = _rows(result)
    assert set(rows) == {"originals", "pretrained:lfw-128"}
    model = rows["pretrained:lfw-128"]
    assert model["n"] == 4 and model["n_problems"] == 0 and model["kind"] == "checkpoint"
    # a trained model fills the context far better than black, and keeps the face
    assert 0.3 < model["ssim"] < 1.0 and model["mse_ctx"] > model["mse"] > 0.0
    assert "shipped with facectx" in model["source"]


def test_both_forms_give_the_same_numbers_and_a_baseline_alone_stays_alone(tmp_path):
    default = run(compose_eval(tmp_path / "a", CHEAP))
    named = run(compose_eval(tmp_path / "b", ["ckpt=pretrained:lfw-128", *CHEAP]))
    a, b = _rows(default)["pretrained:lfw-128"], _rows(named)["pretrained:lfw-128"]
    assert a["ssim"] == b["ssim"] and a["mse_ctx"] == b["mse_ctx"]
    only = run(compose_eval(tmp_path / "c", ["method=[mask_only]", *CHEAP]))
    assert set(_rows(only)) == {"originals", "mask_only"}  # another method: no shipped model


def test_split_test_on_a_folder_without_splits_is_one_line_naming_split_null(
    tmp_path, monkeypatch, cli_error
):
    from facectx import evaluate
    from facectx.assets import sample_root
    from facectx.data.manifest import link_prepared

    root = link_prepared(sample_root(), tmp_path / "unsplit", 3)
    with open(root / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(root / "manifest.csv", "w", newline="") as f:  # as prepared without splits=
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({**r, "split": ""} for r in rows)
    args = [f"data.root={root}", "split=test", f"paths.log_dir={tmp_path / 'logs'}", *CHEAP[:4]]
    monkeypatch.setattr(sys, "argv", ["facectx-evaluate", *args])
    error, _ = cli_error(evaluate.main)
    assert "no splits" in error and "split=null" in error, error

    result = run(compose_eval(tmp_path, [f"data.root={root}", "split=null", *CHEAP[:4]]))
    assert _rows(result)["pretrained:lfw-128"]["n"] == 3  # the fix it names works


class _RecordingBar:
    """Stands in for the rich progress bar: keeps every completed count it is given."""

    def __init__(self) -> None:
        self.total = None
        self.completed: list[float] = []
        self.descriptions: list[str] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, description: str, total: float, **_) -> int:
        self.total, self.done = total, 0.0
        self.descriptions.append(description)
        return 0

    def advance(self, task: int, advance: float = 1) -> None:
        self.done += advance
        self.completed.append(self.done)

    def update(self, task: int, description: str | None = None, completed=None, **_) -> None:
        if description is not None:
            self.descriptions.append(description)
        if completed is not None:
            self.done = completed
            self.completed.append(completed)


def test_the_progress_bar_moves_within_a_single_batch(monkeypatch):
    from facectx.evaluation import harness
    from facectx.evaluation.baselines import MaskOnly

    bar = _RecordingBar()
    monkeypatch.setattr(harness, "_progress_bar", lambda enabled: bar)
    ev = harness.Evaluator(split="train", limit=6, batch_size=32, num_samples=0)
    ev.run([MaskOnly(), MaskOnly(name="again")])  # 6 faces: one batch
    assert bar.total == 6 and bar.completed[-1] == pytest.approx(6)
    early = [c for c in bar.completed if 0 < c < 6]
    assert len(early) >= 2, bar.completed  # the originals' features, then each method
    assert any("mask_only" in d for d in bar.descriptions), bar.descriptions


def test_samples_png_labels_its_columns(tmp_path):
    from facectx.evaluation.tables import grid_labels

    run(compose_eval(tmp_path, ["method=[mask_only]", "ckpt=pretrained:lfw-128", *CHEAP]))
    grid = np.asarray(Image.open(tmp_path / "eval" / "samples.png").convert("L"))
    s, pad, n_rows = 128, 2, 2
    labels = ["input", "mask_only", "pretrained:lfw-128", "original"]
    assert grid_labels(["masked", "mask_only", "pretrained:lfw-128", "original"]) == labels
    assert grid.shape[1] == len(labels) * (s + pad) + pad
    header = grid.shape[0] - (n_rows * (s + pad) + pad)
    assert header >= 10  # a strip above the faces holds the labels
    heads = [grid[:header, pad + j * (s + pad) : pad + j * (s + pad) + s] for j in range(4)]
    assert all((h < 128).any() for h in heads)  # dark text above every column
    assert len({h.tobytes() for h in heads}) == 4  # and a different text
