"""Train a model: ``python -m facectx.train [experiment=...] [key=value ...]``.

Hydra composes ``conf/train.yaml``; every object (data, model, loss, trainer, loggers,
callbacks) is built from its ``_target_``. Outputs go to ``logs/<task>/<date-time>/``:
``checkpoints/`` (last, best by validation context L1, every N epochs), ``metrics.csv``,
``samples/`` (image grids), ``.hydra/`` (the exact config) and ``summary.json``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from facectx._conf import config_dir

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
    for size in sizes:
        active = loss.active_terms(size)
        lines.append(f"  block_{size}: " + ", ".join(f"{t}×{loss.weights[t]:g}" for t in active))
    return "\n".join(lines)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Build everything from ``cfg`` and fit; returns a summary dict (also written to disk)."""
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

    callbacks = _instantiate_dict(cfg.get("callbacks"))
    if not cfg.trainer.get("enable_progress_bar", True):
        # trainer.enable_progress_bar=false (logs to a file, CI) wins over the progress-bar
        # callback of the callbacks group, which Lightning would otherwise refuse
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.ProgressBar)]
    loggers = _instantiate_dict(cfg.get("logger"))
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    t0 = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    elapsed = time.perf_counter() - t0

    summary: dict[str, Any] = {
        "output_dir": str(out_dir),
        "seconds": round(elapsed, 1),
        "epochs": trainer.current_epoch,
        "iterations": int(getattr(model, "iteration", 0)),
        "metrics": {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1},
    }
    from facectx.callbacks import LastCheckpoint

    ckpt_cb = getattr(trainer, "checkpoint_callback", None)
    last_cb = next((cb for cb in trainer.callbacks if isinstance(cb, LastCheckpoint)), None)
    for key, path in (
        ("best_checkpoint", getattr(ckpt_cb, "best_model_path", "")),
        ("last_checkpoint", getattr(last_cb or ckpt_cb, "last_model_path", "")),
    ):
        summary[key] = path if path and Path(path).exists() else None
    if trainer.is_global_zero:
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        log.info("done in %.1f s; outputs in %s", elapsed, out_dir)
        for key in ("last_checkpoint", "best_checkpoint"):
            if summary.get(key):
                log.info("%s: %s", key, summary[key])
        if (out_dir / "metrics.csv").exists():
            log.info("metrics: %s", out_dir / "metrics.csv")
        if (out_dir / "samples" / "latest.png").exists():
            log.info("samples: %s", out_dir / "samples" / "latest.png")
    return summary


@hydra.main(config_path=config_dir(), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    if cfg.get("print_config"):
        print(OmegaConf.to_yaml(cfg, resolve=False))
    run(cfg)


if __name__ == "__main__":
    main()
