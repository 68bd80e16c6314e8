"""One log line per epoch, for runs whose output is a file rather than a terminal."""

from __future__ import annotations

import logging
import re
import time

import pytorch_lightning as pl

from facectx.callbacks.budget import module_iteration

log = logging.getLogger("facectx.train")


class EpochLog(pl.Callback):
    """Logs ``epoch E/N · iteration I · T s (R it/s) · val/... · train/...`` after every epoch.

    A progress bar redrawn in place is unreadable in a log file (it shows up once, at the end);
    ``facectx.train`` uses this callback instead whenever the bar is off or stdout is not a
    terminal. The line goes through logging, so it also lands in the run's ``train.log``.

    Args:
        max_metrics: at most this many metrics on a line (validation first, then the
            largest block's generator total and the discriminator loss); keeps lines short.
    """

    def __init__(self, max_metrics: int = 4) -> None:
        self.max_metrics = max_metrics
        self._t0: float | None = None
        self._it0 = 0

    def on_train_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()
        self._it0 = module_iteration(pl_module)

    def _metrics(self, trainer) -> list[str]:
        m = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        val = sorted(k for k in m if k.startswith("val/"))
        blocks = sorted(
            (int(g.group(1)), k) for k in m if (g := re.fullmatch(r"train/g(\d+)/total", k))
        )
        train = [blocks[-1][1]] if blocks else []  # the largest block's generator total
        train += [k for k in ("train/d/total",) if k in m]
        return [f"{k} {m[k]:.4g}" for k in (val + train)[: self.max_metrics]]

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or self._t0 is None:
            return
        elapsed = time.perf_counter() - self._t0
        it = module_iteration(pl_module)
        rate = (it - self._it0) / elapsed if elapsed > 0 else 0.0
        max_epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        parts = [
            f"epoch {trainer.current_epoch + 1}/{max_epochs}",
            f"iteration {it}",
            f"{elapsed:.0f} s ({rate:.2f} it/s)",
            *self._metrics(trainer),
        ]
        log.info(" · ".join(parts))
