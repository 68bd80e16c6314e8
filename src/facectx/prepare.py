"""Turn a folder of photos into a prepared face folder: ``python -m facectx.prepare input=DIR output=DIR``.

The command line only: compose ``conf/prepare.yaml``, build the :class:`PreparerSpec`, make one
library call (:func:`facectx.preparation.prepare_folder`: detection, alignment, worker
processes, resuming), print the summary table. See docs/preparation.md. The library names stay
importable from here.
"""

from __future__ import annotations

import logging
from pathlib import Path

from facectx.faces.pipeline import PreparerSpec
from facectx.preparation import (
    SUBDIRS,
    PrepareInterrupted,
    Summary,
    prepare_folder,
    read_splits,
)

log = logging.getLogger(__name__)

__all__ = [
    "SUBDIRS",
    "PrepareInterrupted",
    "PreparerSpec",
    "Summary",
    "main",
    "prepare_folder",
    "print_summary",
    "read_splits",
    "run",
]


def print_summary(summary: Summary, output: Path) -> None:
    """Rich table of what the run did, then faces found per photo and, when the detector may
    have missed faces, how to look harder (a line each)."""
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
    console = Console()
    console.print(t)
    for line in summary.faces_found.lines():
        console.print(line, markup=False, highlight=False, soft_wrap=True)


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
            person=str(c["person"]),
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
