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
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch

from facectx.evaluation.external import saved_output_batches
from facectx.metrics.image import colour_detail
from facectx.pixels import to_uint8


def changed_region(out: np.ndarray, orig: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels the output changed, closed (5x5) and eroded 2 px."""
    ch = (np.abs(out.astype(int) - orig.astype(int)).max(-1) > 2).astype(np.uint8)
    square = np.ones((5, 5), np.uint8)
    ch = cv2.morphologyEx(ch, cv2.MORPH_CLOSE, square)
    return cv2.erode(ch, square).astype(bool)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("eval_dir", type=Path, help="a facectx.evaluate folder run with save_outputs")
    ap.add_argument("--root", type=Path, help="prepared folder (default: settings.json's root)")
    args = ap.parse_args(argv)
    fills: dict[str, list[float]] = defaultdict(list)
    reals: dict[str, list[float]] = defaultdict(list)
    for method, batch, out, good in saved_output_batches(args.eval_dir, args.root):
        real = batch["image"]
        regions = np.stack([changed_region(o, t) for o, t in zip(to_uint8(out), to_uint8(real))])
        r = torch.from_numpy(regions)[:, None].float()
        scored = good & (r.flatten(1).sum(1) >= 50)
        fills[method] += colour_detail(out, r)[scored].tolist()
        reals[method] += colour_detail(real, r)[scored].tolist()
    print(f"{'method':32s} {'faces':>5s} {'fill':>6s} {'real':>6s} {'ratio':>6s} {'>2x':>6s}")
    summary = {}
    for method in sorted(fills):
        f, t = np.asarray(fills[method]), np.asarray(reals[method])
        if not len(f):
            print(f"{method:32s} no face with a changed region")
            continue
        fig = {
            "faces": len(f),
            "fill": float(f.mean()),
            "real": float(t.mean()),
            "ratio": float(f.mean() / t.mean()),
            "over_2x": float((f > 2 * t).mean()),
        }
        summary[method] = fig
        print(
            f"{method:32s} {fig['faces']:5d} {fig['fill']:6.2f} {fig['real']:6.2f} "
            f"{fig['ratio']:6.2f} {fig['over_2x']:6.3f}"
        )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
