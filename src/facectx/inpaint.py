"""Identity-specific inpainting of raw photos with a trained SwapInpaint model.

One photo, with the model shipped with facectx (no ``ckpt=``; the log says which) or your own::

    python -m facectx.inpaint image=photo.jpg reference=other.jpg mask=facial output=out.png
    python -m facectx.inpaint ckpt=RUN/checkpoints/last.ckpt image=photo.jpg \\
        reference=other.jpg mask=facial output=out.png

A folder (one reference for all, or a CSV of ``image,reference`` pairs)::

    python -m facectx.inpaint ckpt=... image=photos/ reference=ref.jpg mask=ocular output=outdir/
    python -m facectx.inpaint ckpt=... pairs=pairs.csv mask=center output=outdir/

The command line only: compose ``conf/inpaint.yaml``, build the mask and detector, make one
library call (:func:`facectx.inference.inpaint_jobs.inpaint_photos`, which says what happens to
each photo; batch mode writes ``outputs.csv`` and ``skipped.csv`` and resumes). The
Lightning-free API is :class:`facectx.inference.Inpainter` (``Inpainter.from_checkpoint(path)``,
``Inpainter.from_pretrained("lfw-swap-128")``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from facectx._conf import config_dir
from facectx.inference.inpaint_jobs import (
    OUTPUT_COLUMNS,
    SKIPPED_COLUMNS,
    inpaint_photos,
    photo_jobs,
)
from facectx.inference.inpainter import NO_SHIPPED_INPAINTER

log = logging.getLogger("facectx.inpaint")

__all__ = [
    "NO_CKPT",
    "OUTPUT_COLUMNS",
    "SKIPPED_COLUMNS",
    "cli",
    "inpaint_photos",
    "main",
    "mask_arguments",
    "photo_jobs",
    "run",
]


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


#: the first line (a format string over ``{name}``) of what ``inpaint`` says when no ``ckpt=`` is
#: given and the shipped model's file is missing; the registry's not-found text follows it
NO_CKPT = NO_SHIPPED_INPAINTER


def run(cfg: DictConfig) -> dict[str, int]:
    """Run a composed ``inpaint`` config (conf/inpaint.yaml)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    ckpt = None if OmegaConf.is_missing(cfg, "ckpt") or cfg.ckpt is None else str(cfg.ckpt)
    mask = cfg.mask_file if cfg.get("mask_file") else instantiate(cfg.mask)
    return inpaint_photos(
        ckpt=ckpt,  # None: the model shipped with facectx
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
