"""Replace the background of hallucinated portraits (paper supplement §4).

``python -m facectx.background input=HALLUCINATED backgrounds=DIR output=OUT``

The command line only: compose ``conf/background.yaml``, build the segmenter, make one library
call (:func:`facectx.segment.folder.replace_folder`, where the method and the output folder
are described), log what it did. The library names stay importable from here.
"""

from __future__ import annotations

import logging
from pathlib import Path

from facectx.segment.folder import (
    BACKGROUND_COLUMNS,
    BackgroundImageError,
    BackgroundSummary,
    Portrait,
    build_segmenter,
    pick_backgrounds,
    read_portraits,
    replace_folder,
)

log = logging.getLogger("facectx.background")

__all__ = [
    "BACKGROUND_COLUMNS",
    "BackgroundImageError",
    "BackgroundSummary",
    "Portrait",
    "build_segmenter",
    "main",
    "pick_backgrounds",
    "read_portraits",
    "replace_folder",
    "run",
]


def run(cfg) -> BackgroundSummary:
    """Run a composed ``background`` config (conf/background.yaml)."""
    summary = replace_folder(
        Path(cfg.input).expanduser(),
        Path(cfg.backgrounds).expanduser(),
        Path(cfg.output).expanduser(),
        segmenter=build_segmenter(cfg.segmenter),
        per_face=int(cfg.per_face),
        levels=int(cfg.levels),
        seed=int(cfg.seed),
        preview=bool(cfg.preview),
        limit=cfg.get("limit"),
        progress=bool(cfg.progress),
    )
    log.info(
        "background: %d portraits -> %d images in %.1f s, %d skipped, %d already done; %s",
        summary.portraits,
        summary.outputs,
        summary.seconds,
        summary.skipped,
        summary.already_done,
        cfg.output,
    )
    return summary


def main() -> None:
    """``python -m facectx.background`` (Hydra: conf/background.yaml)."""
    from facectx._conf import hydra_command

    hydra_command("background", run, log)


if __name__ == "__main__":
    main()
