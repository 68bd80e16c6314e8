"""Identity-specific inpainting of raw photos with a trained SwapInpaint model.

One photo::

    python -m facectx.inpaint ckpt=RUN/checkpoints/last.ckpt image=photo.jpg \\
        reference=other.jpg mask=facial output=out.png

A folder (one reference for all, or a CSV of ``image,reference`` pairs)::

    python -m facectx.inpaint ckpt=... image=photos/ reference=ref.jpg mask=ocular output=outdir/
    python -m facectx.inpaint ckpt=... pairs=pairs.csv mask=center output=outdir/

Per photo: detect and align the face (and the reference's) into the model's canonical frame,
cut the hole (``facial`` / ``ocular`` / ``center``, or a mask file), run C and G, Poisson-blend
Y_sp into the hole (``facectx.blend``), and warp the result back into the photo at its full
resolution: only pixels inside the warped-back hole change, every other pixel is the input's
exactly. Batch mode writes ``outputs.csv`` and ``skipped.csv`` (reason per photo) and resumes.

The Lightning-free API is :class:`facectx.inference.Inpainter`
(``Inpainter.from_checkpoint(path)``); this module is only the command line over it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from torch import Tensor

from facectx._conf import ConfigError, config_dir
from facectx.inference.inpainter import (
    MASK_KINDS,
    Inpainter,
    InpaintError,
    PhotoResult,
    read_hole_file,
)

log = logging.getLogger("facectx.inpaint")

OUTPUT_COLUMNS = ("image", "reference", "output", "faces")
SKIPPED_COLUMNS = ("image", "reason", "detail")


# ---- the CLI -------------------------------------------------------------------------------------
def _jobs(
    image: str | None, reference: str | None, pairs: str | None
) -> list[tuple[Path, Path, str]]:
    """(image path, reference path, output name) for every photo to inpaint."""
    from facectx.data.manifest import read_rows
    from facectx.faces.io import list_images

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
        return out
    if not image:
        raise ValueError("pass image=PHOTO or image=FOLDER (with reference=PHOTO), or pairs=CSV")
    if reference is None:
        raise ValueError("pass reference=PHOTO (used for every image) or pairs=CSV")
    src = Path(image).expanduser().resolve()
    if not src.exists():
        raise FileNotFoundError(f"image={image!r}: {src} does not exist")
    ref = Path(reference).expanduser().resolve()
    if src.is_dir():
        return [
            (p, ref, p.relative_to(src).with_suffix(".png").as_posix()) for p in list_images(src)
        ]
    return [(src, ref, src.with_suffix(".png").name)]


def _extras(target: Path, res: PhotoResult, aligned: bool, hole: bool) -> None:
    from facectx.faces.io import write_png

    if aligned:
        panel = np.concatenate([f.panel() for f in res.faces], 0)
        write_png(target.with_name(target.stem + "_aligned.png"), panel)
    if hole:
        write_png(target.with_name(target.stem + "_hole.png"), res.hole.astype(np.uint8) * 255)


def inpaint_photos(
    ckpt: str,
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
) -> dict[str, int]:
    """Inpaint one photo (``output`` a file) or many (``output`` a folder, resumable); ``mask``
    is ``facial`` | ``ocular`` | ``center``, a keep-mask callable or a mask file; ``detector`` a
    registry name (``hog``/``mtcnn``/``fan``) or a detector object (``conf/detector``); returns
    counts ``{"done", "skipped", "already_done", "total"}``. ``save_aligned`` also writes
    ``<name>_aligned.png`` (masked | X̂ | reference | Y_sp | output per face), ``save_hole``
    ``<name>_hole.png`` (white = the warped-back hole, the only pixels that may change)."""
    from rich.progress import Progress

    from facectx._jobrecord import check_or_record, describe, weights_digest
    from facectx.data.manifest import CsvAppender, read_rows
    from facectx.faces.io import ImageReadError, read_image, write_png

    model = Inpainter.from_checkpoint(
        ckpt, device=device, use_ema=use_ema, identity_path=identity_path
    )
    preparer = model.preparer(detector=detector, faces=faces)
    mask_spec: str | np.ndarray | Callable[..., Tensor] = mask
    if isinstance(mask, str) and mask not in MASK_KINDS:
        mask_path = Path(mask).expanduser()
        if not mask_path.is_file():
            raise FileNotFoundError(
                f"mask={mask!r} is neither {'/'.join(MASK_KINDS)} nor an existing mask file"
            )
        mask_spec = read_hole_file(mask_path)

    jobs = _jobs(image, reference, pairs)
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

    check_or_record(
        out_path,
        {
            "job": "inpaint",
            "model": str(Path(ckpt).expanduser().resolve()),
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
        },
        results=("outputs.csv", "skipped.csv"),
    )
    done = {r["image"] for r in read_rows(out_path / "outputs.csv")}
    todo = [j for j in jobs if str(j[0]) not in done]
    counts = {"done": 0, "skipped": 0, "already_done": len(jobs) - len(todo), "total": len(jobs)}
    t0 = time.perf_counter()
    with (
        CsvAppender(out_path / "outputs.csv", OUTPUT_COLUMNS) as outputs,
        CsvAppender(out_path / "skipped.csv", SKIPPED_COLUMNS) as skipped,
        Progress() as bar,
    ):
        task = bar.add_task("inpainting", total=len(todo))
        for img_path, ref_path, name in todo:
            try:
                res = run_one(img_path, ref_path)
            except InpaintError as e:
                skipped.write({"image": str(img_path), "reason": e.reason, "detail": e.detail})
                counts["skipped"] += 1
            except ImageReadError as e:
                which = "reference_unreadable" if Path(e.path) == ref_path else "unreadable"
                skipped.write({"image": str(img_path), "reason": which, "detail": e.reason})
                counts["skipped"] += 1
            else:
                target = out_path / name
                target.parent.mkdir(parents=True, exist_ok=True)
                write_png(target, res.image)
                _extras(target, res, save_aligned, save_hole)
                outputs.write(
                    {
                        "image": str(img_path),
                        "reference": str(ref_path),
                        "output": name,
                        "faces": len(res.faces),
                    }
                )
                counts["done"] += 1
            bar.advance(task)
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


def mask_arguments(argv: list[str]) -> list[str]:
    """``mask=PATH`` -> ``mask_file=PATH``: ``mask`` is a config group (facial, ocular, center,
    …), so a value that names no option of ``conf/mask`` is taken as a mask file."""
    options = {p.stem for p in (Path(config_dir()) / "mask").glob("*.yaml")}
    out = []
    for a in argv:
        if a.startswith("mask=") and a[len("mask=") :] not in options:
            a = "mask_file=" + a[len("mask=") :]
        out.append(a)
    return out


#: what ``inpaint`` says when no checkpoint is given (no SwapInpaint model ships with facectx)
NO_CKPT = (
    "inpaint needs ckpt=<a SwapInpaint checkpoint>; none ships with facectx. Train one with "
    "`python -m facectx.train experiment=swapinpaint_quickstart` and pass "
    "ckpt=<its run folder>/checkpoints/last.ckpt"
)


def run(cfg: DictConfig) -> None:
    """Run a composed ``inpaint`` config (conf/inpaint.yaml)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    if OmegaConf.is_missing(cfg, "ckpt") or cfg.ckpt is None:
        raise ConfigError(NO_CKPT)
    mask = cfg.mask_file if cfg.get("mask_file") else instantiate(cfg.mask)
    inpaint_photos(
        ckpt=cfg.ckpt,
        image=cfg.image,
        output=cfg.output,
        reference=cfg.reference,
        pairs=cfg.pairs,
        mask=mask,
        faces=cfg.faces,
        detector=instantiate(cfg.detector),
        device=cfg.device,
        use_ema=cfg.use_ema,
        blend=cfg.blend,
        dilate=cfg.dilate,
        seed=cfg.seed,
        save_aligned=cfg.save_aligned,
        save_hole=cfg.save_hole,
        identity_path=cfg.identity_path,
    )


def main() -> None:
    """``python -m facectx.inpaint`` (Hydra: conf/inpaint.yaml); ``mask=PATH`` is rewritten to
    ``+mask_file=PATH`` first (:func:`mask_arguments`)."""
    from facectx._conf import hydra_command

    hydra_command("inpaint", run, log, argv_hook=mask_arguments)


def cli() -> None:
    """Console entry point (kept for installed scripts): the same as :func:`main`."""
    main()


if __name__ == "__main__":
    cli()
