"""Train a model: ``python -m facectx.train [experiment=...] [key=value ...]``.

Hydra composes ``conf/train.yaml``; every object (data, model, loss, trainer, loggers,
callbacks) is built from its ``_target_``. Outputs go to ``logs/<task>/<date-time>/``:
``checkpoints/`` (last, best by validation context L1, every N epochs), ``metrics.csv``,
``samples/`` (image grids), ``.hydra/`` (the exact config) and ``summary.json`` (written on
every stop, with its reason: budget reached, time limit, Ctrl-C, non-finite loss, error).

Budgets: ``trainer.max_steps`` counts **iterations** (generator updates, whatever the model's
phases), not Lightning's optimiser steps, so runs of different models or ablations compare
equal budgets; ``trainer.max_time`` is the wall-clock guard.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from facectx._conf import ConfigError, Rule, check_values

log = logging.getLogger("facectx.train")


def _instantiate_dict(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a dict-of-configs group (callbacks, loggers); None = none."""
    from hydra.utils import instantiate

    if not cfg:
        return []
    return [instantiate(c) for c in cfg.values() if c is not None and "_target_" in c]


def describe_loss(loss, sizes) -> str:
    """One line per block: which loss terms are active and with which weight."""
    lines = []
    starts = getattr(loss, "starts", {})
    for size in sizes:
        active = [
            f"{t}×{loss.weights[t]:g}"
            + (f" (from iteration {starts[t]})" if starts.get(t, 0) > 0 else "")
            for t in loss.active_terms(size)
        ]
        lines.append(f"  block_{size}: " + ", ".join(active))
    return "\n".join(lines)


_MAX_TIME = re.compile(r"^\d+:\d{1,2}:\d{1,2}:\d{1,2}$")

# What each value of a training config may be, by dotted key as typed (the first matching
# pattern wins; `*` also spans dots). What the constructors would refuse after seconds of
# building, or what would silently do nothing (trainer.max_steps=0).
_RULES: dict[str, Rule] = {
    "seed": Rule(low=0, whole=True, eg=0),
    "data.batch_size": Rule(low=1, whole=True, eg=8),
    "data.num_workers": Rule(low=0, whole=True, eg=2),
    "data.val_fraction": Rule(low=0, high=1, high_open=True, eg=0.1),
    "data.same_share": Rule(low=0, high=1, eg=0.5),
    "mask*.dilate": Rule(low=0, whole=True, eg=2, expect="a whole number of pixels ≥ 0"),
    "mask*.feather": Rule(low=0, whole=True, eg=2, expect="a whole number of pixels ≥ 0"),
    "mask*.fraction": Rule(low=0, high=1, low_open=True, eg=0.6),
    "mask*.jitter": Rule(low=0, eg=0.0),
    "mask*.grow": Rule(low=0, eg=0.04),
    "mask*.max_strokes": Rule(low=1, whole=True, eg=500),
    "mask.kinds.*": Rule(low=0, eg=0.5),
    "generator.width": Rule(low=0, low_open=True, eg=0.125),
    "generator.upscaler_channels": Rule(low=1, whole=True, eg=64),
    "discriminator.width": Rule(low=0, low_open=True, eg=0.125),
    "discriminator.channels": Rule(low=1, whole=True, eg=64),
    "discriminator.max_channels": Rule(low=1, whole=True, eg=512),
    "discriminator.num_scales": Rule(low=1, whole=True, eg=2),
    "model.width": Rule(low=0, low_open=True, eg=0.125),
    "model.generator_width": Rule(low=0, low_open=True, eg=0.125),
    "model.size": Rule(low=8, whole=True, eg=128),
    "model.harmoniser.width": Rule(low=0, low_open=True, eg=1.0),
    "model.harmoniser.scale": Rule(low=1, whole=True, eg=2),
    "model.near_gain": Rule(low=0, eg=3.0),
    "model.near_scale": Rule(low=0, low_open=True, eg=12.0),
    "model.optimizer.lr": Rule(low=0, low_open=True, eg=2e-4),
    "model.optimizer.betas": Rule(low=0, high=1, high_open=True, each=True, eg="[0.9,0.99]"),
    "model.optimizer_*.lr": Rule(low=0, low_open=True, eg=2e-4),
    "model.optimizer_*.betas": Rule(low=0, high=1, high_open=True, each=True, eg="[0.5,0.999]"),
    "model.ema_decay": Rule(low=0, high=1, high_open=True, null=True, eg=0.999),
    "model.ema_start": Rule(low=0, whole=True, eg=1000),
    "model.adv_start": Rule(low=0, whole=True, eg=500),
    "model.grad_clip_*": Rule(low=0, low_open=True, null=True, eg=1.0),
    "model.grad_clip": Rule(low=0, low_open=True, null=True, eg=1.0),
    "model.nan_policy": Rule(choices=("raise", "skip"), eg="skip"),
    "model.nan_max_skips": Rule(low=1, whole=True, eg=10),
    "model.epochs_per_scale": Rule(low=1, whole=True, each=True, eg=3),
    "model.fade_epochs": Rule(low=0, eg=0.5),
    "model.schedule": Rule(choices=("separate", "joint"), eg="separate"),
    "model.content_iterations": Rule(low=0, whole=True, eg=150),
    "model.max_iterations": Rule(low=1, whole=True, null=True, eg=400000),
    "model.cpu_threads": Rule(low=1, whole=True, null=True, eg=1),
    "loss.lambda_*": Rule(low=0, eg=1.0),
    "loss.pixel": Rule(choices=("l1", "l2"), eg="l1"),
    "loss.adversarial": Rule(choices=("lsgan", "hinge"), eg="hinge"),
    "loss.adv": Rule(choices=("bce", "hinge", "lsgan"), eg="hinge"),
    "loss.content_adv": Rule(choices=("bce", "hinge", "lsgan"), eg="bce"),
    "loss.ssim_min_size": Rule(low=11, whole=True, eg=64),
    "loss.*_min_size": Rule(low=1, whole=True, eg=32),
    "loss.ssim_start": Rule(low=0, whole=True, eg=5000),
    "loss.late_start": Rule(low=0, whole=True, null=True, eg=3600),
    "loss.identity_grad": Rule(choices=("rgb", "gray"), eg="gray"),
    "loss.late_identity_grad": Rule(choices=("rgb", "gray"), null=True, eg="gray"),
    "loss.identity_batch": Rule(low=1, whole=True, null=True, eg=4),
    "trainer.max_epochs": Rule(low=1, whole=True, also=(-1,), null=True, eg=10),
    "trainer.max_steps": Rule(low=1, whole=True, also=(-1,), null=True, eg=1000),
    "trainer.check_val_every_n_epoch": Rule(low=1, whole=True, null=True, eg=1),
    "trainer.log_every_n_steps": Rule(low=1, whole=True, eg=10),
    "trainer.num_sanity_val_steps": Rule(low=-1, whole=True, eg=0),
    "trainer.limit_*_batches": Rule(
        low=0, null=True, eg=10, expect="a batch count (10), a fraction (0.25) or null"
    ),
    "trainer.overfit_batches": Rule(low=0, eg=2),
    "callbacks.image_grid.every_n_epochs": Rule(low=1, whole=True, eg=1),
    "callbacks.image_grid.num_images": Rule(low=1, whole=True, eg=8),
    "callbacks.*.every_n_epochs": Rule(low=0, whole=True, null=True, eg=10),
    "callbacks.*.save_top_k": Rule(low=-1, whole=True, eg=1),
    "callbacks.iteration_budget.max_iterations": Rule(low=1, whole=True, null=True, eg=1000),
    "callbacks.iteration_budget.snapshot_every": Rule(low=0, whole=True, eg=500),
}


def check_config(cfg: DictConfig) -> None:
    """Fail in milliseconds, before anything is built, on values that would fail late:
    every value against its rule in ``_RULES``, the time limit's form, the resume checkpoint
    and the prepared data folder. (``python -m facectx.train`` runs it on each job's config
    before Hydra starts; see ``facectx._conf.check_command_line``.)

    Raises:
        ConfigError: naming the key, the value and what would work.
    """
    check_values(cfg, _RULES)
    trainer = cfg.get("trainer") or {}
    max_time = trainer.get("max_time")
    if max_time is not None and not (isinstance(max_time, str) and _MAX_TIME.match(max_time)):
        raise ConfigError(
            f"trainer.max_time={max_time!r}: expected days:hours:minutes:seconds, "
            "e.g. trainer.max_time=00:02:30:00 for two and a half hours"
        )
    ckpt = cfg.get("ckpt_path")
    if ckpt is not None and not Path(str(ckpt)).expanduser().is_file():
        raise ConfigError(
            f"ckpt_path={ckpt}: no such checkpoint file; resume from a run's "
            "checkpoints/last.ckpt (or drop ckpt_path to start fresh)"
        )
    root = OmegaConf.select(cfg, "data.root", throw_on_missing=False)
    if root is not None and not OmegaConf.is_missing(cfg.data, "root"):
        folder = Path(str(root)).expanduser()
        if not folder.exists():
            raise ConfigError(
                f"data.root={root}: no such folder; give a folder written by `python -m "
                "facectx.prepare input=PHOTOS output=PREPARED` (data.root=PREPARED)"
            )
        from facectx.data.manifest import MANIFEST

        if not (folder / MANIFEST).is_file():
            raise ConfigError(
                f"data.root={root} is not a prepared folder (no {MANIFEST}); prepare it first: "
                f"`python -m facectx.prepare input={root} output={root}_prepared`, then "
                f"data.root={root}_prepared"
            )


def describe_model(model) -> str:
    """One line: every top-level part with its parameter count (frozen parts marked)."""

    def count(n: int) -> str:
        return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.1f} K"

    parts = []
    for name, child in model.named_children():
        n = sum(p.numel() for p in child.parameters())
        if n:
            frozen = not any(p.requires_grad for p in child.parameters()) or not child.training
            parts.append(f"{name} ({type(child).__name__}) {count(n)}{' frozen' if frozen else ''}")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return "model: " + " · ".join(parts) + f" · trainable {count(trainable)}"


def stop_reason(trainer, model, budget, max_time: str | None) -> str:
    """Why a ``fit`` that returned normally stopped."""
    from pytorch_lightning.callbacks import Timer

    from facectx.callbacks.budget import module_iteration

    if (
        budget is not None
        and budget.max_iterations
        and module_iteration(model) >= budget.max_iterations
    ):
        return f"iteration budget reached ({budget.max_iterations} iterations)"
    timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)
    remaining = timer.time_remaining("train") if timer is not None else None
    if remaining is not None and remaining <= 0:
        return f"time limit reached (trainer.max_time={max_time})"
    if trainer.max_epochs is not None and 0 < trainer.max_epochs <= trainer.current_epoch:
        return f"max_epochs reached ({trainer.max_epochs} epochs)"
    if trainer.should_stop:
        return "stopped early by a callback or the model"
    return "finished"


def failure_reason(exc: BaseException, trainer) -> str:
    """Why ``fit`` raised: Ctrl-C (Lightning turns it into ``SystemExit``), NaN, or an error."""
    from facectx.modules.gan_base import NonFiniteLossError, NonFiniteModelError

    if isinstance(exc, KeyboardInterrupt) or (
        isinstance(exc, SystemExit) and getattr(trainer, "interrupted", False)
    ):
        return "interrupted (Ctrl-C)"
    if isinstance(exc, NonFiniteModelError):
        return f"non-finite model: {exc}"
    if isinstance(exc, NonFiniteLossError):
        return f"non-finite loss: {exc}"
    return f"error: {type(exc).__name__}: {exc}"


def run(cfg: DictConfig) -> dict[str, Any]:
    """Build everything from ``cfg`` and fit; returns a summary dict (also written to disk).

    Raises:
        ConfigError: before anything is built, for a config value that cannot work.
    """
    from facectx._runlog import quiet_lightning

    check_config(cfg)
    with quiet_lightning():
        return _run(cfg)


def _run(cfg: DictConfig) -> dict[str, Any]:
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    loss = getattr(model, "loss", None)
    if loss is not None and hasattr(loss, "active_terms"):
        log.info("loss terms (weight):\n%s", describe_loss(loss, model.sizes))
        for name, weight_key in (("lpips", "pc"), ("identity", "id")):
            if loss.weights[weight_key] > 0 and loss.get_frozen(name) is None:
                log.warning(
                    "loss.lambda_%s=%g but no %s network is configured (%s=null): term is OFF. "
                    "Choose one, e.g. %s",
                    weight_key,
                    loss.weights[weight_key],
                    name,
                    name,
                    "identity=dlib-resnet" if name == "identity" else "lpips=alex-v0.0",
                )

    from facectx.callbacks import EpochLog, IterationBudget

    log.info(describe_model(model))
    callbacks = _instantiate_dict(cfg.get("callbacks"))
    show_bar = bool(cfg.trainer.get("enable_progress_bar", True)) and sys.stdout.isatty()
    if not show_bar:
        # a bar redrawn in place is unreadable in a log file: one line per epoch instead.
        # (trainer.enable_progress_bar=false must also win over the callbacks group's bar,
        # which Lightning would otherwise refuse.)
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.ProgressBar)]
        callbacks.append(EpochLog())
    # trainer.max_steps counts iterations: Lightning's optimiser steps differ between models
    # (2 per iteration with a discriminator step, 1 without), so the budget is enforced by
    # IterationBudget on the module's own counter and Lightning gets no step limit.
    max_steps = int(cfg.trainer.get("max_steps") or -1)
    budget = next((c for c in callbacks if isinstance(c, IterationBudget)), None)
    if max_steps > 0:
        if budget is None:
            budget = IterationBudget()
            callbacks.append(budget)
        budget.max_iterations = min(budget.max_iterations or max_steps, max_steps)
    if budget is not None and budget.max_iterations:
        log.info("budget: %d iterations", budget.max_iterations)
    loggers = _instantiate_dict(cfg.get("logger"))
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        max_steps=-1,
        enable_progress_bar=show_bar,
    )

    t0 = time.perf_counter()
    summary: dict[str, Any] = {"output_dir": str(out_dir), "ckpt_path": cfg.get("ckpt_path")}
    try:
        # weights_only=True whatever the environment says: a resumed checkpoint is data,
        # never code (facectx checkpoints hold tensors and plain types only)
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
        summary["status"] = "finished"
        summary["stop_reason"] = stop_reason(trainer, model, budget, cfg.trainer.get("max_time"))
    except BaseException as exc:
        import pickle

        error = exc
        if isinstance(exc, pickle.UnpicklingError) and cfg.get("ckpt_path"):
            from facectx.inference import checkpoint_error

            error = checkpoint_error(cfg.ckpt_path, exc)  # without torch's unsafe advice
        summary["status"] = "failed"
        summary["stop_reason"] = failure_reason(error, trainer)
        _finish(summary, trainer, model, out_dir, time.perf_counter() - t0)
        if error is not exc:
            raise error from None
        raise
    _finish(summary, trainer, model, out_dir, time.perf_counter() - t0)
    if trainer.is_global_zero:
        from facectx._endnote import sample_run_note

        for line in sample_run_note(cfg, summary):  # `make demo`: what it got, what next
            log.info(line)
    return summary


def _link_previous_run(summary: dict[str, Any], ckpt_path: str | None, out_dir: Path) -> None:
    """A resumed run keeps its own folder but links the run it continues: ``summary.json``
    names it, ``previous_run`` points at it, and ``metrics_all.csv`` holds the whole training's
    history (the previous run's rows up to the checkpoint, then this run's)."""
    from facectx._runlog import merge_metrics, previous_run

    prev = previous_run(ckpt_path)
    if prev is None or prev == out_dir.resolve():
        return
    summary["resumed_from"] = str(prev)
    link = out_dir / "previous_run"
    if not link.exists() and not link.is_symlink():
        try:
            link.symlink_to(prev, target_is_directory=True)
        except OSError:  # file systems without symlinks: summary.json still names it
            pass
    history = prev / "metrics_all.csv"
    history = history if history.is_file() else prev / "metrics.csv"
    n = merge_metrics(history, out_dir / "metrics.csv", out_dir / "metrics_all.csv")
    summary["metrics_all"] = str(out_dir / "metrics_all.csv")
    log.info("resumed from %s: whole history (%d rows) in metrics_all.csv", prev, n)


def _finish(summary: dict[str, Any], trainer, model, out_dir: Path, elapsed: float) -> None:
    """Complete ``summary`` (counters, metrics, checkpoint paths) and write summary.json."""
    from facectx.callbacks import LastCheckpoint
    from facectx.callbacks.budget import module_iteration

    summary.update(
        {
            "seconds": round(elapsed, 1),
            "epochs": trainer.current_epoch,
            "iterations": module_iteration(model),
            "metrics": {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1},
        }
    )
    skipped = getattr(model, "skipped_iterations", None)
    if skipped is not None:
        summary["skipped_iterations"] = int(skipped)
    ckpt_cb = getattr(trainer, "checkpoint_callback", None)
    last_cb = next((cb for cb in trainer.callbacks if isinstance(cb, LastCheckpoint)), None)
    for key, path in (
        ("best_checkpoint", getattr(ckpt_cb, "best_model_path", "")),
        ("last_checkpoint", getattr(last_cb or ckpt_cb, "last_model_path", "")),
    ):
        summary[key] = path if path and Path(path).exists() else None
    if trainer.is_global_zero:
        for lg in trainer.loggers:
            lg.save()  # metrics.csv complete before it is merged
        _link_previous_run(summary, summary.get("ckpt_path"), out_dir)
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        if summary["status"] != "finished":
            log.error(  # one line: with a NaN stop, the whole of what the command prints
                "training stopped after %.1f s: %s (summary: %s)",
                elapsed,
                summary["stop_reason"],
                out_dir / "summary.json",
            )
            return
        log.info("done in %.1f s (%s); outputs in %s", elapsed, summary["stop_reason"], out_dir)
        for key in ("last_checkpoint", "best_checkpoint"):
            if summary.get(key):
                log.info("%s: %s", key, summary[key])
        if (out_dir / "metrics.csv").exists():
            log.info("metrics: %s", out_dir / "metrics.csv")
        if (out_dir / "samples" / "latest.png").exists():
            log.info("samples: %s", out_dir / "samples" / "latest.png")


def _run_command(cfg: DictConfig) -> None:
    """The CLI's run. A NaN stop (``NonFiniteLossError``, ``nan_policy=raise`` or ``skip``'s
    give-up, or a refused checkpoint) exits with code 1 and no traceback: ``_finish`` already
    logged its one line (terms, iteration, what to do) and wrote ``summary.json``. Code 1, not a
    user error's 2: the command was valid and training ran, then failed."""
    from facectx.modules.gan_base import NonFiniteLossError

    if cfg.get("print_config"):
        print(OmegaConf.to_yaml(cfg, resolve=False))
    try:
        run(cfg)
    except NonFiniteLossError:
        sys.exit(1)


def main() -> None:
    """``python -m facectx.train`` (Hydra: conf/train.yaml)."""
    from facectx._conf import hydra_command

    hydra_command("train", _run_command, log, check=check_config)


if __name__ == "__main__":
    main()
