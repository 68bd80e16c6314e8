"""``python -m facectx.report``: a sweep's jobs evaluated on demand and tabulated (Table 8)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from facectx.evaluation.sweep import budget_warning, find_jobs, job_names
from facectx.report import run
from metrics.helpers import TINY_TRAIN, compose_eval, prepared_lfw_test, tiny_checkpoint

QUICK = ["fid.enabled=false", "landmarks.enabled=false", "limit=6"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="session")
def lfw_test20(tmp_path_factory, lfw_split_images):
    return prepared_lfw_test(tmp_path_factory, lfw_split_images, 20)


def _fake_sweep(root: Path, ckpt: Path) -> Path:
    """Three job folders as Hydra writes them; the last one has no checkpoint (a failed job)."""
    sweep = root / "logs" / "quickstart" / "multiruns" / "2026-01-01_00-00-00"
    for num, ablation in enumerate(["no_adv", "l2_pixel", "no_identity"]):
        job = sweep / str(num)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(
            f"- experiment=quickstart\n- ablation={ablation}\n"
        )
        if ablation != "no_identity":
            (job / "checkpoints").mkdir()
            shutil.copy(ckpt, job / "checkpoints" / "last.ckpt")
            # as under Lightning's optimiser-step budgets: no_adv (no D step) trained twice as long
            its = 10 if ablation == "no_adv" else 5
            (job / "summary.json").write_text(f'{{"iterations": {its}, "seconds": 12.5}}')
    return sweep


def test_job_names_are_the_overrides_that_differ(tmp_path):
    jobs = {tmp_path / "0": ["experiment=quickstart", "ablation=no_adv"]}
    jobs[tmp_path / "1"] = ["experiment=quickstart", "ablation=l2_pixel"]
    assert list(job_names(jobs).values()) == ["ablation=no_adv", "ablation=l2_pixel"]
    assert list(job_names({tmp_path / "0": ["a=1"]}).values()) == ["a=1"]
    with pytest.raises(FileNotFoundError, match="sweep_dir"):
        find_jobs(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no job folders"):
        find_jobs(tmp_path)


def test_budget_warning_only_when_jobs_trained_different_iterations():
    same = [
        {"job": "a", "overrides": "x", "iterations": 5},
        {"job": "b", "overrides": "y", "iterations": 5},
    ]
    assert budget_warning(same) is None
    assert budget_warning([*same, {"job": "baseline", "iterations": None}]) is None  # extra row
    text = budget_warning([same[0], {**same[1], "iterations": 10}])
    assert "a: 5, b: 10" in text and "trainer.max_steps" in text


def test_report_evaluates_missing_jobs_then_reuses_them(
    tmp_path, tmp_path_factory, lfw_test20, monkeypatch
):
    ckpt = tiny_checkpoint(tmp_path_factory)
    sweep = _fake_sweep(tmp_path, ckpt)
    overrides = [f"sweep_dir={sweep}", f"data.root={lfw_test20}", "method=[mask_only]"]
    overrides += [f"ckpt={{full:{ckpt}}}", *QUICK]  # extra rows: a baseline, a run outside
    rows = run(compose_eval(tmp_path, overrides, name="report"))
    by_job = {r["job"]: r for r in rows}
    assert list(by_job) == [
        "ablation=no_adv",
        "ablation=l2_pixel",
        "ablation=no_identity",
        "mask_only",
        "full",
        "originals (reference)",
    ]
    assert by_job["full"]["ssim"] == pytest.approx(by_job["ablation=no_adv"]["ssim"])
    assert by_job["ablation=no_adv"]["status"] == "evaluated"
    assert by_job["ablation=no_adv"]["n"] == 6 and 0 < by_job["ablation=no_adv"]["ssim"] < 1
    assert "no checkpoints/last.ckpt" in by_job["ablation=no_identity"]["status"]
    assert (sweep / "0" / "evaluation" / "results.csv").is_file()
    md = (sweep / "report.md").read_text()
    assert "Table 8" in md and "ablation=l2_pixel" in md and "no_identity" in md
    assert by_job["ablation=no_adv"]["iterations"] == 10
    assert by_job["ablation=l2_pixel"]["iterations"] == 5
    assert "**Warning:** Jobs trained unequal budgets" in md
    assert "10 iterations in 12 s" in md and "iterations unknown" in md
    with open(sweep / "report.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 6

    import facectx.evaluation.from_config

    def no_evaluation(cfg):
        raise AssertionError("up-to-date results must be reused")

    monkeypatch.setattr(facectx.evaluation.from_config, "evaluate_config", no_evaluation)
    again = run(compose_eval(tmp_path, overrides, name="report"))
    assert [again[i]["status"] for i in (0, 1, 3, 4)] == ["reused"] * 4
    assert again[0]["ssim"] == pytest.approx(rows[0]["ssim"])
    monkeypatch.undo()

    changed = run(compose_eval(tmp_path, [*overrides[:-1], "limit=5"], name="report"))
    assert changed[0]["status"] == "evaluated" and changed[0]["n"] == 5


def test_report_leaves_out_a_job_still_training_unless_asked(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    import facectx.evaluation.sweep as sweep_mod

    job = tmp_path / "sweep" / "0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- ablation=no_adv\n")
    (job / "checkpoints").mkdir()
    (job / "checkpoints" / "last.ckpt").write_bytes(b"rewritten every epoch")  # no summary.json
    scored = []

    def fake_evaluate(cfg, folder, ckpt):
        scored.append(ckpt)
        return [{"kind": "checkpoint", "method": "0/last", "n": 6, "ssim": 0.5}], "evaluated"

    monkeypatch.setattr(sweep_mod, "evaluate_if_needed", fake_evaluate)
    cfg = OmegaConf.create({"sweep_dir": str(tmp_path / "sweep"), "checkpoint": "last.ckpt"})
    (row,) = sweep_mod.build_report(cfg)
    assert row["status"].startswith("unfinished (no summary.json") and scored == []
    assert row.get("n") is None  # not in the tables, listed under "Not in the tables"
    md = sweep_mod.report_markdown(cfg, [row])
    assert "unequal budgets" not in md and "Not in the tables: ablation=no_adv (unfinished" in md
    cfg.unfinished = True
    (row,) = sweep_mod.build_report(cfg)
    assert row["status"] == "evaluated" and row["n"] == 6 and len(scored) == 1


@pytest.mark.slow
def test_real_sweep_then_report(tmp_path, lfw_test20):
    """Two tiny ablation jobs through the train CLI (-m), then the report CLI on them."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FACECTX_ROOT": str(tmp_path)}
    tiny = [
        "generator.width=0.0625",
        "discriminator.width=0.0625",
        "data.num_workers=0",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "~callbacks.progress_bar",
        *(o for o in TINY_TRAIN if not o.startswith("trainer.max_epochs")),
        "trainer.max_epochs=5",  # 1 batch per epoch: the 2-iteration budget stops first
    ]
    sweep = tmp_path / "logs" / "quickstart" / "multiruns" / "sweep"
    cmd = [sys.executable, "-m", "facectx.train", "-m", "experiment=quickstart"]
    # an explicit sweep dir: conf/hydra's default one resolves ${hydra:runtime.cwd} (through
    # paths.root_dir) before Hydra sets it in multirun mode
    cmd += ["ablation=full,no_adv", *tiny, "trainer.max_steps=2", f"hydra.sweep.dir={sweep}"]
    subprocess.run(cmd, env=env, check=True, cwd=tmp_path)
    sweeps = [sweep]
    report = [sys.executable, "-m", "facectx.report", f"sweep_dir={sweeps[0]}"]
    report += [f"data.root={lfw_test20}", "limit=8", "threads=1", "progress=false"]
    subprocess.run(report, env=env, check=True, cwd=tmp_path)
    with open(sweeps[0] / "report.csv", newline="") as f:
        rows = {r["job"]: r for r in csv.DictReader(f)}
    assert {"ablation=full", "ablation=no_adv", "originals (reference)"} <= set(rows)
    for job in ("ablation=full", "ablation=no_adv"):  # no_adv has no discriminator step
        assert rows[job]["n"] == "8" and float(rows[job]["fid"]) > 0
        assert rows[job]["iterations"] == "2"
    assert "Every job trained 2 iterations." in (sweeps[0] / "report.md").read_text()
    assert float(rows["originals (reference)"]["fid"]) == pytest.approx(0.0, abs=1e-3)
