"""Turn a folder of photos into a prepared face folder: ``python -m facectx.prepare input=DIR output=DIR``.

Each photo is read, its faces detected, landmarked and aligned into the canonical frame
(:class:`facectx.faces.pipeline.FacePreparer`), and written in the layout documented in
:mod:`facectx.data.manifest`. Photos that give no face get a ``skipped.csv`` row instead; the run
never stops on one bad file.

Worker processes (spawned, so safe with torch) read, align and write each face's files
atomically; the parent alone appends manifest rows, one ``write_many`` per photo, after the files
are in place. A rerun skips every source already in manifest.csv or skipped.csv, so an
interrupted run resumes without losing or duplicating faces. See docs/preparation.md.
"""

from __future__ import annotations

import csv
import logging
import multiprocessing as mp
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facectx.faces.naming import face_id, person_from_stem, unique_stems
from facectx.faces.pipeline import PreparerSpec

log = logging.getLogger(__name__)

SUBDIRS = ("images", "masks", "valid", "landmarks")


class PrepareInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`prepare_folder`; ``summary`` says what was done (all of it kept)."""

    def __init__(self, summary: Summary):
        super().__init__("prepare interrupted; rerun the same command to resume")
        self.summary = summary


@dataclass
class Summary:
    """What one prepare run did (this run only; ``already_done`` counts earlier runs)."""

    photos: int = 0
    photos_with_faces: int = 0
    faces: int = 0
    # faces large enough to keep but left out by faces=largest, and the photos that had them
    dropped_faces: int = 0
    dropped_photos: int = 0
    skipped: Counter = field(default_factory=Counter)
    already_done: int = 0
    remaining: int = 0
    seconds: float = 0.0
    # time until the first chunk came back (worker start-up, model loading) and its photos
    startup_seconds: float = 0.0
    startup_photos: int = 0
    # CPU seconds spent on the photos themselves (summed over workers, start-up excluded)
    cpu_seconds: float = 0.0

    @property
    def photos_per_second(self) -> float:
        """Throughput over the whole run, start-up included."""
        return self.photos / self.seconds if self.seconds > 0 else 0.0

    @property
    def steady_photos_per_second(self) -> float:
        """Throughput after the first chunk, i.e. without process start and model loading."""
        t = self.seconds - self.startup_seconds
        return (self.photos - self.startup_photos) / t if t > 0 else 0.0

    @property
    def photos_per_cpu_second(self) -> float:
        """Photos one otherwise idle core can do per second (what a shared machine hides)."""
        return self.photos / self.cpu_seconds if self.cpu_seconds > 0 else 0.0


# ---------------------------------------------------------------- inputs


def read_splits(path: str | os.PathLike | None) -> dict[str, dict[str, str]]:
    """splits.csv (``image,split[,person]``) keyed by image file name."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"splits file {path} not found")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"image", "split"} <= set(reader.fieldnames):
            raise ValueError(
                f"{path} must have columns image,split[,person]; got {reader.fieldnames}"
            )
        return {Path(r["image"]).name: r for r in reader}


def plan_sources(
    input_dir: Path,
    output_dir: Path,
    done: set[str],
    splits: dict[str, dict[str, str]],
    only_split: Sequence[str] | None,
    limit: int | None,
) -> tuple[list[tuple[str, str, str]], int, int]:
    """(source, absolute path, id stem) still to do, plus counts of already-done and remaining."""
    from facectx.faces.io import list_images

    # Never re-ingest our own outputs when the output folder lies inside the input folder.
    try:
        inside = output_dir.resolve().relative_to(input_dir.resolve()).as_posix() + "/"
    except ValueError:
        inside = None
    listed = [(p.relative_to(input_dir).as_posix(), p) for p in list_images(input_dir)]
    listed = [(rel, p) for rel, p in listed if inside is None or not rel.startswith(inside)]
    stems = unique_stems([rel for rel, _ in listed])
    todo, n_done = [], 0
    for rel, p in listed:
        if only_split is not None and splits.get(p.name, {}).get("split", "") not in only_split:
            continue
        if rel in done:
            n_done += 1
            continue
        todo.append((rel, str(p), stems[rel]))
    remaining = 0
    if limit is not None and len(todo) > limit:
        remaining = len(todo) - limit
        todo = todo[:limit]
    return todo, n_done, remaining


# ---------------------------------------------------------------- workers

_WORKER: dict[str, Any] = {}


def _init_worker(
    spec: PreparerSpec, output: str, splits: dict, png_compression: int, in_worker: bool
) -> None:
    """Per-process setup: build the models once; in a pool worker, one thread and no Ctrl-C."""
    if in_worker:
        # The parent owns Ctrl-C and shuts the pool down; workers must not die mid-write.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        from facectx._jobrecord import die_with_parent

        die_with_parent()  # but a SIGKILLed parent leaves no orphans
        import sys

        import cv2

        cv2.setNumThreads(1)
        if "torch" in sys.modules or not (spec.detector == "hog" and spec.landmarker == "dlib"):
            import torch

            torch.set_num_threads(1)
    _WORKER.update(preparer=spec.build(), output=Path(output), splits=splits, png=png_compression)


def _process_one(source: str, path: str, stem: str) -> dict[str, Any]:
    """Read, align and write the faces of one photo; returns its manifest or skipped rows."""
    from facectx.faces.io import ImageReadError, read_image, write_npy, write_png

    out: Path = _WORKER["output"]
    try:
        image = read_image(path)
    except ImageReadError as e:
        return {"skipped": {"source": source, "reason": "unreadable", "detail": e.reason}}
    try:
        result = _WORKER["preparer"].run(image)
        if not result.faces:
            return {"skipped": {"source": source, "reason": result.reason, "detail": result.detail}}
        name = Path(source).name
        split_row = _WORKER["splits"].get(name, {})
        person = person_from_stem(Path(source).stem) or split_row.get("person", "")
        rows = []
        for i, face in enumerate(result.faces):
            fid = face_id(source, i, stem)
            rel = {
                "image": f"images/{fid}.png",
                "mask": f"masks/{fid}.png",
                "valid": f"valid/{fid}.png",
                "landmarks": f"landmarks/{fid}.npy",
            }
            write_png(out / rel["image"], face.image, _WORKER["png"])
            write_png(out / rel["mask"], face.mask * 255, _WORKER["png"])
            write_png(out / rel["valid"], face.valid * 255, _WORKER["png"])
            write_npy(out / rel["landmarks"], face.landmarks.astype("float32"))
            rows.append(
                {
                    "id": fid,
                    **rel,
                    "source": source,
                    "face_index": i,
                    # The photo's label names its main subject, not bystanders.
                    "person": person if i == 0 else "",
                    "split": split_row.get("split", ""),
                    "score": f"{face.score:.4f}",
                }
            )
        return {"rows": rows, "dropped": result.dropped}
    except Exception as e:  # one bad photo must not end a long run
        from facectx._jobrecord import is_environmental, job_stopped

        if is_environmental(e):  # the disk's problem, not the photo's: stop, never skip
            raise job_stopped(e, source, _WORKER["output"]) from e
        log.debug("error on %s", source, exc_info=True)
        return {
            "skipped": {"source": source, "reason": "error", "detail": f"{type(e).__name__}: {e}"}
        }


def _process_chunk(tasks: Sequence[tuple[str, str, str]]) -> list[dict[str, Any]]:
    out = []
    for source, path, stem in tasks:
        t = time.process_time()
        res = _process_one(source, path, stem)
        res["cpu"] = time.process_time() - t  # CPU time, unaffected by other jobs on the machine
        out.append(res)
    return out


def _chunks(items: Sequence, n: int) -> Iterator[Sequence]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _run_parallel(
    chunks: Iterable[Sequence], workers: int, initargs: tuple
) -> Iterator[list[dict]]:
    """Chunk results in input order, with at most ``4 * workers`` chunks in flight."""
    ctx = mp.get_context("spawn")
    ex = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=initargs)
    pending: deque = deque()
    it = iter(chunks)
    try:
        for c in it:
            pending.append(ex.submit(_process_chunk, c))
            if len(pending) >= 4 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _run_inline(chunks: Iterable[Sequence], initargs: tuple) -> Iterator[list[dict]]:
    _init_worker(*initargs[:-1], in_worker=False)
    try:
        for c in chunks:
            yield _process_chunk(c)
    finally:
        _WORKER.clear()


# ---------------------------------------------------------------- folder


def _meta(spec: PreparerSpec) -> dict[str, Any]:
    from facectx import __version__

    return {
        "frame": {"size": spec.size, "eye_distance": spec.eye_distance, "eye_y": spec.eye_y},
        "detector": spec.describe("detector"),
        "landmarker": spec.describe("landmarker"),
        "faces": spec.faces,
        "min_face": spec.min_face,
        "version": __version__,
    }


def _check_or_write_meta(output: Path, meta: dict[str, Any]) -> None:
    """Write meta.json, or refuse to add faces made with a different frame, models or face
    policy (:func:`facectx._jobrecord.check_or_record`)."""
    from facectx._jobrecord import check_or_record
    from facectx.data.manifest import MANIFEST, META, SKIPPED

    compare = ("frame", "detector", "landmarker", "faces", "min_face")
    check_or_record(output, meta, compare, name=META, results=(MANIFEST, SKIPPED))


def prepare_folder(
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    spec: PreparerSpec | None = None,
    splits: str | os.PathLike | None = None,
    only_split: str | Sequence[str] | None = None,
    workers: int = 2,
    limit: int | None = None,
    chunksize: int = 8,
    png_compression: int = 3,
    progress: bool = True,
) -> Summary:
    """Prepare every image under ``input_dir`` into ``output_dir``; resumes what is already there.

    Args:
        input_dir: folder of photos, searched recursively.
        output_dir: prepared folder to create or extend.
        spec: detector, landmarker, frame and face policy; None = defaults.
        splits: CSV with ``image,split[,person]`` matched on file name; None = empty split column.
        only_split: process only images whose split is this (or one of these); needs ``splits``.
        workers: worker processes; 0 or 1 runs in this process.
        limit: process at most this many not-yet-done photos (None = all).
        chunksize: photos per task sent to a worker.
        png_compression: zlib level 0-9 for the PNGs.
        progress: show a rich progress bar.
    """
    from facectx._conf import ConfigError
    from facectx.data.manifest import (
        MANIFEST,
        MANIFEST_COLUMNS,
        SKIPPED,
        SKIPPED_COLUMNS,
        CsvAppender,
        iter_sources_done,
    )
    from facectx.faces.io import remove_stale_tmp

    spec = spec or PreparerSpec()
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():  # before anything is created
        what = "is a file, not a folder" if input_dir.is_file() else "does not exist"
        raise ConfigError(
            f"input={input_dir}: {what}; pass the folder of photos to prepare "
            f"(searched recursively). Nothing was written to {output_dir}."
        )
    if isinstance(only_split, str):
        only_split = [only_split]
    if only_split is not None and splits is None:
        raise ValueError("only_split needs splits=<csv> to know each image's split")
    if input_dir.resolve() == output_dir.resolve():
        raise ValueError(f"output must differ from input ({input_dir})")
    split_rows = read_splits(splits)

    _check_or_write_meta(output_dir, _meta(spec))  # creates the folder
    for d in SUBDIRS:
        (output_dir / d).mkdir(exist_ok=True)
        remove_stale_tmp(output_dir / d)

    done = set(iter_sources_done(output_dir))
    todo, n_done, remaining = plan_sources(
        input_dir, output_dir, done, split_rows, only_split, limit
    )
    summary = Summary(already_done=n_done, remaining=remaining)
    log.info("prepare: %d photos to do, %d already done, input %s", len(todo), n_done, input_dir)

    initargs = (spec, str(output_dir), split_rows, png_compression, True)
    chunks = list(_chunks(todo, max(1, chunksize)))
    parallel = workers > 1 and len(chunks) > 1
    if parallel:
        spec.build()  # fail here (missing weights, bad names), not as a broken worker pool
    start = time.perf_counter()
    bar = _progress_bar(progress)
    with (
        CsvAppender(output_dir / MANIFEST, MANIFEST_COLUMNS) as manifest,
        CsvAppender(output_dir / SKIPPED, SKIPPED_COLUMNS) as skipped,
        bar,
    ):
        task = bar.add_task("prepare", total=len(todo), faces=0)
        results = (
            _run_parallel(chunks, workers, initargs) if parallel else _run_inline(chunks, initargs)
        )
        try:
            _consume(results, summary, manifest, skipped, bar, task, start)
        except KeyboardInterrupt as e:
            summary.seconds = time.perf_counter() - start
            raise PrepareInterrupted(summary) from e
        except BrokenProcessPool as e:
            raise RuntimeError(
                f"a prepare worker process died (killed, out of memory, or a crash in a native "
                f"library) after {summary.photos} photos; everything in the manifest is complete. "
                "Rerun the same command to resume; use workers=1 to see the failing photo."
            ) from e
        finally:
            results.close()  # stops the worker pool now, not at garbage collection
    summary.seconds = time.perf_counter() - start
    if summary.dropped_faces:
        log.info(
            "faces=largest kept one face per photo and left out %d more face(s) in %d photo(s); "
            "to keep every face, prepare into a new output folder with faces=all",
            summary.dropped_faces,
            summary.dropped_photos,
        )
    return summary


def _consume(results, summary: Summary, manifest, skipped, bar, task, start: float) -> None:
    """Append each photo's rows as its chunk arrives (the manifest's only writer)."""
    for chunk in results:
        if summary.photos == 0:
            summary.startup_seconds = time.perf_counter() - start
            summary.startup_photos = len(chunk)
        for res in chunk:
            summary.photos += 1
            summary.cpu_seconds += res["cpu"]
            if "rows" in res:
                manifest.write_many(res["rows"])
                summary.photos_with_faces += 1
                summary.faces += len(res["rows"])
                summary.dropped_faces += res.get("dropped", 0)
                summary.dropped_photos += res.get("dropped", 0) > 0
            else:
                skipped.write(res["skipped"])
                summary.skipped[res["skipped"]["reason"]] += 1
        bar.update(task, advance=len(chunk), faces=summary.faces)


def _progress_bar(enabled: bool):
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
            return Text("-- img/s" if speed is None else f"{speed:.1f} img/s")

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[faces]} faces"),
        SpeedColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def print_summary(summary: Summary, output: Path) -> None:
    """Rich table of what the run did."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"prepare -> {output}", show_header=False)
    t.add_row("photos processed", str(summary.photos))
    t.add_row("photos with faces", str(summary.photos_with_faces))
    t.add_row("faces written", str(summary.faces))
    if summary.dropped_faces:
        t.add_row("more faces left out (faces=largest)", str(summary.dropped_faces))
    for reason, n in sorted(summary.skipped.items()):
        t.add_row(f"skipped: {reason}", str(n))
    t.add_row("already done (resumed)", str(summary.already_done))
    if summary.remaining:
        t.add_row("left for a later run (limit)", str(summary.remaining))
    t.add_row("time", f"{summary.seconds:.1f} s")
    t.add_row("throughput", f"{summary.photos_per_second:.1f} img/s")
    t.add_row("  after start-up", f"{summary.steady_photos_per_second:.1f} img/s")
    t.add_row("  per idle core (CPU time)", f"{summary.photos_per_cpu_second:.1f} img/s")
    Console().print(t)


# ---------------------------------------------------------------- CLI


def run(cfg) -> Summary:
    """Run a composed ``prepare`` config (see conf/prepare.yaml)."""
    from omegaconf import OmegaConf

    c = OmegaConf.to_container(cfg, resolve=True)
    spec = PreparerSpec(
        size=int(c["size"]),
        eye_distance=float(c["eye_distance"]),
        eye_y=float(c["eye_y"]),
        detector=c["detector"],
        landmarker=c["landmarks"],
        upsample=int(c["upsample"]),
        faces=str(c["faces"]),
        min_face=float(c["min_face"]),
    )
    output = Path(c["output"]).expanduser()
    try:
        summary = prepare_folder(
            Path(c["input"]).expanduser(),
            output,
            spec=spec,
            splits=c.get("splits"),
            only_split=c.get("only_split"),
            workers=int(c["workers"]),
            limit=c.get("limit"),
            chunksize=int(c["chunksize"]),
            png_compression=int(c["png_compression"]),
            progress=bool(c["progress"]),
        )
    except PrepareInterrupted as e:
        print_summary(e.summary, output)
        log.warning("interrupted; everything listed in the manifest is complete. %s", e)
        raise SystemExit(130) from None
    print_summary(summary, output)
    log.info(
        "prepare done: %d photos, %d faces, skipped %s, %.1f img/s",
        summary.photos,
        summary.faces,
        dict(summary.skipped),
        summary.photos_per_second,
    )
    return summary


def main() -> None:
    """Console entry point (``python -m facectx.prepare`` / ``facectx-prepare``)."""
    from facectx._conf import hydra_command

    hydra_command("prepare", run, log)


if __name__ == "__main__":
    # Run from the importable module, not __main__, so spawned workers unpickle the same names.
    from facectx.prepare import main as _main

    _main()
