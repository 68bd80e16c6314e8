"""Turn a folder of photos into a prepared face folder: the library behind
``python -m facectx.prepare input=DIR output=DIR``.

Each photo is read, its faces detected, landmarked and aligned into the canonical frame
(:class:`facectx.faces.pipeline.FacePreparer`), and written in the layout documented in
:mod:`facectx.data.manifest`. Photos that give no face get a ``skipped.csv`` row instead; the run
never stops on one bad file.

Worker processes (spawned, so safe with torch) read, align and write each face's files
atomically; the parent alone appends manifest rows, one write per photo, after the files are in
place. The folder's bookkeeping (``meta.json``, the done set from manifest.csv and skipped.csv,
stale temporary files, the progress bar) is a :class:`facectx.folderjob.FolderJob`: a rerun
skips every source already listed, so an interrupted run resumes without losing or duplicating
faces. See docs/preparation.md.
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

from facectx.faces.io import InputScan
from facectx.faces.naming import (
    PERSON_RULES,
    face_id,
    folders_name_persons,
    person_label,
    unique_stems,
)
from facectx.faces.pipeline import FacesFound, PreparerSpec

log = logging.getLogger("facectx.prepare")  # the command's name, as before the move

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
    # faces found per photo, and photos where the detector may have missed some
    faces_found: FacesFound = field(default_factory=FacesFound)

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


def list_sources(
    scan: InputScan,
    splits: dict[str, dict[str, str]],
    only_split: Sequence[str] | None,
) -> list[tuple[str, str, str]]:
    """(source, absolute path, id stem) of every photo of ``scan`` to prepare, done or not, in
    order (stems come from the whole listing, so a split or a resume names faces alike)."""
    stems = unique_stems([rel for rel, _ in scan.images])
    return [
        (rel, str(p), stems[rel])
        for rel, p in scan.images
        if only_split is None or splits.get(p.name, {}).get("split", "") in only_split
    ]


# ---------------------------------------------------------------- workers

_WORKER: dict[str, Any] = {}


def _init_worker(
    spec: PreparerSpec,
    output: str,
    splits: dict,
    png_compression: int,
    person: tuple[str, bool],
    in_worker: bool,
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
    _WORKER.update(
        preparer=spec.build(),
        output=Path(output),
        splits=splits,
        png=png_compression,
        person=person,
    )


def _process_one(source: str, path: str, stem: str) -> dict[str, Any]:
    """Read, align and write the faces of one photo; returns its manifest or skipped rows."""
    from facectx.faces.io import ImageReadError, read_image, write_npy, write_png

    out: Path = _WORKER["output"]
    try:
        result = _WORKER["preparer"].run(read_image(path))
        if not result.faces:
            skipped = {"source": source, "reason": result.reason, "detail": result.detail}
            return {"skipped": skipped, **_found(source, result)}
        name = Path(source).name
        split_row = _WORKER["splits"].get(name, {})
        # the splits CSV's label, else the person rule's (facectx.faces.naming.person_label)
        rule, folders = _WORKER["person"]
        person = split_row.get("person") or person_label(source, rule, stem, folders)
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
        return {"rows": rows, "dropped": result.dropped, **_found(source, result)}
    except ImageReadError as e:
        return {"skipped": {"source": source, "reason": "unreadable", "detail": e.reason}}
    except Exception as e:  # one bad photo must not end a long run
        from facectx.folderjob import item_error

        # ... but the machine's problem (a full disk, a photo it may not read) is not the
        # photo's: JobStoppedError, never a skip
        detail = item_error(e, source, _WORKER["output"])
        return {"skipped": {"source": source, "reason": "error", "detail": detail}}


def _found(source: str, result) -> dict[str, tuple]:
    """A photo's faces found and doubts (``FacesFound.add`` arguments), for the summary."""
    return {"found": (source, result.found, result.missed, result.retry)}


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


def _meta(spec: PreparerSpec, person: str = "auto") -> dict[str, Any]:
    from facectx._version import __version__

    return {
        "frame": {"size": spec.size, "eye_distance": spec.eye_distance, "eye_y": spec.eye_y},
        "detector": spec.describe("detector"),
        "landmarker": spec.describe("landmarker"),
        "faces": spec.faces,
        "min_face": spec.min_face,
        "person": person,
        "version": __version__,
    }


def folder_job(output: Path, spec: PreparerSpec, progress: bool = False, person: str = "auto"):
    """The prepared folder's :class:`~facectx.folderjob.FolderJob`: ``meta.json`` refuses to add
    faces made with a different frame, models, face policy or person rule; manifest.csv and
    skipped.csv list the done sources."""
    from facectx.data.manifest import MANIFEST, MANIFEST_COLUMNS, META, SKIPPED, SKIPPED_COLUMNS
    from facectx.folderjob import FolderJob

    return FolderJob(
        output,
        results=MANIFEST,
        columns=MANIFEST_COLUMNS,
        key="source",
        skipped=SKIPPED,
        skipped_columns=SKIPPED_COLUMNS,
        record=_meta(spec, person),
        compare=("frame", "detector", "landmarker", "faces", "min_face", "person"),
        record_name=META,
        clean=SUBDIRS,
        progress=progress,
        what="prepare",
        count="faces",
    )


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
    person: str = "auto",
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
        person: how a photo without a ``person`` in ``splits`` is labelled: ``auto`` |
            ``name`` | ``folder`` | ``file`` (:func:`facectx.faces.naming.person_label`).
    """
    from facectx._conf import ConfigError
    from facectx.faces.io import scan_inputs

    spec = spec or PreparerSpec()
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():  # before anything is created
        what = "is a file, not a folder" if input_dir.is_file() else "does not exist"
        raise ConfigError(
            f"input={input_dir}: {what}; pass the folder of photos to prepare "
            f"(searched recursively). Nothing was written to {output_dir}."
        )
    if person not in PERSON_RULES:
        raise ConfigError(f"person={person}: expected one of {'|'.join(PERSON_RULES)}")
    if isinstance(only_split, str):
        only_split = [only_split]
    if only_split is not None and splits is None:
        raise ValueError("only_split needs splits=<csv> to know each image's split")
    if input_dir.resolve() == output_dir.resolve():
        raise ValueError(f"output must differ from input ({input_dir})")
    split_rows = read_splits(splits)

    # every entry of the input; the output folder, when it lies inside, is never read back in
    scan = scan_inputs(input_dir, exclude=output_dir)
    sources = list_sources(scan, split_rows, only_split)
    other_splits = len(scan.images) - len(sources)
    log.info(
        "prepare: %s%s",
        scan.summary(rejected="in skipped.csv"),
        f"; {other_splits} photos not in split {only_split}" if other_splits else "",
    )
    job = folder_job(output_dir, spec, progress, person)
    with job:  # meta.json (creates the folder), subfolders, done set, manifest and skipped CSVs
        job.reject((e.source, e.reason, e.detail) for e in scan.rejected)
        todo = job.todo(sources, key=lambda t: t[0], limit=limit)
        summary = Summary(
            skipped=Counter(job.skipped), already_done=job.already_done, remaining=job.remaining
        )
        log.info(
            "prepare: %d photos to do, %d already done, input %s",
            len(todo),
            job.already_done,
            input_dir,
        )
        rule = (person, folders_name_persons([s for s, _, _ in sources]))
        initargs = (spec, str(output_dir), split_rows, png_compression, rule, True)
        chunks = list(_chunks(todo, max(1, chunksize)))
        parallel = workers > 1 and len(chunks) > 1
        if parallel:
            spec.build()  # fail here (missing weights, bad names), not as a broken worker pool
        start = time.perf_counter()
        results = (
            _run_parallel(chunks, workers, initargs) if parallel else _run_inline(chunks, initargs)
        )
        try:
            _consume(results, summary, job, start)
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


def _consume(results, summary: Summary, job, start: float) -> None:
    """Append each photo's rows as its chunk arrives (the manifest's only writer)."""
    for chunk in results:
        if summary.photos == 0:
            summary.startup_seconds = time.perf_counter() - start
            summary.startup_photos = len(chunk)
        for res in chunk:
            summary.photos += 1
            summary.cpu_seconds += res["cpu"]
            if "found" in res:
                summary.faces_found.add(*res["found"])
            if "rows" in res:
                job.done(res["rows"])
                summary.photos_with_faces += 1
                summary.faces += len(res["rows"])
                summary.dropped_faces += res.get("dropped", 0)
                summary.dropped_photos += res.get("dropped", 0) > 0
            else:
                skip = res["skipped"]
                job.skip(skip["source"], skip["reason"], skip["detail"])
                summary.skipped[skip["reason"]] += 1
        job.advance(len(chunk), count=summary.faces)
