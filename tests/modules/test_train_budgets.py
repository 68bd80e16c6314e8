"""Budgets, stops and what a run tells its user: trainer.max_steps counts iterations for every
model, every stop writes summary.json with its reason, bad config fails before anything is
built, the log carries facectx's lines and real warnings only."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from facectx._conf import ConfigError
from facectx.train import check_config, run

from .conftest import QUICK, compose_train, needs_sample

SMALL = QUICK


def _summary(out: dict) -> dict:
    return json.loads((Path(out["output_dir"]) / "summary.json").read_text())


@needs_sample
@pytest.mark.parametrize("ablation", ["full", "no_adv"])
def test_max_steps_is_the_same_number_of_iterations_with_or_without_a_discriminator(
    tmp_path, ablation
):
    # no_adv has no discriminator step: in Lightning's optimiser steps it would train twice as
    # many iterations as the full model
    out = run(compose_train(tmp_path, [*SMALL, f"ablation={ablation}", "trainer.max_steps=3"]))
    assert out["iterations"] == 3
    assert out["status"] == "finished"
    assert "iteration budget" in out["stop_reason"]
    state = torch.load(out["last_checkpoint"], map_location="cpu", weights_only=True)
    assert int(state["state_dict"]["iteration"]) == 3
    assert _summary(out)["iterations"] == 3


@needs_sample
def test_time_limit_stops_cleanly_with_summary_samples_and_last_checkpoint(tmp_path):
    out = run(
        compose_train(
            tmp_path,
            [*SMALL, "trainer.max_epochs=50", "trainer.max_time=00:00:00:01"],
        )
    )
    assert out["status"] == "finished"
    assert out["stop_reason"].startswith("time limit reached")
    assert out["epochs"] < 50
    run_dir = Path(out["output_dir"])
    assert (run_dir / "samples" / "latest.png").exists()
    assert Path(out["last_checkpoint"]).exists()
    assert _summary(out)["stop_reason"] == out["stop_reason"]


@needs_sample
@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (KeyboardInterrupt(), "interrupted (Ctrl-C)"),
        ("nan", "non-finite loss"),
    ],
)
def test_an_interrupted_or_failed_run_still_writes_summary_with_the_reason(
    tmp_path, monkeypatch, exc, reason
):
    from facectx.callbacks.progress import EpochLog
    from facectx.modules.gan_base import NonFiniteLossError

    error = (
        NonFiniteLossError("generator loss is not finite at iteration 2") if exc == "nan" else exc
    )

    def boom(self, trainer, pl_module):
        raise error

    monkeypatch.setattr(EpochLog, "on_train_epoch_end", boom)
    cfg = compose_train(tmp_path, [*SMALL, "trainer.limit_train_batches=2"])
    with pytest.raises((SystemExit, NonFiniteLossError)):
        run(cfg)
    summary = json.loads((Path(cfg.paths.output_dir) / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["stop_reason"].startswith(reason)
    assert summary["iterations"] == 2


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("trainer.max_epochs=abc", "trainer.max_epochs"),
        ("trainer.max_steps=1.5", "trainer.max_steps"),
        ("trainer.max_time=2h", "trainer.max_time"),
        ("trainer.limit_train_batches=all", "trainer.limit_train_batches"),
        ("ckpt_path=/no/such/last.ckpt", "ckpt_path"),
        ("data.root=/no/such/folder", "data.root"),
        ("data.root=RAW", "data.root=.*is not a prepared folder"),
    ],
)
def test_bad_config_is_refused_before_anything_is_built(tmp_path, override, key):
    raw = tmp_path / "photos"  # a folder of photos, not prepared
    raw.mkdir()
    (raw / "a.jpg").write_bytes(b"")
    override = override.replace("RAW", str(raw))
    cfg = compose_train(tmp_path, ["experiment=quickstart", override])
    with pytest.raises(ConfigError, match=key if "*" in key else key.replace(".", r"\.")):
        check_config(cfg)
    with pytest.raises(ConfigError):
        run(cfg)
    assert not (tmp_path / "run").exists()  # nothing written


def test_cli_bad_config_is_one_line_and_exit_code_2(tmp_path):
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "facectx.train",
            "trainer.max_epochs=abc",
            f"paths.log_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert res.returncode == 2
    text = res.stdout + res.stderr
    assert "trainer.max_epochs='abc'" in text
    assert "Traceback" not in text


@needs_sample
def test_resume_loads_checkpoints_safely_whatever_the_environment_says(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "x": Evil()}, ckpt)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    from facectx.inference import CheckpointError

    with pytest.raises(CheckpointError, match="refusing to load checkpoint") as info:
        run(compose_train(tmp_path, [*SMALL, f"ckpt_path={ckpt}"]))
    assert not marker.exists()
    assert "weights_only=False" not in str(info.value)  # never advise unsafe loading


@needs_sample
def test_training_log_is_facectx_lines_and_real_warnings_only(tmp_path, caplog, capsys):
    caplog.set_level(logging.INFO)
    out = run(
        compose_train(tmp_path, [*SMALL, "trainer.max_epochs=2", "trainer.limit_train_batches=1"])
    )
    printed = capsys.readouterr()
    text = caplog.text + printed.out + printed.err
    for noise in (
        "Previous log files",
        "💡",
        "litlogger",
        "Total FLOPs",
        "LeafSpec",
        "in eval mode",
        "`weights_only` was not set",
        "could not find the monitored key",
    ):
        assert noise not in text, noise
    messages = "\n".join(r.getMessage() for r in caplog.records) + printed.out + printed.err
    # 240 characters of message + the log prefix (time, logger, level) stay under 300
    assert max(len(line) for line in messages.splitlines()) <= 240
    epoch_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(epoch_lines) == 2 and "iteration 2" in epoch_lines[-1]
    assert "val/context_l1" in epoch_lines[-1]
    assert any(r.getMessage().startswith("model: generator") for r in caplog.records)
    assert out["stop_reason"] == "max_epochs reached (2 epochs)"


@needs_sample
def test_a_diverging_run_under_nan_skip_fails_and_leaves_no_non_finite_checkpoint(tmp_path):
    from facectx.modules.gan_base import NonFiniteLossError, non_finite_tensors

    cfg = compose_train(
        tmp_path,
        [
            *SMALL,
            "trainer.max_epochs=4",
            "trainer.limit_train_batches=3",
            "model.nan_policy=skip",
            "model.nan_max_skips=2",
            "model.optimizer_g.lr=1e30",
            "model.optimizer_d.lr=1e30",
        ],
    )
    with pytest.raises(NonFiniteLossError):
        run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "non-finite" in summary["stop_reason"]
    assert summary["skipped_iterations"] >= 1
    for ckpt in (run_dir / "checkpoints").glob("*.ckpt"):
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        assert not non_finite_tensors(state["state_dict"]), ckpt


@needs_sample
def test_a_resumed_run_links_the_run_it_continues_and_merges_the_history(tmp_path):
    import csv

    common = [*SMALL, "trainer.limit_train_batches=3", "trainer.log_every_n_steps=1"]
    first = run(
        compose_train(
            tmp_path / "a",
            [*common, "trainer.max_steps=4", "callbacks.iteration_budget.snapshot_every=2"],
        )
    )
    first_dir = Path(first["output_dir"])
    (first_dir / ".hydra").mkdir(exist_ok=True)  # as a `python -m facectx.train` run folder
    # as after a kill: the run logged iterations 3-4 after the snapshot it is resumed from
    ckpt = first_dir / "checkpoints" / "iter000002.ckpt"
    second = run(
        compose_train(tmp_path / "b", [*common, "trainer.max_steps=5", f"ckpt_path={ckpt}"])
    )
    out = Path(second["output_dir"])
    assert second["resumed_from"] == str(first_dir.resolve())
    assert (out / "previous_run").resolve() == first_dir.resolve()
    with open(out / "metrics_all.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/g/total_step")]
    iterations = [int(float(r["iteration"])) for r in rows]
    assert iterations == [1, 2, 3, 4, 5]  # one history: iterations 3-4 once, from the resume
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(set(steps))


@needs_sample
def test_channels_last_training_runs_and_its_checkpoint_loads_anywhere(tmp_path):
    from facectx.inference import Hallucinator

    out = run(
        compose_train(
            tmp_path,
            [
                *SMALL,
                "trainer.max_steps=2",
                "+callbacks.channels_last._target_=facectx.callbacks.ChannelsLast",
            ],
        )
    )
    assert out["iterations"] == 2 and out["status"] == "finished"
    state = torch.load(out["last_checkpoint"], map_location="cpu", weights_only=True)
    convs = [
        v for k, v in state["state_dict"].items() if k.startswith("generator.") and v.ndim == 4
    ]
    assert convs and all(torch.isfinite(v).all() for v in convs)
    assert any(
        v.is_contiguous(memory_format=torch.channels_last) and not v.is_contiguous() for v in convs
    )
    h = Hallucinator.from_checkpoint(out["last_checkpoint"])  # a default-layout generator
    x = torch.zeros(1, 3, 32, 32)
    m = torch.zeros(1, 1, 32, 32)
    m[..., 10:20, 10:20] = 1
    assert torch.isfinite(h(x * m - (1 - m), m)).all()
