"""The training entry point: every experiment composes and runs, resume is exact, checkpoints
load into the Lightning-free Hallucinator, the CLI sweeps."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from facectx._conf import config_dir
from facectx.train import run

from .conftest import TINY, compose_train, needs_sample

SMALL = [*TINY, "generator.sizes=[8,16,32]", "data.pyramid_sizes=[8,16,32]", "identity=none"]
# the CPU recipe on the embedded sample, tiny, two faces a batch, one validation batch
LFW_CPU_TINY = [
    "experiment=lfw_cpu",
    "data=sample",
    *TINY,
    "identity=none",
    "data.batch_size=2",
    "trainer.limit_val_batches=1",
]
EXPERIMENTS = sorted(p.stem for p in (Path(config_dir()) / "experiment").glob("*.yaml"))
ABLATIONS = sorted(p.stem for p in (Path(config_dir()) / "ablation").glob("*.yaml"))


def _dlib_available() -> bool:
    try:
        from facectx.pretrained import resolve

        resolve("dlib-resnet")
        return True
    except Exception:
        return False


@needs_sample
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_runs_fast_dev_run(tmp_path, experiment):
    overrides = [f"experiment={experiment}", "debug=fdr", *TINY]
    if "swap" in experiment:  # swapinpaint_*, lfw_swap_cpu
        # pairs of faces at 128 px from the sample; tiny networks; the offline identity network.
        # The cascade's generator/discriminator groups are not composed: their widths are not set
        overrides = [o for o in overrides if not o.startswith(("generator.", "discriminator."))]
        overrides += [
            "model.width=0.0625",
            "data=pairs_sample",
            "data.batch_size=2",
            "model.size=128",
            "identity=dlib-resnet",
        ]
    elif experiment.startswith("paper"):
        # the paper's networks have no offline weights: prove the wiring with random ones
        overrides += [
            "data=sample",
            "data.batch_size=2",
            "identity.allow_random_init=true",
            "lpips.allow_random_init=true",
        ]
    elif not _dlib_available():
        overrides += ["identity=none"]
    cfg = compose_train(tmp_path, overrides)
    summary = run(cfg)
    assert summary["iterations"] == 1


@needs_sample
@pytest.mark.parametrize("ablation", ABLATIONS)
def test_every_ablation_composes(tmp_path, ablation):
    from hydra.utils import instantiate

    cfg = compose_train(tmp_path, ["experiment=quickstart", f"ablation={ablation}", *SMALL])
    if ablation == "progan":  # the training regime, not a loss term (tests/modules/test_progan.py)
        assert cfg.model._target_ == "facectx.modules.progan.ProGAN"
        assert cfg.trainer.max_epochs == 5 * cfg.model.epochs_per_scale
        return
    loss = instantiate(cfg.loss)
    if ablation == "full":  # the reference row: the experiment's own weights
        assert loss.pixel == "l1" and loss.weights["adv"] == 0.1 and loss.weights["id"] == 10.0
        return
    expected = {
        "l2_pixel": ("pixel", "l2"),
        "no_adv": ("adv", 0.0),
        "no_identity": ("id", 0.0),
        "no_lpips": ("pc", 0.0),
    }[ablation]
    key, value = expected
    assert (loss.pixel if key == "pixel" else loss.weights[key]) == value


def test_no_adv_removes_the_discriminator_from_the_cpu_recipe(tmp_path):
    # lfw_cpu's feature-matching term also needs D; "without adversarial" means no D at all
    from hydra.utils import instantiate

    full = instantiate(compose_train(tmp_path, ["experiment=lfw_cpu", *SMALL]).loss)
    assert full.uses_adversarial and full.weights["fm"] == 1.0
    cfg = compose_train(tmp_path, ["experiment=lfw_cpu", "ablation=no_adv", *SMALL])
    loss = instantiate(cfg.loss)
    assert loss.weights["adv"] == 0.0 and loss.weights["fm"] == 0.0
    assert not any(loss.uses_discriminator_at(s) for s in (8, 16, 32, 64, 128))


def _losses(metrics_csv: Path) -> list[tuple[int, float]]:
    with open(metrics_csv, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/g/total_step")]
    return [(int(r["step"]), float(r["train/g/total_step"])) for r in rows]


@needs_sample
def test_resume_reproduces_the_uninterrupted_loss_sequence(tmp_path):
    common = [
        *SMALL,
        "data.batch_size=4",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=1",
    ]
    straight = run(compose_train(tmp_path / "a", [*common, "trainer.max_epochs=2"]))
    first = run(compose_train(tmp_path / "b", [*common, "trainer.max_epochs=1"]))
    ckpt = first["last_checkpoint"]
    assert ckpt and Path(ckpt).exists()
    resumed = run(
        compose_train(tmp_path / "c", [*common, "trainer.max_epochs=2", f"ckpt_path={ckpt}"])
    )
    assert resumed["iterations"] == straight["iterations"] == 6
    full = dict(_losses(Path(straight["output_dir"]) / "metrics.csv"))
    second = _losses(Path(resumed["output_dir"]) / "metrics.csv")
    assert len(second) == 3
    for step, value in second:
        assert value == pytest.approx(full[step], rel=1e-5, abs=1e-6), step


@needs_sample
def test_last_checkpoint_is_the_final_state_even_after_a_mid_epoch_stop(tmp_path):
    # max_steps stands in for max_time: both stop inside an epoch. Lightning's own save_last
    # would leave last.ckpt at the last epoch whose validation improved the best score.
    common = [*SMALL, "data.batch_size=4", "trainer.limit_train_batches=2"]
    summary = run(
        compose_train(
            tmp_path,
            [
                *common,
                "trainer.limit_val_batches=1",
                "trainer.max_epochs=3",
                "trainer.max_steps=5",
            ],
        )
    )
    assert summary["iterations"] == 5  # 2 optimiser steps per iteration; epoch 2 cut after 1
    last = Path(summary["last_checkpoint"])
    assert last.name == "last.ckpt" and not last.with_name("last.ckpt.tmp").exists()
    state = torch.load(last, map_location="cpu", weights_only=False)
    assert state["global_step"] == 10
    assert int(state["state_dict"]["iteration"]) == 5
    best = torch.load(summary["best_checkpoint"], map_location="cpu", weights_only=False)
    # best is chosen at validations: epoch ends and the final validation of a budget stop
    assert best["global_step"] in (4, 8, 10)


@needs_sample
def test_resume_mid_epoch_continues_at_the_same_batch(tmp_path):
    """A checkpoint taken after the first batch of epoch 2 resumes with epoch 2's second batch."""
    common = [
        *SMALL,
        "data.batch_size=4",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=1",
    ]
    straight = run(compose_train(tmp_path / "a", [*common, "trainer.max_epochs=2"]))
    mid = [
        "+callbacks.mid._target_=pytorch_lightning.callbacks.ModelCheckpoint",
        f"+callbacks.mid.dirpath={tmp_path / 'mid'}",
        "+callbacks.mid.filename=mid",
        "+callbacks.mid.every_n_train_steps=8",  # 2 optimiser steps per iteration: iteration 4
    ]
    run(
        compose_train(
            tmp_path / "b", [*common, *mid, "trainer.max_epochs=2", "trainer.max_steps=4"]
        )
    )
    ckpt = tmp_path / "mid" / "mid.ckpt"
    assert ckpt.exists()
    resumed = run(
        compose_train(tmp_path / "c", [*common, "trainer.max_epochs=2", f"ckpt_path={ckpt}"])
    )
    assert resumed["iterations"] == straight["iterations"] == 6
    full = dict(_losses(Path(straight["output_dir"]) / "metrics.csv"))
    second = _losses(Path(resumed["output_dir"]) / "metrics.csv")
    assert [step for step, _ in second] == [4, 5]  # iterations 5 and 6 only (0-based)
    for step, value in second:
        assert value == pytest.approx(full[step], rel=1e-5, abs=1e-6), step


@needs_sample
def test_checkpoint_loads_into_hallucinator_and_keeps_face_pixels(tmp_path):
    from facectx.inference import CheckpointError, Hallucinator

    summary = run(
        compose_train(
            tmp_path,
            [
                *TINY,
                "identity=none",
                "trainer.max_epochs=1",
                "trainer.limit_train_batches=1",
                "trainer.limit_val_batches=1",
            ],
        )
    )
    out_dir = Path(summary["output_dir"])
    assert (out_dir / "metrics.csv").exists() and (out_dir / "samples" / "latest.png").exists()
    h = Hallucinator.from_checkpoint(summary["last_checkpoint"])
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 128, 128, generator=g) * 2 - 1
    mask = torch.zeros(2, 1, 128, 128)
    mask[..., 40:90, 40:90] = 1
    masked = image * mask - (1 - mask)
    out = h(masked, mask)
    assert out.shape == (2, 3, 128, 128)
    inside = mask.expand_as(out) == 1
    assert torch.equal(out[inside], masked[inside])
    with pytest.raises(ValueError, match="canonical"):
        h(masked[:, :, :64, :64], mask[:, :, :64, :64])
    # wrong files: not a checkpoint, and a torch file that is not ours
    junk = tmp_path / "junk.ckpt"
    junk.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.ckpt"):
        Hallucinator.from_checkpoint(junk)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="not a facectx cascade checkpoint"):
        Hallucinator.from_checkpoint(other)


def _cli(args: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "FACECTX_ROOT": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "facectx.train", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_cli_prints_config_job(tmp_path):
    res = _cli(["experiment=quickstart", "--cfg", "job"], tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "CascadeGAN" in res.stdout and "width: 0.125" in res.stdout


@pytest.mark.slow
@needs_sample
def test_cli_multirun_sweep_runs_two_jobs(tmp_path):
    res = _cli(
        [
            "-m",
            "loss.lambda_tv=0,1e-6",
            "experiment=quickstart",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1",
        ],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    summaries = sorted((tmp_path / "logs" / "quickstart" / "multiruns").glob("*/*/summary.json"))
    assert len(summaries) == 2


@pytest.mark.slow
@needs_sample
def test_ddp_cpu_two_processes(tmp_path):
    res = _cli(
        [
            "experiment=quickstart",
            "trainer=ddp_cpu",
            "identity=none",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1",
            "data.batch_size=4",
            "~callbacks.progress_bar",
        ],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert "MEMBER: 2/2" in out, out[-3000:]  # Lightning's line for the second process
    assert len(list((tmp_path / "logs" / "quickstart").glob("*/summary.json"))) == 1


@needs_sample
@pytest.mark.parametrize("logger", ["tensorboard", "wandb"])
def test_image_grids_reach_tensorboard_and_offline_wandb(tmp_path, monkeypatch, logger):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = compose_train(
        tmp_path,
        [
            *SMALL,
            f"logger={logger}",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=1",
            "trainer.limit_val_batches=1",
        ],
    )
    summary = run(cfg)
    out = Path(summary["output_dir"])
    assert (out / "metrics.csv").exists()  # CSV always rides along
    if logger == "tensorboard":
        assert list((out / "tensorboard").rglob("events.out.tfevents.*"))
    else:
        runs = list((out / "wandb").glob("offline-run-*"))
        assert runs and list(runs[0].glob("*.wandb"))
        # the sample grid was logged as a media file
        assert list(runs[0].rglob("media/images/samples_*.png"))


@needs_sample
def test_iteration_budget_stops_at_a_fixed_iteration_count_and_snapshots(tmp_path):
    """callbacks.iteration_budget counts generator updates, not optimiser steps (2 per GAN
    iteration) or time: the run stops mid-epoch at exactly N and keeps iter{N} snapshots."""
    summary = run(
        compose_train(
            tmp_path,
            [
                *SMALL,
                "data.batch_size=4",
                "trainer.limit_train_batches=4",
                "trainer.limit_val_batches=1",
                "trainer.max_epochs=5",
                "callbacks.iteration_budget.max_iterations=6",
                "callbacks.iteration_budget.snapshot_every=3",
            ],
        )
    )
    assert summary["iterations"] == 6
    ckpts = Path(summary["last_checkpoint"]).parent
    snaps = sorted(p.name for p in ckpts.glob("iter*.ckpt"))
    assert snaps == ["iter000003.ckpt", "iter000006.ckpt"]
    state = torch.load(ckpts / "iter000003.ckpt", map_location="cpu", weights_only=True)
    assert int(state["state_dict"]["iteration"]) == 3


@needs_sample
def test_lfw_cpu_recipe_trains_with_the_patch_discriminator(tmp_path):
    """The CPU recipe's pieces (patch D on the 64/128 blocks only, hinge, feature matching,
    context-weighted adversarial term) run end to end on the sample and log raw and weighted."""
    summary = run(
        compose_train(
            tmp_path,
            [*LFW_CPU_TINY, "trainer.max_steps=2", "model.adv_start=0"],
        )
    )
    assert summary["iterations"] == 2
    state = torch.load(summary["last_checkpoint"], map_location="cpu", weights_only=True)
    d_keys = {k.split(".")[1] for k in state["state_dict"] if k.startswith("discriminators.")}
    assert d_keys == {"64", "128"}
    header = (Path(summary["output_dir"]) / "metrics.csv").read_text().splitlines()[0]
    for col in ("train/g128/fm_step", "train/g128/fm_w_step", "train/g128/adv_step"):
        assert col in header
    assert "train/g32/adv_step" not in header


@needs_sample
def test_adversarial_warm_start_runs_no_discriminator_before_adv_start(tmp_path):
    common = [*LFW_CPU_TINY, "trainer.log_every_n_steps=1"]
    warm = run(
        compose_train(
            tmp_path / "warm",
            [*common, "model.adv_start=5", "trainer.max_steps=3"],
        )
    )
    header = (Path(warm["output_dir"]) / "metrics.csv").read_text().splitlines()[0]
    assert "train/g128/pixel_step" in header
    assert "train/d128/" not in header and "train/g128/adv_step" not in header
    state = torch.load(warm["last_checkpoint"], map_location="cpu", weights_only=True)
    assert int(state["state_dict"]["iteration"]) == 3
    # the discriminator's optimiser never stepped
    assert not state["optimizer_states"][1]["state"]


@needs_sample
def test_lfw_cpu_ssim_stage_switches_the_ssim_term_on_at_its_iteration(tmp_path):
    """The recipe's last stage: 1 - SSIM joins the loss at loss.ssim_start, not before."""
    import csv

    summary = run(
        compose_train(
            tmp_path,
            [
                *LFW_CPU_TINY,
                "trainer.log_every_n_steps=1",
                "model.adv_start=0",
                "loss.ssim_start=2",
                "trainer.max_steps=4",
            ],
        )
    )
    with open(Path(summary["output_dir"]) / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/g128/pixel_step")]
    logged = [r["train/g128/ssim_step"] != "" for r in rows]
    assert logged == [False, False, True, True]  # iterations 0, 1 without; 2, 3 with
    assert all(r["train/g32/ssim_step"] == "" for r in rows if "train/g32/ssim_step" in r)


@pytest.mark.slow
@needs_sample
def test_sigkill_mid_training_then_resume_reaches_the_straight_runs_weights(tmp_path):
    """A real SIGKILL of `python -m facectx.train`, then a resume from the last snapshot the
    killed run finished writing: the final weights are those of an uninterrupted run."""
    import signal
    import time

    common = [
        *SMALL,
        "data.batch_size=4",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=1",
        "trainer.max_epochs=100",
        "trainer.max_steps=14",
        "callbacks.iteration_budget.snapshot_every=2",
    ]
    straight = run(compose_train(tmp_path / "a", common))
    killed = tmp_path / "b"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [
        sys.executable,
        "-m",
        "facectx.train",
        *common,
        f"paths.root_dir={killed}",
        f"hydra.run.dir={killed / 'run'}",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    snaps = killed / "run" / "checkpoints"
    deadline = time.monotonic() + 300
    # iter000008 exists => iter000006 was completely written before it
    while not (snaps / "iter000008.ckpt").exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no snapshot within 300 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (snaps / "iter000014.ckpt").exists()  # it really died before the end
    resumed = run(
        compose_train(tmp_path / "c", [*common, f"ckpt_path={snaps / 'iter000006.ckpt'}"])
    )
    assert resumed["iterations"] == straight["iterations"] == 14
    a = torch.load(straight["last_checkpoint"], map_location="cpu", weights_only=True)
    b = torch.load(resumed["last_checkpoint"], map_location="cpu", weights_only=True)
    gen = [k for k in a["state_dict"] if k.startswith(("generator.", "discriminators."))]
    assert gen and set(gen) <= set(b["state_dict"])
    for k in gen:
        torch.testing.assert_close(b["state_dict"][k], a["state_dict"][k], rtol=1e-5, atol=1e-6)
