"""Hallucinate context for whole folders: a prepared folder's faces, or raw photos.

The library behind ``python -m facectx.hallucinate`` (which only composes the config, calls
:func:`hallucinate` and prints the summary). ``input`` is either

* a **prepared folder** (it holds ``manifest.csv``; see ``python -m facectx.prepare``): every face
  listed there (optionally one ``split``) is hallucinated with its stored face hull as the
  keep-mask (:func:`hallucinate_folder`); or
* **raw photos**: one image file or a folder of them (searched recursively). Each photo is read
  (``facectx.faces.io.read_image``), its faces detected, landmarked and aligned into the model's
  canonical frame by :class:`facectx.faces.pipeline.FacePreparer` (``faces=all`` by default, so a
  couple photo gives two portraits), and hallucinated (:func:`hallucinate_photos`).

Output folder layout (the same for both inputs)::

    OUT/<id>.png              hallucinated portrait, size x size (128 px for the paper's model)
    OUT/masks/<id>.png        the face pixels kept exactly (255); the exemplar model leaves out
                              the hull's rim pixels that are not face (trim_rim)
    OUT/previews/<id>.png     masked input | output | aligned original (preview=true)
    OUT/outputs.csv           one row per portrait (OUTPUT_COLUMNS)

With ``samples`` K > 1 (models that give several portraits per face: the exemplar model) a face
gets ``OUT/<id>_s<j>.png`` for j = 0..K-1 instead of ``<id>.png``, one outputs.csv row each
(column ``sample`` = j), and its preview shows the K side by side: masked | s0 ... | original.
    OUT/skipped.csv           photos that gave no portrait: source, reason, detail (prepared
                              input: source = the face id whose files could not be read)

``<id>`` is ``<photo-stem>_<face>`` (face 0 = the largest), the same ids ``facectx.prepare``
gives. For photos the keep-mask is the landmark hull restricted to pixels that lie inside the
photo (``AlignedFace.mask * AlignedFace.valid``), so context beyond the photo's edge is
generated, not kept black. Face pixels of every portrait equal the aligned photo's exactly,
but for the exemplar model's rim (``facectx.zoo.exemplar.trim_rim``): hull pixels within 2 px of
its edge that hold shadow, hair or background get context; ``masks/`` records what was kept.

The folder's bookkeeping is :class:`facectx.folderjob.FolderJob`: rows of one photo are appended
together after all its files are written, so an interrupted run leaves only complete entries; a
rerun skips every photo (or prepared id) already listed in ``outputs.csv`` or ``skipped.csv``
and resumes. ``OUT/job.json`` records what made the folder (the model's weights digest, the
input, the face preparation settings, ``samples`` and, for a model that draws, ``seed``); a rerun
with another model or other settings is refused
(:class:`facectx._jobrecord.OutputFolderError`) instead of keeping the first model's portraits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facectx.faces.pipeline import FacesFound

log = logging.getLogger("facectx.hallucinate")

OUTPUTS = "outputs.csv"
SKIPPED = "skipped.csv"
OUTPUT_COLUMNS = (
    "id",  # portrait id: <photo-stem>_<face index> (or the prepared folder's id)
    "output",  # portrait path relative to the output folder
    "mask",  # keep-mask path relative to the output folder (255 = kept face pixel)
    "preview",  # preview path, or empty when preview=false
    "source",  # source photo (relative to the input folder, or the prepared manifest's source)
    "face_index",  # face index within its photo, 0 = largest
    "person",  # identity label (LFW Name_NNNN stem for face 0, or the prepared manifest's)
    "score",  # detector confidence (empty for prepared input without one)
)
SKIPPED_COLUMNS = ("source", "reason", "detail")
#: the column added to OUTPUT_COLUMNS when a face gets several portraits (samples > 1)
SAMPLE_COLUMN = "sample"  # j of <id>_s<j>.png, 0 = the best (or the first drawn)


@dataclass
class HallucinateSummary:
    """What one run did (``already_done`` counts entries from earlier runs)."""

    mode: str = ""  # "prepared" or "photos"
    photos: int = 0  # photos (or prepared faces) handled in this run
    portraits: int = 0  # portraits written in this run
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> photos
    already_done: int = 0
    seconds: float = 0.0
    # photos only: faces found per photo, and photos where the detector may have missed some
    faces_found: FacesFound = field(default_factory=FacesFound)

    @property
    def portraits_per_second(self) -> float:
        return self.portraits / self.seconds if self.seconds > 0 else 0.0


def is_prepared_folder(path: str | Path) -> bool:
    """Whether ``path`` is a prepared face folder (a directory holding ``manifest.csv``)."""
    from facectx.data.manifest import MANIFEST

    p = Path(path)
    return p.is_dir() and (p / MANIFEST).is_file()


def _png(path: Path, image: np.ndarray) -> None:
    from facectx.faces.io import write_png  # looked up per call: tests replace it

    write_png(path, image, compression=3)


def _write_portrait(
    out_dir: Path,
    fid: str,
    output: np.ndarray,
    keep: np.ndarray,
    aligned: np.ndarray,
    preview: bool,
) -> list[dict[str, str]]:
    """Write a face's portrait (or, ``output`` (K, S, S, 3), its K portraits), keep-mask and
    preview; returns the paths of each portrait's row."""
    keep01 = (keep > 0).astype(np.uint8)
    several = output.ndim == 4
    outputs = list(output) if several else [output]
    names = [f"{fid}_s{j}.png" for j in range(len(outputs))] if several else [f"{fid}.png"]
    for name, image in zip(names, outputs):
        _png(out_dir / name, image)
    _png(out_dir / f"masks/{fid}.png", keep01 * 255)
    shown = ""
    if preview:
        masked = aligned * keep01[:, :, None]
        shown = f"previews/{fid}.png"
        _png(out_dir / shown, np.concatenate([masked, *outputs, aligned], axis=1))
    rows = [{"output": n, "mask": f"masks/{fid}.png", "preview": shown} for n in names]
    if several:
        for j, row in enumerate(rows):
            row[SAMPLE_COLUMN] = str(j)
    return rows


def _load_model(ckpt: str | None, device: str, use_ema: bool, samples: int, seed: int, top: int):
    from facectx.inference.hallucinator import load_hallucinator
    from facectx.pretrained.hallucinators import DEFAULT_PORTRAIT

    return load_hallucinator(
        ckpt,
        device=device,
        use_ema=use_ema,
        samples=samples,
        seed=seed,
        top=top,
        default=DEFAULT_PORTRAIT,
    )


def _job(
    output: str | Path,
    key: str,
    model,
    ckpt: str | None,
    input: Path,
    progress: bool,
    samples: int,
    seed: int,
    **settings,
):
    """The folder job of a hallucinate run (``key``: what names an item in outputs.csv):
    ``job.json`` names the model (weights digest), the input, ``samples``, ``seed`` (models that
    draw) and ``settings`` (what changes the portraits); a rerun that differs is refused, and so
    is one whose outputs.csv would get other columns (a folder made before ``samples``)."""
    from facectx._jobrecord import OutputFolderError
    from facectx.folderjob import FolderJob

    samples = model.check_samples(samples)
    columns = OUTPUT_COLUMNS + ((SAMPLE_COLUMN,) if samples > 1 else ())
    listed = Path(output).expanduser() / OUTPUTS
    if listed.is_file() and listed.stat().st_size:
        with listed.open(encoding="utf-8") as f:
            header = tuple(f.readline().strip().split(","))
        if header != columns:
            raise OutputFolderError(
                f"{listed.parent} holds portraits listed with columns {','.join(header)}, and "
                f"samples={samples} lists {','.join(columns)}; rerun with the original samples, "
                "or pass a new output= folder."
            )
    source = str(model.source if ckpt is None or model.source != "in-memory generator" else ckpt)
    if Path(source).is_file():
        source = str(Path(source).resolve())
    record = {
        "job": "hallucinate",
        "model": source,
        "weights": model.digest(),
        "input": str(input),
        "samples": samples,
        "seed": int(seed) if model.sampling else None,
        **settings,
    }
    return FolderJob(
        output,
        results=OUTPUTS,
        columns=columns,
        key=key,
        skipped=SKIPPED,
        skipped_columns=SKIPPED_COLUMNS,
        record=record,
        clean=(".", "masks", "previews"),
        progress=progress,
        what="hallucinate",
        count="portraits",
    )


# ---------------------------------------------------------------------------- prepared folders


def _read_landmarks(path: Path) -> np.ndarray:
    """(68, 2) aligned landmarks of a prepared face; ImageReadError when unreadable."""
    from facectx.faces.io import ImageReadError

    try:
        lm = np.load(path)
    except (FileNotFoundError, ValueError, EOFError) as e:
        raise ImageReadError(path, f"landmarks unreadable ({e})") from e
    if lm.shape != (68, 2):
        raise ImageReadError(path, f"landmarks of shape {lm.shape}, expected (68, 2)")
    return lm.astype(np.float32)


def hallucinate_folder(
    ckpt: str | None,
    input: str,
    output: str,
    split: str | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    use_ema: bool = True,
    preview: bool = True,
    progress: bool = True,
    samples: int = 1,
    seed: int = 0,
    top: int = 1,
    model=None,
) -> HallucinateSummary:
    """Run a model over every face of a prepared folder (its stored hull masks; the exemplar
    model also reads the faces' landmarks and valid masks).

    A face whose image or mask cannot be read is listed in ``skipped.csv`` (``source`` = its
    id, reason ``unreadable``) and the run goes on.

    Args:
        ckpt: checkpoint written by ``python -m facectx.train``.
        input: prepared folder (``manifest.csv``, ``images/``, ``masks/``...).
        output: output folder (layout in the module docstring); resumed if it exists.
        split: only faces of this manifest split; None = every face.
        batch_size: faces per generator call.
        device: torch device of the generator.
        use_ema: use the EMA generator weights when the checkpoint has them.
        preview: also write ``previews/<id>.png``.
        progress: show a progress bar.
        samples: portraits per face (K > 1: ``<id>_s<j>.png``; models that draw only).
        seed: seed of the exemplar model's draw among its best ``top`` candidates.
        top: the exemplar model draws among its best ``top`` (<= samples: by rank).
        model: an already loaded :class:`facectx.inference.Hallucinator` (``ckpt`` is then
            only recorded), e.g. to share one across calls.
    """
    from facectx.data.datasets import frame_size
    from facectx.data.manifest import read_manifest
    from facectx.faces.io import ImageReadError, read_png

    model = model or _load_model(ckpt, device, use_ema, samples, seed, top)
    root = Path(input).expanduser().resolve()
    size = frame_size(root)
    if size is not None and size != model.size:
        raise ValueError(
            f"{root} holds {size} px faces but the model makes {model.size} px; "
            f"prepare the photos again with size={model.size}."
        )
    rows = read_manifest(root, split)
    size = model.size
    with _job(output, "id", model, ckpt, root, progress, samples, seed) as job:
        todo = job.todo(rows, key=lambda r: r["id"])
        summary = HallucinateSummary(mode="prepared", already_done=job.already_done)
        out_dir = job.folder
        for i in range(0, len(todo), batch_size):
            chunk, images, keeps, extra = [], [], [], {"landmarks": [], "valid": []}
            for r in todo[i : i + batch_size]:
                try:
                    im, keep = read_png(root / r["image"]), read_png(root / r["mask"])
                    if im.shape != (size, size, 3) or keep.shape != (size, size):
                        raise ImageReadError(
                            root / r["image"],
                            f"image {im.shape} / mask {keep.shape}, expected {size} px "
                            f"(prepare again with size={size})",
                        )
                    if model.uses_landmarks:
                        extra["landmarks"].append(_read_landmarks(root / r["landmarks"]))
                        extra["valid"].append(read_png(root / r["valid"]))
                except ImageReadError as e:
                    job.skip(r["id"], "unreadable", str(e))
                    continue
                except OSError as e:  # the machine's (permission, I/O): stops, never a skip
                    job.fail(r["id"], e)
                    continue
                chunk.append(r)
                images.append(im)
                keeps.append(keep)
            if chunk:
                given = {k: v for k, v in extra.items() if v}
                outs = model.hallucinate_uint8(images, keeps, samples=samples, seed=seed, **given)
                keeps = list(model.kept_uint8(images, keeps))  # what stayed the input's
                out_rows = []
                for r, out, keep, im in zip(chunk, outs, keeps, images):
                    for rel in _write_portrait(out_dir, r["id"], out, keep, im, preview):
                        out_rows.append({**r, **rel, "id": r["id"]})
                job.done(out_rows)
            n = len(todo[i : i + batch_size])
            summary.photos += n
            summary.portraits += len(chunk) * samples
            job.advance(n, count=summary.portraits)
        summary.skipped = dict(job.skipped)
        summary.seconds = job.seconds
    return summary


# ---------------------------------------------------------------------------- raw photos


def build_preparer(
    size: int,
    eye_distance: float = 0.27,
    eye_y: float = 0.43,
    detector: str | dict = "hog",
    landmarker: str | dict = "dlib",
    upsample: int = 1,
    faces: str = "all",
    min_face: float = 20.0,
):
    """A :class:`FacePreparer` for the model's frame (``detector``/``landmarker``: registry names
    or Hydra ``_target_`` dicts, as in ``conf/detector`` and ``conf/landmarks``)."""
    from facectx.faces.pipeline import PreparerSpec

    return PreparerSpec(
        size=int(size),
        eye_distance=float(eye_distance),
        eye_y=float(eye_y),
        detector=detector,
        landmarker=landmarker,
        upsample=int(upsample),
        faces=faces,
        min_face=float(min_face),
    ).build()


def hallucinate_photos(
    ckpt: str | None,
    input: str,
    output: str,
    eye_distance: float | None = None,
    eye_y: float | None = None,
    detector: str | dict = "hog",
    landmarker: str | dict = "dlib",
    upsample: int = 1,
    faces: str = "all",
    min_face: float = 20.0,
    batch_size: int = 32,
    device: str = "cpu",
    use_ema: bool = True,
    preview: bool = True,
    limit: int | None = None,
    progress: bool = True,
    samples: int = 1,
    seed: int = 0,
    top: int = 1,
    model=None,
    preparer=None,
) -> HallucinateSummary:
    """Detect, align and hallucinate every face of raw photos (one file or a folder).

    Args:
        ckpt: checkpoint written by ``python -m facectx.train``.
        input: an image file, or a folder searched recursively for jpg/jpeg/png/webp/bmp.
        output: output folder (layout in the module docstring); resumed if it exists.
        eye_distance, eye_y: canonical frame the model was trained in (fractions of its size);
            None = the model's recorded frame (``Hallucinator.frame``), else the project
            default (0.27, 0.43).
        detector, landmarker: face detector / 68-point landmarker, names or ``_target_`` dicts.
        upsample: HOG detector doublings (finds faces down to ~40 px at 1).
        faces: ``all`` (every face, largest first), ``largest`` or ``one``.
        min_face: faces with an eye distance (or box side) below this many source px are skipped.
        batch_size: faces per generator call (faces of several photos are batched together).
        device: torch device of the generator.
        use_ema: use the EMA generator weights when the checkpoint has them.
        preview: write ``previews/<id>.png`` (masked | output | aligned original).
        limit: handle at most this many not-yet-done photos (None = all); a rerun continues.
        progress: show a progress bar.
        samples: portraits per face (K > 1: ``<id>_s<j>.png``; models that draw only).
        seed: seed of the exemplar model's draw among its best ``top`` candidates.
        top: the exemplar model draws among its best ``top`` (<= samples: by rank).
        model: an already loaded Hallucinator (``ckpt`` is then only recorded).
        preparer: an already built FacePreparer (its frame must match the model's size).
    """
    from facectx._jobrecord import describe
    from facectx.faces.io import ImageReadError, read_image, scan_inputs
    from facectx.faces.naming import face_id, person_from_stem, unique_stems
    from facectx.geometry.frame import CanonicalFrame

    model = model or _load_model(ckpt, device, use_ema, samples, seed, top)
    if preparer is None:
        frame = CanonicalFrame.from_record(model.size, getattr(model, "frame", None))
        preparer = build_preparer(
            model.size,
            frame.eye_distance if eye_distance is None else eye_distance,
            frame.eye_y if eye_y is None else eye_y,
            detector,
            landmarker,
            upsample,
            faces,
            min_face,
        )
    if preparer.frame.size != model.size:
        raise ValueError(
            f"the face preparer's frame is {preparer.frame.size} px but the model makes "
            f"{model.size} px portraits"
        )
    # every entry of the input; our own output folder, when it lies inside, is never read back
    scan = scan_inputs(input, exclude=output)
    listed = scan.images
    if not listed:  # before anything is created: an empty run is a mistake, not a success
        from facectx._conf import ConfigError

        raise ConfigError(
            f"input={input}: no images found (jpg, jpeg, png, webp, bmp; folders are searched "
            f"recursively) in {scan.summary()}; point input= at a photo or a folder of photos"
        )
    log.info("hallucinate: %s", scan.summary(rejected="in skipped.csv"))
    job = _job(
        output,
        "source",
        model,
        ckpt,
        Path(input).expanduser().resolve(),
        progress,
        samples,
        seed,
        frame=describe(preparer.frame),
        faces=preparer.faces,
        min_face=preparer.min_face,
        detector=describe(preparer.detector),
        landmarker=describe(preparer.landmarker),
    )
    with job:
        out_dir = job.folder
        job.reject((e.source, e.reason, e.detail) for e in scan.rejected)
        stems = unique_stems([s for s, _ in listed])
        todo = job.todo(listed, key=lambda item: item[0], limit=limit)
        summary = HallucinateSummary(mode="photos", already_done=job.already_done)
        pending: list[tuple[str, list[Any]]] = []  # (source, faces) waiting for the generator

        def flush() -> None:
            faces_all = [f for _, fs in pending for f in fs]
            if not faces_all:
                pending.clear()
                return
            outs = model.hallucinate_uint8(
                [f.image for f in faces_all],
                [f.mask * f.valid for f in faces_all],
                landmarks=[f.landmarks for f in faces_all],
                valid=[f.valid for f in faces_all],
                samples=samples,
                seed=seed,
            )
            kept = model.kept_uint8(
                [f.image for f in faces_all], [f.mask * f.valid for f in faces_all]
            )
            k = 0
            for source, fs in pending:
                rows = []
                person = person_from_stem(Path(source).stem)
                for i, f in enumerate(fs):
                    fid = face_id(source, i, stems[source])
                    for rel in _write_portrait(out_dir, fid, outs[k], kept[k], f.image, preview):
                        rows.append(
                            {
                                "id": fid,
                                **rel,
                                "source": source,
                                "face_index": i,
                                "person": person if i == 0 else "",
                                "score": f"{f.score:.4f}",
                            }
                        )
                    k += 1
                job.done(rows)  # all faces of one photo land together
                summary.portraits += len(rows)
            pending.clear()

        for source, path in todo:
            summary.photos += 1
            try:
                result = preparer.run(read_image(path))
            except ImageReadError as e:
                job.skip(source, "unreadable", e.reason)
            except Exception as e:  # one bad photo must not end a long run
                job.fail(source, e)  # ... but a full disk or a read-only folder does
            else:
                summary.faces_found.add(source, result.found, result.missed, result.retry)
                if result.faces:
                    pending.append((source, result.faces))
                else:
                    job.skip(source, result.reason, result.detail)
            if sum(len(fs) for _, fs in pending) >= batch_size:
                flush()
            job.advance(1, count=summary.portraits)
        flush()
        job.advance(0, count=summary.portraits)
        summary.skipped = dict(job.skipped)
        summary.seconds = job.seconds
    return summary


def hallucinate(ckpt: str | None, input: str, output: str, **kwargs: Any) -> HallucinateSummary:
    """Dispatch on the input: a prepared folder (has manifest.csv) or raw photos."""
    if is_prepared_folder(input):
        keys = ("split", "batch_size", "device", "use_ema", "preview", "progress", "model")
        keys += ("samples", "seed", "top")
        return hallucinate_folder(
            ckpt, input, output, **{k: kwargs[k] for k in keys if k in kwargs}
        )
    kwargs.pop("split", None)
    return hallucinate_photos(ckpt, input, output, **kwargs)
