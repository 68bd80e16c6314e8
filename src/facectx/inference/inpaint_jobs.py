"""Identity-specific inpainting of raw photos, one or a whole folder (resumable).

The library behind ``python -m facectx.inpaint``. Per photo: detect and align the face (and the
reference's) into the model's canonical frame, cut the hole (``facial`` / ``ocular`` /
``center``, or a mask file), run C and G, Poisson-blend Y_sp into the hole (``facectx.blend``),
and warp the result back into the photo at its full resolution: only pixels inside the
warped-back hole change, every other pixel is the input's exactly
(:meth:`facectx.inference.Inpainter.inpaint_photo`).

Batch mode (``output`` a folder) is a :class:`facectx.folderjob.FolderJob`: ``outputs.csv``
lists inpainted photos, ``skipped.csv`` the others with a reason (tried again on a rerun);
``job.json`` records the model and settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from torch import Tensor

from facectx.inference.inpainter import (
    MASK_KINDS,
    InpaintError,
    PhotoResult,
    load_inpainter,
    read_hole_file,
)

log = logging.getLogger("facectx.inpaint")

OUTPUT_COLUMNS = ("image", "reference", "output", "faces")
SKIPPED_COLUMNS = ("image", "reason", "detail")


def photo_jobs(
    image: str | None, reference: str | None, pairs: str | None
) -> list[tuple[Path, Path, str]]:
    """(image path, reference path, output name) for every photo to inpaint."""
    return _photo_jobs(image, reference, pairs)[0]


def _photo_jobs(
    image: str | None, reference: str | None, pairs: str | None
) -> tuple[list[tuple[Path, Path, str]], list[tuple[str, str, str]]]:
    """:func:`photo_jobs`, and the ``(image path, reason, detail)`` of each entry of an image
    folder that is no photo (a GIF, a symlink loop: :func:`facectx.faces.io.scan_inputs`)."""
    from facectx.data.manifest import read_rows
    from facectx.faces.io import scan_inputs

    if pairs:
        csv_path = Path(pairs).expanduser().resolve()
        rows = read_rows(csv_path)
        if not rows or not {"image", "reference"} <= set(rows[0]):
            raise ValueError(f"{csv_path} must be a CSV with columns image,reference")
        base = csv_path.parent
        out = []
        for r in rows:
            img = (base / r["image"]).resolve()
            out.append(
                (
                    img,
                    (base / r["reference"]).resolve(),
                    Path(r["image"]).with_suffix(".png").as_posix(),
                )
            )
        return out, []
    if not image:
        raise ValueError("pass image=PHOTO or image=FOLDER (with reference=PHOTO), or pairs=CSV")
    if reference is None:
        raise ValueError("pass reference=PHOTO (used for every image) or pairs=CSV")
    src = Path(image).expanduser().resolve()
    if not src.exists():
        raise FileNotFoundError(f"image={image!r}: {src} does not exist")
    ref = Path(reference).expanduser().resolve()
    if src.is_dir():
        scan = scan_inputs(src)
        log.info("inpaint: %s", scan.summary(rejected="in skipped.csv"))
        jobs = [(p, ref, Path(rel).with_suffix(".png").as_posix()) for rel, p in scan.images]
        return jobs, [(str(e.path), e.reason, e.detail) for e in scan.rejected]
    return [(src, ref, src.with_suffix(".png").name)], []


def _extras(target: Path, res: PhotoResult, aligned: bool, hole: bool) -> None:
    from facectx.faces.io import write_png

    if aligned:
        panel = np.concatenate([f.panel() for f in res.faces], 0)
        write_png(target.with_name(target.stem + "_aligned.png"), panel)
    if hole:
        write_png(target.with_name(target.stem + "_hole.png"), res.hole.astype(np.uint8) * 255)


def inpaint_photos(
    ckpt: str | None,
    image: str | None,
    output: str,
    reference: str | None = None,
    pairs: str | None = None,
    mask: str | Callable[..., Tensor] = "facial",
    faces: str = "largest",
    detector: str | object = "hog",
    device: str = "cpu",
    use_ema: bool = True,
    blend: bool = True,
    dilate: int = 5,
    seed: int = 0,
    save_aligned: bool = False,
    save_hole: bool = False,
    identity_path: str | None = None,
    progress: bool = True,
) -> dict[str, int]:
    """Inpaint one photo (``output`` a file) or many (``output`` a folder, resumable) with the
    SwapInpaint checkpoint or packed file ``ckpt`` (None, ``pretrained`` or ``pretrained:NAME``:
    a model shipped with facectx, logged); ``mask``
    is ``facial`` | ``ocular`` | ``center``, a keep-mask callable or a mask file; ``detector`` a
    registry name (``hog``/``mtcnn``/``fan``) or a detector object (``conf/detector``); returns
    counts ``{"done", "skipped", "already_done", "total"}``. ``save_aligned`` also writes
    ``<name>_aligned.png`` (masked | X̂ | reference | Y_sp | output per face), ``save_hole``
    ``<name>_hole.png`` (white = the warped-back hole, the only pixels that may change);
    ``progress`` shows a progress bar in batch mode."""
    from facectx._jobrecord import describe, weights_digest
    from facectx.faces.io import ImageReadError, read_image, write_png
    from facectx.folderjob import FolderJob

    model = load_inpainter(ckpt, device=device, use_ema=use_ema, identity_path=identity_path)
    preparer = model.preparer(detector=detector, faces=faces)
    mask_spec: str | np.ndarray | Callable[..., Tensor] = mask
    if isinstance(mask, str) and mask not in MASK_KINDS:
        mask_path = Path(mask).expanduser()
        if not mask_path.is_file():
            raise FileNotFoundError(
                f"mask={mask!r} is neither {'/'.join(MASK_KINDS)} nor an existing mask file"
            )
        mask_spec = read_hole_file(mask_path)

    jobs, rejected = _photo_jobs(image, reference, pairs)
    single = not pairs and not Path(image or "").expanduser().is_dir()
    out_path = Path(output).expanduser().resolve()
    refs: dict[Path, np.ndarray] = {}

    def run_one(img_path: Path, ref_path: Path) -> PhotoResult:
        if ref_path not in refs:
            refs[ref_path] = model.prepare_reference(read_image(ref_path), preparer)
        return model.inpaint_photo(
            read_image(img_path),
            refs[ref_path],
            mask_spec,
            preparer=preparer,
            reference_aligned=True,
            blend=blend,
            dilate=dilate,
            seed=seed,
        )

    if single:
        img_path, ref_path, _ = jobs[0]
        if out_path.suffix.lower() != ".png":
            out_path = (
                out_path / f"{img_path.stem}.png"
                if out_path.is_dir()
                else out_path.with_suffix(".png")
            )
        res = run_one(img_path, ref_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        write_png(out_path, res.image)
        _extras(out_path, res, save_aligned, save_hole)
        log.info(
            "wrote %s (%d face(s), %d px changed)", out_path, len(res.faces), int(res.hole.sum())
        )
        return {"done": 1, "skipped": 0, "already_done": 0, "total": 1}

    record = {
        "job": "inpaint",
        "model": model.source,  # the checkpoint's absolute path, or pretrained:NAME@sha256
        "weights": weights_digest(model.model, model.identity),
        "image": None if pairs else str(Path(image or "").expanduser().resolve()),
        "reference": None if pairs else str(Path(reference or "").expanduser().resolve()),
        "pairs": str(Path(pairs).expanduser().resolve()) if pairs else None,
        "mask": str(Path(mask).expanduser().resolve())
        if isinstance(mask, str) and mask not in MASK_KINDS
        else describe(mask),
        "faces": faces,
        "detector": describe(detector),
        "blend": bool(blend),
        "dilate": int(dilate),
        "seed": int(seed),
    }
    job = FolderJob(
        out_path,
        results="outputs.csv",
        columns=OUTPUT_COLUMNS,
        key="image",
        skipped_columns=SKIPPED_COLUMNS,
        retry_skipped=True,  # skipped photos are tried again on a rerun
        record=record,
        progress=progress,
        what="inpainting",
    )
    t0 = time.perf_counter()
    with job:
        job.reject(rejected)
        todo = job.todo(jobs, key=lambda j: str(j[0]))
        total = len(jobs) + len(rejected)
        counts = {"done": 0, "skipped": 0, "already_done": job.already_done, "total": total}
        for img_path, ref_path, name in todo:
            try:
                res = run_one(img_path, ref_path)
            except InpaintError as e:
                job.skip(str(img_path), e.reason, e.detail)
            except ImageReadError as e:
                which = "reference_unreadable" if Path(e.path) == ref_path else "unreadable"
                job.skip(str(img_path), which, e.reason)
            except OSError as e:  # a photo the machine cannot read (permission, I/O): stop
                job.fail(str(img_path), e)
            else:
                target = out_path / name
                target.parent.mkdir(parents=True, exist_ok=True)
                write_png(target, res.image)
                _extras(target, res, save_aligned, save_hole)
                job.done(
                    {
                        "image": str(img_path),
                        "reference": str(ref_path),
                        "output": name,
                        "faces": len(res.faces),
                    }
                )
                counts["done"] += 1
            job.advance()
        counts["skipped"] = sum(job.skipped.values())
    dt = time.perf_counter() - t0
    log.info(
        "%d inpainted, %d skipped (see %s), %d already done, in %.1f s; outputs in %s",
        counts["done"],
        counts["skipped"],
        out_path / "skipped.csv",
        counts["already_done"],
        dt,
        out_path,
    )
    return counts
