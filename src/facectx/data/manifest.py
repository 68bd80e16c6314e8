"""The on-disk format of a prepared face folder, shared by ``prepare`` and the datasets.

Layout of a prepared folder ``ROOT``::

    ROOT/meta.json            frame (size, eye_distance, eye_y), detector, landmarker, version
    ROOT/manifest.csv         one row per prepared face (columns: MANIFEST_COLUMNS)
    ROOT/skipped.csv          one row per input that produced no face (SKIPPED_COLUMNS)
    ROOT/images/<id>.png      aligned RGB image, size x size, uint8
    ROOT/masks/<id>.png       face mask (convex hull of the aligned landmarks), 0 or 255
    ROOT/valid/<id>.png       255 where the aligned pixel lies inside the source photo, else 0
    ROOT/landmarks/<id>.npy   (68, 2) float32 landmarks in aligned (x, y) pixels

Paths in the manifest are relative to ROOT so a prepared folder can be moved. Rows are
appended and flushed one at a time, after the face's files are in place, so an interrupted run
leaves a manifest that only names complete faces; readers drop duplicate ids (last row wins).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

MANIFEST = "manifest.csv"
SKIPPED = "skipped.csv"
META = "meta.json"

MANIFEST_COLUMNS = (
    "id",  # unique face id, also the file stem under images/ masks/ valid/ landmarks/
    "image",  # relative path of the aligned image
    "mask",  # relative path of the face mask
    "valid",  # relative path of the valid-pixel mask
    "landmarks",  # relative path of the .npy landmarks
    "source",  # source photo path relative to the prepare input folder
    "face_index",  # index of the face within its source photo (0 = largest)
    "person",  # identity label of face 0: splits.csv's, else facectx.faces.naming.person_label
    "split",  # split from splits.csv when given, else empty
    "score",  # detector confidence
)
SKIPPED_COLUMNS = ("source", "reason", "detail")


class ManifestError(RuntimeError):
    """A prepared folder is missing or malformed."""


def read_rows(path: str | os.PathLike, key: str | None = None) -> list[dict[str, str]]:
    """Read a CSV into dicts; with ``key``, keep only the last row for each key value."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r and any(r.values())]
    if key is None:
        return rows
    by_key: dict[str, dict[str, str]] = {}
    for r in rows:
        by_key[r[key]] = r
    return list(by_key.values())


def read_manifest(
    root: str | os.PathLike, split: str | Iterable[str] | None = None
) -> list[dict[str, str]]:
    """Rows of ``ROOT/manifest.csv``, de-duplicated by id, optionally filtered by split(s)."""
    root = Path(root)
    path = root / MANIFEST
    if not path.exists():
        raise ManifestError(_not_prepared(root))
    rows = read_rows(path, key="id")
    if split is not None:
        wanted = {split} if isinstance(split, str) else set(split)
        rows = [r for r in rows if r.get("split", "") in wanted]
    return rows


def _not_prepared(root: Path) -> str:
    """Why ``root`` cannot be read as a prepared folder, and the command that makes one (into a
    separate folder when ``root`` holds the raw photos themselves)."""
    from facectx.faces.io import IMAGE_EXTENSIONS

    photos = root.is_dir() and any(
        p.suffix.lower() in IMAGE_EXTENSIONS for p in root.rglob("*") if p.is_file()
    )
    if photos:
        out = root.with_name(f"{root.name}_prepared")
        return (
            f"{root} holds photos, not a prepared face folder (no {MANIFEST}). Prepare them into "
            f"a separate folder: `python -m facectx.prepare input={root} output={out}`, "
            f"then use {out} (e.g. data.root={out})."
        )
    return (
        f"{root / MANIFEST} not found: {root} is not a prepared face folder. "
        f"Run `python -m facectx.prepare input=<photos> output={root}` first."
    )


class CsvAppender:
    """Append rows to a CSV, writing the header once, flushing and fsyncing every row."""

    def __init__(self, path: str | os.PathLike, columns: Iterable[str]):
        self.path = Path(path)
        self.columns = tuple(columns)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        if not new:
            self._repair_tail()
        self._f = self.path.open("a", newline="", encoding="utf-8")
        self._w = csv.DictWriter(self._f, fieldnames=self.columns, extrasaction="ignore")
        if new:
            self._w.writeheader()
            self._sync()

    def _repair_tail(self) -> None:
        # A kill in the middle of a write can leave a partial last line: cut it off.
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with self.path.open("r+b") as f:
                f.truncate(cut)

    def _sync(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())

    def write(self, row: dict) -> None:
        self.write_many([row])

    def write_many(self, rows: Iterable[dict]) -> None:
        """Write several rows with one write call (all faces of one photo land together)."""
        import io

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.columns, extrasaction="ignore")
        for row in rows:
            w.writerow({k: row.get(k, "") for k in self.columns})
        self._f.write(buf.getvalue())
        self._sync()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> CsvAppender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def person_key(row: dict[str, str]) -> str:
    """A manifest row's person; a row without one is a person of its own (never equal to a
    real label), so splits, pairs and identity galleries never join two unlabelled faces."""
    return row.get("person") or f"\0id:{row['id']}"


def iter_sources_done(root: str | os.PathLike) -> Iterator[str]:
    """Source paths already handled (prepared or skipped) in a prepared folder, for resuming."""
    root = Path(root)
    for r in read_rows(root / MANIFEST):
        yield r["source"]
    for r in read_rows(root / SKIPPED):
        yield r["source"]


def link_prepared(
    src: str | os.PathLike, dst: str | os.PathLike, n: int, faces: int | None = None
) -> Path:
    """A prepared folder of ``n`` rows that reuses ``src``'s files (folders symlinked, not copied).

    Rows cycle through the first ``faces`` faces of ``src`` (all if None) under ids
    ``<id>~<k>``, so small real datasets can be made as long as a test or benchmark needs.
    """
    src, dst = Path(src), Path(dst)
    base = read_rows(src / MANIFEST)
    if faces is not None:
        base = base[:faces]
    if not base:
        raise ManifestError(f"{src / MANIFEST} has no rows to link")
    dst.mkdir(parents=True)
    for name in ("images", "masks", "valid", "landmarks"):
        (dst / name).symlink_to(src / name, target_is_directory=True)
    (dst / META).write_text((src / META).read_text())
    rows = [
        {**base[i % len(base)], "id": f"{base[i % len(base)]['id']}~{i // len(base)}"}
        for i in range(n)
    ]
    with (dst / MANIFEST).open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return dst
