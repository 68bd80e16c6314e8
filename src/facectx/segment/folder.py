"""Replace the background of a folder of portraits (paper supplement §4), resumably.

The library behind ``python -m facectx.background``. For each portrait: foreground (person)
alpha from a :class:`facectx.segment.Segmenter` (default :class:`~facectx.segment.GrabCutSegmenter`,
offline), the user's background image scaled to cover the portrait and centre-cropped, the
portrait composited over it under the alpha, then Laplacian-pyramid blending (Burt & Adelson,
1983) of that composite and the background under the same alpha (a seam smooth at every scale),
and finally the face-hull pixels pasted back, so they are exactly the portrait's
(:func:`facectx.segment.replace.replace_background`).

The face hull must be known exactly: it is the set of pixels the generator kept. We carry it
from ``python -m facectx.hallucinate`` (which writes ``masks/<id>.png`` next to each portrait
and names it in ``outputs.csv``) rather than re-detecting a face on the 128 px portrait, which
may fail or give a slightly different hull. ``input`` may also be a prepared folder
(``manifest.csv`` with ``image`` and ``mask`` columns): then the real aligned faces get the new
background.

Output folder::

    OUT/<id>_bg<k>.png          portrait <id> on its k-th background (k < per_face)
    OUT/alpha/<id>.png          the foreground alpha (0-255), once per portrait
    OUT/previews/<id>_bg<k>.png portrait | alpha | background | result (preview=true)
    OUT/backgrounds.csv         one row per output (BACKGROUND_COLUMNS)
    OUT/skipped.csv             portraits that could not be processed (source, reason, detail)

Which background a portrait gets is a hash of (seed, id, k): the same on every rerun, in any
order. The folder's bookkeeping is :class:`facectx.folderjob.FolderJob`: rows of one portrait
are appended together after its files exist; a rerun skips done portraits. ``OUT/job.json``
records the input folder (and the model that made its portraits), the backgrounds and the
settings; a rerun with other ones is refused.
"""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facectx.segment.base import Segmenter
from facectx.segment.grabcut import GrabCutSegmenter
from facectx.segment.replace import fit_background, replace_background

log = logging.getLogger("facectx.background")

RESULTS = "backgrounds.csv"
SKIPPED = "skipped.csv"
BACKGROUND_COLUMNS = (
    "id",  # output id: <input id>_bg<k>
    "output",  # path relative to the output folder
    "input_id",  # the portrait's id in the input folder
    "background",  # background image, relative to the backgrounds folder
    "alpha",  # alpha path relative to the output folder
    "source",  # the portrait's source photo (from the input's csv)
    "person",  # identity label carried over from the input
)
SKIPPED_COLUMNS = ("source", "reason", "detail")


@dataclass
class Portrait:
    """One input portrait: id, image path, face-mask path and carried labels."""

    id: str
    image: Path
    mask: Path
    source: str = ""
    person: str = ""


def read_portraits(input: str | Path) -> list[Portrait]:
    """Portraits of a ``hallucinate`` output folder (outputs.csv) or a prepared folder."""
    from facectx.data.manifest import MANIFEST, read_rows

    root = Path(input).expanduser().resolve()
    if (root / "outputs.csv").is_file():
        rows, image_col = read_rows(root / "outputs.csv", key="id"), "output"
    elif (root / MANIFEST).is_file():
        rows, image_col = read_rows(root / MANIFEST, key="id"), "image"
    else:
        raise FileNotFoundError(
            f"{root} has neither outputs.csv (a `python -m facectx.hallucinate` output) nor "
            f"{MANIFEST} (a prepared folder). Background replacement needs each portrait's face "
            "mask: run `python -m facectx.hallucinate ckpt=... input=<photos> output=<dir>` "
            "first and pass that folder."
        )
    missing = [r.get("id", "?") for r in rows if not r.get("mask")]
    if missing:
        raise ValueError(
            f"{root}: rows without a face mask ({', '.join(missing[:3])}...); rerun "
            "`python -m facectx.hallucinate` into a new folder (it writes masks/)."
        )
    return [
        Portrait(
            r["id"],
            root / r[image_col],
            root / r["mask"],
            r.get("source", ""),
            r.get("person", ""),
        )
        for r in rows
    ]


def pick_backgrounds(key: str, n_backgrounds: int, per_face: int, seed: int) -> list[int]:
    """Indices of the backgrounds for one portrait: a hash of (seed, key, k), no global RNG.

    Distinct for the ``per_face`` outputs of one portrait whenever there are enough backgrounds.
    """
    picks: list[int] = []
    for k in range(per_face):
        j = zlib.crc32(f"{seed}:{key}:{k}".encode()) % n_backgrounds
        while j in picks and len(picks) < n_backgrounds:
            j = (j + 1) % n_backgrounds
        picks.append(j)
    return picks


class BackgroundImageError(RuntimeError):
    """A background image cannot be read: a setup problem, so the run stops (resumable)."""


def _record(
    input: str | Path,
    backgrounds: str | Path,
    segmenter: Segmenter,
    per_face: int,
    levels: int,
    seed: int,
) -> dict:
    """``job.json``: the input folder (and the model that made its portraits, from its own
    job.json), the backgrounds and every setting that changes the images; a rerun that differs
    is refused instead of keeping composites of other portraits."""
    from facectx._jobrecord import JOB, describe

    root = Path(input).expanduser().resolve()
    made_by = None
    if (root / JOB).is_file():
        made_by = json.loads((root / JOB).read_text(encoding="utf-8")).get("weights")
    return {
        "job": "background",
        "input": str(root),
        **({"input_weights": made_by} if made_by else {}),  # unknown for a prepared folder
        "backgrounds": str(Path(backgrounds).expanduser().resolve()),
        "segmenter": describe(segmenter),
        "per_face": int(per_face),
        "levels": int(levels),
        "seed": int(seed),
    }


@dataclass
class BackgroundSummary:
    portraits: int = 0
    outputs: int = 0
    skipped: int = 0
    already_done: int = 0
    seconds: float = 0.0


def replace_folder(
    input: str | Path,
    backgrounds: str | Path,
    output: str | Path,
    segmenter: Segmenter | None = None,
    per_face: int = 1,
    levels: int = 3,
    seed: int = 0,
    preview: bool = True,
    limit: int | None = None,
    progress: bool = True,
) -> BackgroundSummary:
    """Replace the backgrounds of every portrait in ``input`` (see the module docstring).

    Args:
        input: ``hallucinate`` output folder (outputs.csv + masks/) or a prepared folder.
        backgrounds: folder of background images (searched recursively) or one image.
        output: output folder; resumed if it exists.
        segmenter: person segmenter; None = :class:`GrabCutSegmenter` defaults.
        per_face: outputs per portrait, each on a different background when there are enough.
        levels: Laplacian pyramid levels of the blend.
        seed: changes which backgrounds each portrait gets.
        preview: also write previews/ (portrait | alpha | background | result).
        limit: process at most this many not-yet-done portraits (None = all).
        progress: show a progress bar.
    """
    from facectx.faces.io import ImageReadError, read_image, scan_inputs
    from facectx.folderjob import FolderJob

    if per_face < 1:
        raise ValueError(f"per_face must be >= 1, got {per_face}")
    segmenter = segmenter or GrabCutSegmenter()
    portraits = read_portraits(input)
    scan = scan_inputs(backgrounds)
    bg_list = scan.images
    if not bg_list:
        raise FileNotFoundError(
            f"no background images (jpg/png/webp/bmp) under {backgrounds}: {scan.summary()}"
        )
    # backgrounds are no items (skipped.csv lists portraits): what is left out is said here
    (log.warning if scan.rejected else log.info)("backgrounds: %s", scan.summary("left out"))
    cache: dict[tuple[int, tuple[int, int]], np.ndarray] = {}

    def background(j: int, shape: tuple[int, int]) -> np.ndarray:
        if (j, shape) not in cache:
            try:
                cache[(j, shape)] = fit_background(read_image(bg_list[j][1]), shape)
            except ImageReadError as e:
                raise BackgroundImageError(
                    f"{e}. Remove it from {backgrounds} and rerun: finished portraits are kept."
                ) from e
        return cache[(j, shape)]

    job = FolderJob(
        output,
        results=RESULTS,
        columns=BACKGROUND_COLUMNS,
        key="input_id",
        skipped=SKIPPED,
        skipped_columns=SKIPPED_COLUMNS,
        record=_record(input, backgrounds, segmenter, per_face, levels, seed),
        clean=(".", "alpha", "previews"),
        progress=progress,
        what="background",
    )
    with job:
        out = job.folder
        todo = job.todo(portraits, key=lambda p: p.id, limit=limit)
        summary = BackgroundSummary(already_done=job.already_done)
        for p in todo:
            try:
                names = [name for name, _ in bg_list]
                rows = _replace_one(
                    p, out, segmenter, background, names, per_face, levels, seed, preview
                )
            except BackgroundImageError:
                raise
            except ImageReadError as e:
                job.skip(p.id, "unreadable", str(e))
            except Exception as e:  # one bad portrait must not end a long run
                job.fail(p.id, e)  # ... but a full disk or a read-only folder does
            else:
                job.done(rows)
                summary.outputs += len(rows)
                summary.portraits += 1
            job.advance()
        summary.skipped = sum(job.skipped.values())
        summary.seconds = job.seconds
    return summary


def _replace_one(
    p: Portrait,
    out: Path,
    segmenter: Segmenter,
    background,
    names: list[str],
    per_face: int,
    levels: int,
    seed: int,
    preview: bool,
) -> list[dict]:
    """Write one portrait's alpha, composites and previews; returns its rows (``background(j,
    shape)``: the j-th background fitted to ``shape``; ``names``: the backgrounds' names)."""
    from facectx.faces.io import ImageReadError, read_png, write_png

    portrait = read_png(p.image)
    face = read_png(p.mask)
    if portrait.ndim != 3:
        raise ImageReadError(p.image, "portrait is not an RGB image")
    alpha = segmenter(portrait, face)
    alpha_u8 = np.round(alpha * 255).astype(np.uint8)
    write_png(out / "alpha" / f"{p.id}.png", alpha_u8)
    rows = []
    for k, j in enumerate(pick_backgrounds(p.id, len(names), per_face, seed)):
        bg = background(j, portrait.shape[:2])
        res = replace_background(portrait, face, bg, levels=levels, alpha=alpha)
        oid = f"{p.id}_bg{k}"
        write_png(out / f"{oid}.png", res.image)
        if preview:
            a3 = np.repeat(alpha_u8[:, :, None], 3, axis=2)
            strip = np.concatenate([portrait, a3, bg, res.image], axis=1)
            write_png(out / "previews" / f"{oid}.png", strip)
        rows.append(
            {
                "id": oid,
                "output": f"{oid}.png",
                "input_id": p.id,
                "background": names[j],
                "alpha": f"alpha/{p.id}.png",
                "source": p.source,
                "person": p.person,
            }
        )
    return rows


def build_segmenter(spec) -> Segmenter:
    """A segmenter from a Hydra ``_target_`` config (or pass a built one through)."""
    if isinstance(spec, Segmenter):
        return spec
    if spec is None:
        return GrabCutSegmenter()
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from facectx.segment.base import SegmenterNotAvailableError

    try:
        return instantiate(spec)
    except InstantiationException as e:  # show the segmenter's own message, not Hydra's wrapper
        if isinstance(e.__cause__, SegmenterNotAvailableError):
            raise e.__cause__ from None
        raise
