"""Augment a prepared dataset with hallucinated context (paper §4.4, CASIA-WebFace).

``python -m facectx.augment ckpt=RUN/checkpoints/last.ckpt data.root=PREPARED output=OUT``

The command line only: compose ``conf/augment.yaml``, build the trainer (``trainer=gpu``,
``ddp``, ``ddp_cpu``...), make one library call (:func:`facectx.inference.predict.augment`,
where the output folder, sharding, resuming and DDP are described). The library names stay
importable from here.
"""

from __future__ import annotations

import logging
from typing import Any

from facectx.inference.predict import (
    KILLED_EXIT,
    MANIFEST_COLUMNS,
    AugmentData,
    AugmentModule,
    AugmentPlan,
    MaskedFaces,
    ShardWriter,
    augment,
    merge_manifest,
    plan_for,
)

log = logging.getLogger("facectx.augment")

__all__ = [
    "KILLED_EXIT",
    "MANIFEST_COLUMNS",
    "AugmentData",
    "AugmentModule",
    "AugmentPlan",
    "MaskedFaces",
    "ShardWriter",
    "augment",
    "main",
    "merge_manifest",
    "plan_for",
    "run",
]


def run(cfg) -> dict[str, Any]:
    """Run a composed ``augment`` config (conf/augment.yaml)."""
    from hydra.utils import instantiate

    root, output = str(cfg.data.root), str(cfg.output)  # a missing one fails before the trainer
    # the trainer group is shared with training; a predict run needs no logger or model summary
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[], enable_model_summary=False)
    return augment(
        None if cfg.get("ckpt") is None else str(cfg.ckpt),
        root,
        output,
        trainer=trainer,
        split=cfg.data.get("split"),
        batch_size=int(cfg.data.batch_size),
        num_workers=int(cfg.data.num_workers),
        pin_memory=bool(cfg.data.pin_memory),
        shard_size=int(cfg.shard_size),
        png_compression=int(cfg.png_compression),
        write_threads=int(cfg.write_threads),
        use_ema=bool(cfg.use_ema),
        channels_last=bool(cfg.channels_last),
        fail_after_batches=cfg.get("fail_after_batches"),
    )


def main() -> None:
    """``python -m facectx.augment`` (Hydra: conf/augment.yaml)."""
    from facectx._conf import hydra_command

    hydra_command("augment", run, log)


if __name__ == "__main__":
    # Run from the importable module so DDP's re-launched processes use the same names.
    from facectx.augment import main as _main

    _main()
