"""Log hygiene for training runs: Lightning's noise off, real warnings into the run's log file,
no line longer than a screen can follow."""

from __future__ import annotations

import csv
import logging
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# longest message line; with the log prefix (time, logger, level) a line stays under 300
MAX_LINE = 240
_SITE = re.compile(r"^\S*?site-packages/")

# Warnings that say nothing to a facectx user (all checked against Lightning 2.6):
WARNING_NOISE = (
    # the run folder already holds .hydra/ and train.log; metrics.csv is new in every run folder
    r"Experiment logs directory .* exists and is not empty",
    # Lightning's own use of a deprecated torch API
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # EMA generators and frozen loss networks are in eval mode on purpose
    r"Found \d+ module\(s\) in eval mode",
    # before the first validation the "best" checkpoint has nothing to rank; the warning lists
    # every logged metric (kilobytes on one line)
    r"`ModelCheckpoint\(monitor=.*could not find the monitored key",
)
# Lightning info lines that advertise or repeat what facectx already says
INFO_NOISE = ("💡 Tip", "TPU available", "`weights_only` was not set")
LIGHTNING_LOGGERS = (
    "pytorch_lightning.utilities.rank_zero",
    "lightning_fabric.utilities.rank_zero",
    "pytorch_lightning.trainer.connectors.checkpoint_connector",
    "py.warnings",
)


class _Hygiene(logging.Filter):
    """Drops Lightning's noise lines; cuts any other message to ``MAX_LINE`` characters a line
    (a warning's path is shortened to the package's own, e.g. ``pytorch_lightning/...``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if any(noise in msg for noise in INFO_NOISE):
            return False
        lines = [_SITE.sub("", line) for line in msg.strip().splitlines()] or [""]
        record.msg = "\n".join(
            line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…" for line in lines
        )
        record.args = ()
        return True


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """While active: the noise above is filtered, and Python warnings go through logging (so the
    run's ``train.log`` keeps them, shortened). Everything is restored on exit."""
    hygiene = _Hygiene()
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    with warnings.catch_warnings():
        for pattern in WARNING_NOISE:
            warnings.filterwarnings("ignore", message=pattern)
        logging.captureWarnings(True)
        for logger in loggers:
            logger.addFilter(hygiene)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeFilter(hygiene)
            logging.captureWarnings(False)


def previous_run(ckpt_path: str | os.PathLike | None) -> Path | None:
    """The run folder a resume checkpoint came from (``<run>/checkpoints/<file>`` with
    ``<run>/.hydra``), or None for a checkpoint kept elsewhere."""
    if not ckpt_path:
        return None
    run = Path(ckpt_path).expanduser().resolve().parent.parent
    return run if (run / ".hydra").is_dir() else None


def merge_metrics(previous: Path, current: Path, out: Path) -> int:
    """Write ``out``: the rows of ``previous`` logged before ``current``'s first step (rows a
    killed run logged after its checkpoint were logged again by the resumed run) followed by
    ``current``'s. ``previous`` may itself be a merged file, so chains of resumes stay one
    history. Columns are the union of both headers. Returns the number of rows written."""

    def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
        if not path.is_file():
            return [], []
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames or []), list(reader)

    old_fields, old_rows = read(previous)
    new_fields, new_rows = read(current)
    first = min((_step(r) for r in new_rows), default=float("inf"))
    rows = [r for r in old_rows if _step(r) < first] + new_rows
    fields = old_fields + [c for c in new_fields if c not in old_fields]
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out)
    return len(rows)


def _step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step") or "inf")
    except ValueError:
        return float("inf")
