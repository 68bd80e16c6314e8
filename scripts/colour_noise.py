"""Colour noise of every method in an evaluation folder: fine-scale colour inside what each
method changed, against the real faces over the same pixels.

    python -m facectx.evaluate ... save_outputs=true hydra.run.dir=/abs/EVAL
    python scripts/colour_noise.py /abs/EVAL

For each face, the region is the pixels the output changed (more than 2 of 255 in a channel),
closed with a 5x5 square and eroded by 2 px, so the hole's own edge does not count. Printed per
method: faces scored, ``colour_detail`` (facectx.metrics.image) of the outputs and of the
originals over that region, their ratio (1 = as much colour detail as real faces there), and
the share of faces whose fill has more than twice its original's.
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

from facectx.metrics.image import colour_detail
from facectx.pixels import from_uint8


def _read(path: Path) -> np.ndarray | None:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def changed_region(out: np.ndarray, orig: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels the output changed, closed (5x5) and eroded 2 px."""
    ch = (np.abs(out.astype(int) - orig.astype(int)).max(-1) > 2).astype(np.uint8)
    square = np.ones((5, 5), np.uint8)
    ch = cv2.morphologyEx(ch, cv2.MORPH_CLOSE, square)
    return cv2.erode(ch, square).astype(bool)


def method_figures(out_dir: Path, images: Path, min_pixels: int = 50) -> dict:
    """Mean colour detail of one method's outputs and of the originals, over changed pixels."""
    fills, reals, skipped = [], [], []
    for f in sorted(out_dir.glob("*.png")):
        out, orig = _read(f), _read(images / f.name)
        if out is None or orig is None or out.shape != orig.shape:
            skipped.append(f.name)
            continue
        region = changed_region(out, orig)
        if region.sum() < min_pixels:
            skipped.append(f.name)
            continue
        r = torch.from_numpy(region)[None, None].float()
        both = from_uint8(np.stack([out, orig]))
        fill, real = colour_detail(both, torch.cat([r, r]))
        fills.append(float(fill))
        reals.append(float(real))
    if not fills:
        return {"faces": 0, "skipped": len(skipped)}
    fill, real = float(np.mean(fills)), float(np.mean(reals))
    return {
        "faces": len(fills),
        "skipped": len(skipped),
        "fill": fill,
        "real": real,
        "ratio": fill / real,
        "over_2x": float(np.mean(np.asarray(fills) > 2 * np.asarray(reals))),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("eval_dir", type=Path, help="a facectx.evaluate folder run with save_outputs")
    ap.add_argument("--images", type=Path, help="originals (default: settings.json's root/images)")
    args = ap.parse_args(argv)
    outputs = args.eval_dir / "outputs"
    if not outputs.is_dir():
        print(
            f"{outputs} does not exist: run facectx.evaluate with save_outputs=true",
            file=sys.stderr,
        )
        return 2
    images = args.images
    if images is None:
        settings = args.eval_dir / "settings.json"
        if not settings.is_file():
            print(f"{settings} is missing: pass --images /abs/prepared/images", file=sys.stderr)
            return 2
        images = Path(json.loads(settings.read_text())["root"]) / "images"
    print(f"{'method':32s} {'faces':>5s} {'fill':>6s} {'real':>6s} {'ratio':>6s} {'>2x':>6s}")
    summary = {}
    for d in sorted(p for p in outputs.iterdir() if p.is_dir()):
        fig = method_figures(d, images)
        summary[d.name] = fig
        if fig["faces"]:
            print(
                f"{d.name:32s} {fig['faces']:5d} {fig['fill']:6.2f} {fig['real']:6.2f} "
                f"{fig['ratio']:6.2f} {fig['over_2x']:6.3f}"
            )
        else:
            print(f"{d.name:32s} no face with a changed region ({fig['skipped']} skipped)")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
