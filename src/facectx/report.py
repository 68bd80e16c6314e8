"""Aggregate an ablation sweep into one table (the paper's Table 8 layout).

    python -m facectx.train -m experiment=quickstart ablation=l2_pixel,no_adv,no_identity,no_lpips
    python -m facectx.report sweep_dir=logs/quickstart/multiruns/<time> data.root=PREPARED split=test

Every job folder of the sweep (a folder with ``.hydra/overrides.yaml``) becomes a row, named by
the overrides that differ between jobs (``ablation=no_adv``). A job whose ``<job>/evaluation/``
holds results computed with the current settings (same data, split, mask, networks, checkpoint
file) is read as is; a job with a checkpoint but no such results is evaluated first with
``facectx.evaluate`` (every key of ``conf/eval.yaml`` applies); a job without a checkpoint is
listed as such. Writes ``<sweep_dir>/report.md`` and ``report.csv``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

log = logging.getLogger("facectx.report")


def run(cfg: DictConfig) -> list[dict[str, Any]]:
    """Run a composed ``report`` config: evaluate what is missing, write the sweep's table."""
    from facectx.evaluation.sweep import budget_warning, write_report

    rows = write_report(cfg)
    warning = budget_warning(rows)
    if warning:
        log.warning("%s", warning)
    log.info("report: %s", Path(cfg.sweep_dir).expanduser().resolve() / "report.md")
    return rows


def main() -> None:
    """``python -m facectx.report`` (Hydra: conf/report.yaml)."""
    from facectx._conf import hydra_command

    hydra_command("report", run, log)


if __name__ == "__main__":
    main()
