"""``model.nan_policy=skip`` survives a bad batch: the whole iteration is dropped, network buffers
(BatchNorm running statistics) included, so later checkpoints are finite; a NaN stop ends in one
log line, not a traceback; a refused checkpoint names what holds NaN and what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from facectx.modules.gan_base import GANModule, NonFiniteLossError, NonFiniteModelError
from facectx.train import run

from .conftest import QUICK, compose_train, needs_sample

SMALL = QUICK


# ---- a toy GAN with BatchNorm in G and D --------------------------------------------------------
class Points(Dataset):
    """2-D points; item ``nan_item`` (if any) is all NaN, as a corrupt image would be."""

    def __init__(self, n: int = 16, nan_item: int | None = None) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 2, generator=g) + 3
        self.z = torch.randn(n, 2, generator=g)
        if nan_item is not None:
            self.x[nan_item] = float("nan")
            self.z[nan_item] = float("nan")

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"real": self.x[i], "z": self.z[i]}


class NormGAN(GANModule):
    """G and D with BatchNorm, whose running statistics every training forward updates."""

    def __init__(self, nan_loss_at: int | None = None, **kw) -> None:
        super().__init__(**kw)
        self.g = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
        self.d = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
        self.nan_loss_at = nan_loss_at
        self.calls = 0
        self.setup_ema()

    @property
    def generator_module(self) -> nn.Module:
        return self.g

    def discriminator_parameters(self):
        return self.d.parameters()

    def generate(self, batch):
        return self.g(batch["z"])

    def discriminator_loss(self, batch, fake):
        loss = (self.d(batch["real"]) - 1).square().mean() + self.d(fake).square().mean()
        return loss, {"d": loss}

    def generator_loss(self, batch, fake):
        loss = (self.d(fake) - 1).square().mean()
        self.calls += 1
        if self.calls == self.nan_loss_at:  # finite inputs, a loss that blew up
            loss = loss * float("nan")
        return loss, {"g": loss}


class BufferSpy(pl.Callback):
    """The network buffers before and after every training batch, by batch index."""

    def __init__(self) -> None:
        self.before: dict[int, dict] = {}
        self.after: dict[int, dict] = {}

    @staticmethod
    def _buffers(module: nn.Module) -> dict:
        return {k: v.detach().clone() for k, v in module.named_buffers() if "." in k}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.before[batch_idx] = self._buffers(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.after[batch_idx] = self._buffers(pl_module)


def _fit(model: GANModule, data: Dataset, callbacks=()) -> None:
    pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    ).fit(model, DataLoader(data, batch_size=4))


def _all_finite(module: nn.Module) -> bool:
    return all(
        torch.isfinite(v).all() for v in module.state_dict().values() if v.is_floating_point()
    )


def test_a_nan_batch_under_skip_leaves_every_buffer_as_before_the_iteration():
    model = NormGAN(nan_policy="skip", ema_decay=0.5)
    spy = BufferSpy()
    _fit(model, Points(nan_item=5), [spy])  # batch 1 holds the NaN item
    assert int(model.skipped_iterations) == 1 and int(model.iteration) == 3
    bad = spy.before[1]
    assert any("running_mean" in k for k in bad) and any("num_batches_tracked" in k for k in bad)
    assert all(torch.equal(bad[k], spy.after[1][k]) for k in bad)  # restored, counters too
    assert not all(torch.equal(spy.before[0][k], spy.after[0][k]) for k in bad)  # good batch moves
    assert _all_finite(model)
    model.on_save_checkpoint({"state_dict": model.state_dict()})  # accepted


def test_a_loss_only_nan_under_skip_also_drops_the_iteration_buffer_updates():
    # the forward ran on finite data and moved the statistics; the iteration is dropped whole
    model = NormGAN(nan_policy="skip", nan_loss_at=2)
    spy = BufferSpy()
    _fit(model, Points(), [spy])
    assert int(model.skipped_iterations) == 1
    assert all(torch.equal(spy.before[1][k], spy.after[1][k]) for k in spy.before[1])


def test_a_nan_batch_under_raise_says_the_batch_holds_nan_and_suggests_skip():
    with pytest.raises(NonFiniteLossError, match=r"iteration 1.*batch.*(real|z).*nan_policy=skip"):
        _fit(NormGAN(), Points(nan_item=5))


# ---- the save-time refusal names the real cause -------------------------------------------------
def test_refused_checkpoint_with_nan_buffers_blames_the_data_not_the_learning_rate():
    model = NormGAN()
    with torch.no_grad():
        model.d[1].running_mean.fill_(float("nan"))
    with pytest.raises(NonFiniteModelError) as info:
        model.on_save_checkpoint({"state_dict": model.state_dict()})
    msg = str(info.value)
    assert "1 buffer" in msg and "d.1.running_mean" in msg and "BatchNorm" in msg
    assert "nan_policy=skip" in msg and "learning rate" not in msg
    assert "parameter tensor" not in msg  # every parameter is finite: none is blamed


def test_refused_checkpoint_with_nan_parameters_says_training_diverged():
    model = NormGAN()
    with torch.no_grad():
        model.g[0].weight.fill_(float("nan"))
        model.g[1].running_var.fill_(float("nan"))
    with pytest.raises(NonFiniteModelError) as info:
        model.on_save_checkpoint({"state_dict": model.state_dict()})
    msg = str(info.value)
    assert "1 parameter tensor" in msg and "g.0.weight" in msg
    assert "1 buffer" in msg and "g.1.running_var" in msg
    assert "lower the learning rates" in msg


# ---- the real quickstart cascade: one NaN batch in the middle -----------------------------------
@pytest.fixture
def nan_batch(monkeypatch):
    """The 2nd training batch's image (and what the data module derives from it) is NaN."""
    from facectx.data.datamodule import FaceDataModule

    seen = {"train": 0}
    original = FaceDataModule.on_after_batch_transfer

    def poisoned(self, batch, dataloader_idx):
        if self.trainer is not None and self.trainer.training:
            seen["train"] += 1
            if seen["train"] == 2:
                batch["image"] = torch.full_like(batch["image"], float("nan"))
                batch["masked"] = torch.full_like(batch["masked"], float("nan"))
        return original(self, batch, dataloader_idx)

    monkeypatch.setattr(FaceDataModule, "on_after_batch_transfer", poisoned)
    return seen


@needs_sample
@pytest.mark.parametrize("model", ["cascade", "progan"])
def test_one_nan_batch_under_skip_finishes_with_finite_checkpoints(tmp_path, nan_batch, model):
    overrides = [*SMALL, "trainer.max_epochs=2", "trainer.limit_train_batches=3"]
    overrides += ["model.nan_policy=skip", "trainer.log_every_n_steps=1"]
    if model == "progan":
        overrides += ["model=progan", "model.start_size=8", "model.final_size=32"]
        overrides += ["model.epochs_per_scale=1"]
    out = run(compose_train(tmp_path, overrides))
    assert nan_batch["train"] == 6
    assert out["status"] == "finished" and out["iterations"] == 5
    assert out["skipped_iterations"] == 1
    assert out["metrics"]["skipped_iterations"] == 1
    run_dir = Path(out["output_dir"])
    assert json.loads((run_dir / "summary.json").read_text())["skipped_iterations"] == 1
    checkpoints = sorted((run_dir / "checkpoints").glob("*.ckpt"))
    assert checkpoints and Path(out["last_checkpoint"]) in checkpoints
    for ckpt in checkpoints:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        assert any("running_mean" in k for k in state)  # BatchNorm statistics are saved
        bad = [k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all()]
        assert not bad, (ckpt.name, bad)


# ---- a NaN stop on the command line: one line, no traceback -------------------------------------
@needs_sample
@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("model.nan_policy=raise", "loss is not finite at iteration"),
        ("model.nan_policy=skip", "gave up after 2 consecutive"),
    ],
)
def test_cli_nan_stop_is_one_line_and_exit_code_1(tmp_path, policy, expected):
    # learning rates of 1e30 blow the weights up at the first step: iteration 1's loss is NaN
    args = [*SMALL, "trainer.max_epochs=1", "trainer.limit_train_batches=4", policy]
    args += ["model.nan_max_skips=2", "model.optimizer_g.lr=1e30", "model.optimizer_d.lr=1e30"]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    res = subprocess.run(
        [sys.executable, "-m", "facectx.train", *args, f"paths.log_dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    text = res.stdout + res.stderr
    assert res.returncode == 1, text
    assert "Traceback" not in text and "Error executing job" not in text
    errors = [line for line in text.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1, errors
    assert expected in errors[0] and "summary.json" in errors[0]
    summary = json.loads(Path(errors[0].rsplit("summary: ", 1)[1].rstrip(")")).read_text())
    assert summary["status"] == "failed" and expected in summary["stop_reason"]
