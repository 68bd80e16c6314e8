"""One resumable folder job: the bookkeeping prepare, hallucinate, background, inpaint and augment
share, written once.

Each of these commands turns a list of items (photos, prepared faces, portraits) into files in
an output folder, and must survive a kill, a full disk and a rerun. :class:`FolderJob` is that
part, so the commands only say what one item becomes:

* **the folder's record** (``job.json``, or ``meta.json`` for prepare and augment;
  :func:`facectx._jobrecord.check_or_record`): a rerun with another model or other settings is
  refused, in one line, before anything is written;
* **leftovers of a killed run**: temporary files (``.<name>.<pid>.tmp``) are deleted;
* **the done set**: the keys listed in the results CSV and (unless ``retry_skipped``) in
  ``skipped.csv``; :meth:`FolderJob.todo` keeps only the items not in it and counts the rest as
  ``already_done``;
* **append-only CSVs**, flushed and fsynced on every write: a command lists an item only after
  its files exist, all rows of one item in one write, so a kill leaves whole entries or none;
* **skips and stops**: :meth:`FolderJob.skip` records an item's own problem (counted per
  reason), :meth:`FolderJob.reject` an input entry that is no item (a GIF among the photos);
  :meth:`FolderJob.fail` turns an unexpected error into a skip, or, when it is the machine's
  (full disk, read-only folder, permission denied, out of memory), into
  :class:`JobStoppedError`: the item is not marked done and a rerun redoes it;
* **one progress bar** (rich, on stderr).

Processes that write the same folder at once (augment under DDP) each append to their own part
files (``rank=r``: ``parts/rank<r>.csv``, ``parts/skipped.rank<r>.csv``); the done set reads
them too, and :meth:`FolderJob.merge` folds them into the results and skipped CSVs at the end.

Typical use::

    with FolderJob(out, results="outputs.csv", columns=COLUMNS, key="source",
                   record={...}, clean=(".", "masks"), what="hallucinate") as job:
        for source, path in job.todo(listed, key=lambda item: item[0]):
            try:
                rows = handle(path)          # write the item's files first
            except ImageReadError as e:
                job.skip(source, "unreadable", e.reason)
            except Exception as e:
                job.fail(source, e)          # a skip, or JobStoppedError for a machine error
            else:
                job.done(rows)               # then list them, in one write
            job.advance()
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from facectx._jobrecord import (
    JOB,
    JobStoppedError,
    OutputFolderError,
    check_or_record,
    is_environmental,
    job_stopped,
)

log = logging.getLogger("facectx")

T = TypeVar("T")

SKIPPED = "skipped.csv"
SKIPPED_COLUMNS = ("source", "reason", "detail")
PARTS = "parts"

__all__ = [
    "PARTS",
    "SKIPPED",
    "SKIPPED_COLUMNS",
    "FolderJob",
    "JobStoppedError",
    "OutputFolderError",
    "item_error",
    "progress_bar",
]


def item_error(e: BaseException, item: str, folder: str | os.PathLike) -> str:
    """The ``skipped.csv`` detail of an unexpected error on ``item`` (``Type: message``).

    Raises:
        JobStoppedError: ``e`` is the machine's problem (:func:`is_environmental`), not the
            item's: the job must stop rather than list the item as skipped.
    """
    if is_environmental(e):
        raise job_stopped(e, item, folder) from e
    log.debug("error on %s", item, exc_info=True)
    return f"{type(e).__name__}: {e}"


def progress_bar(enabled: bool, what: str, count: str | None = None, unit: str = "img"):
    """The folder jobs' one progress bar (rich, stderr): done/total, an optional running
    ``count`` (e.g. faces written), speed, elapsed and remaining time."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class SpeedColumn(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"-- {unit}/s" if speed is None else f"{speed:.1f} {unit}/s")

    columns: list[Any] = [TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn()]
    if count:
        columns.append(TextColumn(f"{{task.fields[count]}} {count}"))
    columns += [SpeedColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    return Progress(*columns, console=Console(stderr=True), disable=not enabled)


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


class FolderJob:
    """The resumable bookkeeping of one output folder (see the module docstring).

    Args:
        folder: the output folder (created on :meth:`open`).
        results: the CSV that lists finished items, relative to ``folder``.
        columns: its columns.
        key: the column of ``results`` that names an item (what :meth:`todo` compares).
        skipped: the CSV of skipped items; its first column names the item.
        skipped_columns: its columns: item, reason, detail.
        retry_skipped: skipped items are tried again on a rerun (they are not done).
        record: what makes the folder's outputs (model digest, input, settings); None = no
            record. Checked by :func:`facectx._jobrecord.check_or_record` on :meth:`open`.
        compare: record keys that must be equal on a rerun (None = all but ``model``).
        record_name: the record's file name.
        clean: folders (relative to ``folder``; ``.`` = itself) created if missing and cleared of
            a killed run's temporary files; a glob pattern (``shard_*``) only clears what exists.
        progress: show the progress bar.
        what: the bar's label.
        count: label of a running count shown on the bar (:meth:`advance` ``count=``).
        unit: what the speed counts per second.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        results: str,
        columns: Sequence[str],
        key: str,
        skipped: str = SKIPPED,
        skipped_columns: Sequence[str] = SKIPPED_COLUMNS,
        retry_skipped: bool = False,
        record: dict[str, Any] | None = None,
        compare: Sequence[str] | None = None,
        record_name: str = JOB,
        clean: Sequence[str] = (".",),
        progress: bool = False,
        what: str = "",
        count: str | None = None,
        unit: str = "img",
    ) -> None:
        self.folder = Path(folder).expanduser().resolve()
        self.results, self.columns, self.key = results, tuple(columns), key
        self.skipped_file, self.skipped_columns = skipped, tuple(skipped_columns)
        self.retry_skipped = retry_skipped
        self.record, self.compare, self.record_name = record, compare, record_name
        self.clean_dirs = tuple(clean)
        self.progress, self.what, self.count_label, self.unit = progress, what, count, unit
        #: items found done by :meth:`todo`; items :meth:`todo` left for a later run (``limit``)
        self.already_done = 0
        self.remaining = 0
        #: this run's skips, per reason
        self.skipped: Counter[str] = Counter()
        self.done_keys: set[str] = set()
        self._out = self._skip = None
        self._bar = None
        self._task = None
        self._t0 = time.perf_counter()

    # ---------------------------------------------------------------- set-up

    def check(self) -> dict[str, Any] | None:
        """Record what makes the folder, or refuse one made otherwise (:class:`OutputFolderError`);
        creates the folder. Returns the stored record."""
        if self.record is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            return None
        return check_or_record(
            self.folder,
            self.record,
            self.compare,
            name=self.record_name,
            results=(self.results, self.skipped_file),
        )

    def tidy(self) -> int:
        """Create the ``clean`` folders and delete a killed run's temporary files in them;
        returns how many files were deleted."""
        from facectx.faces.io import remove_stale_tmp

        n = 0
        for pattern in self.clean_dirs:
            if _is_glob(pattern):
                dirs = [d for d in sorted(self.folder.glob(pattern)) if d.is_dir()]
            else:
                dirs = [self.folder / pattern]
                dirs[0].mkdir(parents=True, exist_ok=True)
            for d in dirs:
                n += remove_stale_tmp(d)
        return n

    def part_path(self, kind: str, rank: int) -> Path:
        """A process's part file: ``kind`` ``results`` (``parts/rank<r>.csv``) or ``skipped``."""
        name = f"rank{rank}.csv" if kind == "results" else f"skipped.rank{rank}.csv"
        return self.folder / PARTS / name

    def iter_rows(self, kind: str) -> Iterator[dict[str, str]]:
        """Rows of the ``results`` or ``skipped`` CSV, then of its per-process parts."""
        from facectx.data.manifest import read_rows

        merged = self.results if kind == "results" else self.skipped_file
        pattern = "rank*.csv" if kind == "results" else "skipped.rank*.csv"
        yield from read_rows(self.folder / merged)
        parts = self.folder / PARTS
        for part in sorted(parts.glob(pattern)) if parts.is_dir() else []:
            yield from read_rows(part)

    def read_done(self) -> set[str]:
        """The keys of finished items (and of skipped ones, unless ``retry_skipped``)."""
        done = {r[self.key] for r in self.iter_rows("results")}
        if not self.retry_skipped:
            first = self.skipped_columns[0]
            done |= {r[first] for r in self.iter_rows("skipped")}
        self.done_keys = done
        return done

    def open(self, rank: int | None = None) -> FolderJob:
        """Check the record, tidy up, read the done set, open the CSVs and the bar. ``rank``: a
        process that shares the folder appends to its own part files (see :meth:`merge`)."""
        self.check()
        self.tidy()
        self.open_csvs(rank)  # first: opening cuts a killed write's half row, never counted done
        self.read_done()
        return self

    def open_csvs(self, rank: int | None = None) -> None:
        """Open the appenders (only): the results and skipped CSVs, or this rank's parts."""
        from facectx.data.manifest import CsvAppender

        if rank is None:
            out, skip = self.folder / self.results, self.folder / self.skipped_file
        else:
            out, skip = self.part_path("results", rank), self.part_path("skipped", rank)
        self._out = CsvAppender(out, self.columns)
        self._skip = CsvAppender(skip, self.skipped_columns)
        self._t0 = time.perf_counter()

    def close(self) -> None:
        """Close the CSVs and stop the bar (everything written is already on disk)."""
        for f in (self._out, self._skip):
            if f is not None:
                f.close()
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> FolderJob:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- the items

    def todo(
        self,
        items: Iterable[T],
        key: Callable[[T], str] | None = None,
        limit: int | None = None,
    ) -> list[T]:
        """The items not done yet, in order, at most ``limit`` of them (None = all); counts the
        done ones in ``already_done`` and those past ``limit`` in ``remaining``, and sizes the
        progress bar."""
        key = key or (lambda item: item)  # type: ignore[assignment, return-value]
        left: list[T] = []
        for item in items:
            if key(item) in self.done_keys:  # type: ignore[misc]
                self.already_done += 1
            else:
                left.append(item)
        if limit is not None and len(left) > max(0, int(limit)):
            self.remaining = len(left) - max(0, int(limit))
            left = left[: max(0, int(limit))]
        self.start(len(left))
        return left

    def start(self, total: int) -> None:
        """Show the progress bar for ``total`` items (:meth:`todo` calls it)."""
        if self._bar is None:
            self._bar = progress_bar(self.progress, self.what, self.count_label, self.unit)
            self._bar.start()
            fields = {"count": 0} if self.count_label else {}
            self._task = self._bar.add_task(self.what, total=total, **fields)
        else:
            self._bar.update(self._task, total=total)

    def advance(self, n: int = 1, count: int | None = None) -> None:
        """Move the bar ``n`` items on; ``count``: the new running count."""
        if self._bar is None:
            return
        fields = {"count": count} if count is not None and self.count_label else {}
        self._bar.update(self._task, advance=n, **fields)

    def done(self, rows: dict[str, Any] | Iterable[dict[str, Any]]) -> None:
        """List a finished item's rows (one write; call after its files exist)."""
        assert self._out is not None, "open() the job first"
        self._out.write_many([rows] if isinstance(rows, dict) else list(rows))

    def skip(self, item: str, reason: str, detail: str = "") -> None:
        """List ``item`` as skipped because of its own problem (``reason``: a short word)."""
        assert self._skip is not None, "open() the job first"
        first, second, third = self.skipped_columns[:3]
        self._skip.write({first: item, second: reason, third: detail})
        self.skipped[reason] += 1

    def reject(self, entries: Iterable[tuple[str, str, str]]) -> None:
        """List input entries that are no items (a GIF, a folder named ``x.jpg``, a symlink loop:
        :func:`facectx.faces.io.scan_inputs`) as skipped, once: ``(item, reason, detail)``. One
        an earlier run listed counts as already done, or, with ``retry_skipped``, as skipped
        again without a second row. Call after :meth:`open`."""
        first = self.skipped_columns[0]
        listed = {r[first] for r in self.iter_rows("skipped")}
        for item, reason, detail in entries:
            if item in self.done_keys:
                self.already_done += 1
            elif item in listed:
                self.skipped[reason] += 1
            else:
                self.skip(item, reason, detail)

    def fail(self, item: str, e: BaseException) -> None:
        """An unexpected error on ``item``: skipped with reason ``error``, or, when it is the
        machine's (full disk, read-only folder, memory), :class:`JobStoppedError` is raised."""
        self.skip(item, "error", item_error(e, item, self.folder))

    def stopped(self, e: BaseException, item: str) -> JobStoppedError:
        """The one-line :class:`JobStoppedError` for a machine error while handling ``item``."""
        return job_stopped(e, item, self.folder)

    @property
    def seconds(self) -> float:
        """Seconds since the CSVs were opened."""
        return time.perf_counter() - self._t0

    # ---------------------------------------------------------------- parts

    def merge(self, order: Callable[[str], Any] | None = None) -> int:
        """Fold the per-process parts into the results and skipped CSVs (atomic replaces; the
        first row per key wins; sorted by ``order(key)`` when given); removes the parts.
        ``skipped.csv`` is only written when something was skipped. Returns the results rows."""
        n = self._write_merged("results", self.key, self.columns, order)
        self._write_merged("skipped", self.skipped_columns[0], self.skipped_columns, order)
        parts = self.folder / PARTS
        if parts.is_dir():
            for p in parts.glob("*.csv"):
                p.unlink(missing_ok=True)
            try:
                parts.rmdir()
            except OSError:
                pass
        return n

    def _write_merged(self, kind: str, key: str, columns: Sequence[str], order) -> int:
        import csv
        import io

        from facectx.faces.io import atomic_write_bytes

        seen: dict[str, dict[str, str]] = {}
        for r in self.iter_rows(kind):
            seen.setdefault(r[key], r)
        rows = list(seen.values())
        if order is not None:
            rows.sort(key=lambda r: order(r[key]))
        target = self.folder / (self.results if kind == "results" else self.skipped_file)
        if not rows and not target.exists() and kind == "skipped":
            return 0  # no skipped.csv unless something was skipped
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        atomic_write_bytes(target, buf.getvalue().encode("utf-8"))
        return len(rows)
