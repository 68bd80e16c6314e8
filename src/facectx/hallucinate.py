"""Hallucinate context for faces: ``python -m facectx.hallucinate ckpt=... input=... output=...``.

The command line only: compose ``conf/hallucinate.yaml``, make one library call
(:func:`facectx.inference.portraits.hallucinate`: a prepared folder or raw photos, resumable,
layout of the output folder in that module), print what it did. In Python use
:mod:`facectx.inference.portraits` (``hallucinate_photos``, ``hallucinate_folder``) or
:class:`facectx.inference.Hallucinator`; the names below stay importable from here.
"""

from __future__ import annotations

import logging
from pathlib import Path

from facectx.inference.portraits import (
    OUTPUT_COLUMNS,
    SKIPPED_COLUMNS,
    HallucinateSummary,
    build_preparer,
    hallucinate,
    hallucinate_folder,
    hallucinate_photos,
    is_prepared_folder,
)

log = logging.getLogger("facectx.hallucinate")

__all__ = [
    "OUTPUT_COLUMNS",
    "SKIPPED_COLUMNS",
    "HallucinateSummary",
    "build_preparer",
    "hallucinate",
    "hallucinate_folder",
    "hallucinate_photos",
    "is_prepared_folder",
    "main",
    "print_summary",
    "run",
]


def print_summary(summary: HallucinateSummary, output: str | Path) -> None:
    """Table of what the run did, then (photos) faces found per photo and, when the detector
    may have missed faces, how to look harder (a line each); on stderr."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"hallucinate ({summary.mode}) -> {output}", show_header=False)
    t.add_row(
        "photos handled" if summary.mode == "photos" else "faces handled", str(summary.photos)
    )
    t.add_row("portraits written", str(summary.portraits))
    for reason, n in sorted(summary.skipped.items()):
        t.add_row(f"skipped: {reason}", str(n))
    t.add_row("already done (resumed)", str(summary.already_done))
    t.add_row("time", f"{summary.seconds:.1f} s")
    t.add_row("throughput", f"{summary.portraits_per_second:.1f} portraits/s")
    console = Console(stderr=True)
    console.print(t)
    for line in summary.faces_found.lines():
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def run(cfg) -> HallucinateSummary:
    """Run a composed ``hallucinate`` config (conf/hallucinate.yaml)."""
    from omegaconf import OmegaConf

    def plain(key: str):
        v = cfg.get(key)
        return OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v

    summary = hallucinate(
        None if cfg.get("ckpt") is None else str(cfg.ckpt),
        str(Path(str(cfg.input)).expanduser()),
        str(Path(str(cfg.output)).expanduser()),
        split=cfg.get("split"),
        eye_distance=cfg.get("eye_distance"),
        eye_y=cfg.get("eye_y"),
        detector=plain("detector"),
        landmarker=plain("landmarks"),
        upsample=int(cfg.upsample),
        faces=str(cfg.faces),
        min_face=float(cfg.min_face),
        batch_size=int(cfg.batch_size),
        device=str(cfg.device),
        use_ema=bool(cfg.use_ema),
        preview=bool(cfg.preview),
        limit=cfg.get("limit"),
        progress=bool(cfg.progress),
        samples=int(cfg.samples),
        seed=int(cfg.seed),
        top=int(cfg.top),
    )
    print_summary(summary, cfg.output)
    log.info(
        "%s: %d portraits from %d %s in %.1f s, skipped %s, %d already done",
        summary.mode,
        summary.portraits,
        summary.photos,
        "photos" if summary.mode == "photos" else "faces",
        summary.seconds,
        summary.skipped,
        summary.already_done,
    )
    return summary


def main() -> None:
    """``python -m facectx.hallucinate`` (Hydra: conf/hallucinate.yaml)."""
    from facectx._conf import hydra_command

    hydra_command("hallucinate", run, log)


if __name__ == "__main__":
    main()
