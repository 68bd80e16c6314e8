"""Seams at the mask edge of every method in a context-hallucination evaluation folder: the edge
strength of the outputs along the face's outline, against the real photos along the same pixels.

    python -m facectx.evaluate ... save_outputs=true hydra.run.dir=/abs/EVAL
    python scripts/seam_step.py /abs/EVAL

For each face, ``edge`` is the ring of pixels within ``--width`` px (default 2) of the edge of the
prepared face mask (``masks/<id>.png``, the kept face) and ``halo`` the band 3-8 px outside it,
both inside the source photo (``valid/<id>.png`` eroded by 3 px, so the frame's black border
does not count). Printed per method: faces scored, ``edge_strength`` (facectx.metrics.image) of
the outputs over each band divided by the originals' over the same band, as the median over
faces (1 = as much edge as the real photo has there: a seam or halo shows as more, a blurred
band as less), and the share of faces above 1.5.
Not a test (pytest does not collect it); the figures are for docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from facectx.metrics.image import edge_strength
from facectx.pixels import from_uint8


def _read_rgb(path: Path) -> np.ndarray | None:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _read_mask(path: Path) -> np.ndarray | None:
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return None if m is None else (m > 127).astype(np.uint8)


def bands(keep: np.ndarray, valid: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(edge, halo) boolean bands of a kept-face mask, inside the eroded valid region."""

    def disc(r: int) -> np.ndarray:
        return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))

    inside = cv2.erode(valid, disc(3)).astype(bool)
    edge = cv2.dilate(keep, disc(width)).astype(bool) & ~cv2.erode(keep, disc(width)).astype(bool)
    halo = cv2.dilate(keep, disc(8)).astype(bool) & ~cv2.dilate(keep, disc(2)).astype(bool)
    return edge & inside, halo & inside


def method_figures(out_dir: Path, root: Path, width: int, min_pixels: int = 30) -> dict:
    """Mean output/original edge-strength ratios of one method, on the edge and halo bands."""
    ratios: dict[str, list[float]] = {"edge": [], "halo": []}
    skipped = 0
    for f in sorted(out_dir.glob("*.png")):
        out, orig = _read_rgb(f), _read_rgb(root / "images" / f.name)
        keep, valid = _read_mask(root / "masks" / f.name), _read_mask(root / "valid" / f.name)
        if out is None or orig is None or keep is None or out.shape != orig.shape:
            skipped += 1
            continue
        valid = np.ones_like(keep) if valid is None else valid
        both = from_uint8(np.stack([out, orig]))
        for name, band in zip(("edge", "halo"), bands(keep, valid, width)):
            if band.sum() < min_pixels:
                continue
            r = torch.from_numpy(band)[None, None].float()
            o, t = edge_strength(both, torch.cat([r, r]))
            if float(t) > 1e-6:
                ratios[name].append(float(o) / float(t))
    fig: dict = {"faces": len(ratios["edge"]), "skipped": skipped}
    for name, vals in ratios.items():
        if vals:
            a = np.asarray(vals)
            fig[name] = float(np.median(a))
            fig[f"{name}_over_1.5"] = float((a > 1.5).mean())
    return fig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("eval_dir", type=Path, help="a facectx.evaluate folder run with save_outputs")
    ap.add_argument("--root", type=Path, help="prepared folder (default: settings.json's root)")
    ap.add_argument("--width", type=int, default=2, help="px either side of the mask edge")
    args = ap.parse_args(argv)
    outputs = args.eval_dir / "outputs"
    if not outputs.is_dir():
        print(
            f"{outputs} does not exist: run facectx.evaluate with save_outputs=true",
            file=sys.stderr,
        )
        return 2
    root = args.root
    if root is None:
        settings = args.eval_dir / "settings.json"
        if not settings.is_file():
            print(f"{settings} is missing: pass --root /abs/prepared", file=sys.stderr)
            return 2
        root = Path(json.loads(settings.read_text())["root"])
    print(f"{'method':28s} {'faces':>5s} {'edge':>6s} {'>1.5':>6s} {'halo':>6s} {'>1.5':>6s}")
    summary = {}
    for d in sorted(p for p in outputs.iterdir() if p.is_dir()):
        fig = method_figures(d, root, args.width)
        summary[d.name] = fig
        if "edge" in fig and "halo" in fig:
            print(
                f"{d.name:28s} {fig['faces']:5d} {fig['edge']:6.2f} {fig['edge_over_1.5']:6.3f} "
                f"{fig['halo']:6.2f} {fig['halo_over_1.5']:6.3f}"
            )
        else:
            print(f"{d.name:28s} no face with both bands ({fig['skipped']} skipped)")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
