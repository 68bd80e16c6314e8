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

from facectx._conf import ConfigError

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


_INT_KEYS = ("max_epochs", "max_steps", "check_val_every_n_epoch", "log_every_n_steps")
_LIMIT_KEYS = ("limit_train_batches", "limit_val_batches")
_MAX_TIME = re.compile(r"^\d+:\d{1,2}:\d{1,2}:\d{1,2}$")


def check_config(cfg: DictConfig) -> None:
    """Fail in milliseconds, before anything is built, on values that would fail late.

    Raises:
        ConfigError: naming the key, the value and what would work.
    """
    trainer = cfg.get("trainer") or {}
    for key in _INT_KEYS:
        value = trainer.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(
                f"trainer.{key}={value!r}: expected a whole number, e.g. trainer.{key}=10"
            )
    for key in _LIMIT_KEYS:
        value = trainer.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ConfigError(
                f"trainer.{key}={value!r}: expected a batch count (e.g. 10), a fraction (0.25) or null"
            )
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
    from facectx.modules.gan_base import NonFiniteLossError

    if isinstance(exc, KeyboardInterrupt) or (
        isinstance(exc, SystemExit) and getattr(trainer, "interrupted", False)
    ):
        return "interrupted (Ctrl-C)"
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
            log.error("training stopped after %.1f s: %s", elapsed, summary["stop_reason"])
            log.error("summary: %s", out_dir / "summary.json")
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
    if cfg.get("print_config"):
        print(OmegaConf.to_yaml(cfg, resolve=False))
    run(cfg)


def main() -> None:
    """``python -m facectx.train`` (Hydra: conf/train.yaml)."""
    from facectx._conf import hydra_command

    hydra_command("train", _run_command, log)


if __name__ == "__main__":
    main()
