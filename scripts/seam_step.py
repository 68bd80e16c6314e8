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
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch

from facectx.evaluation.external import saved_output_batches
from facectx.metrics.image import edge_strength

BANDS = ("edge", "halo")


def bands(keep: np.ndarray, valid: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(edge, halo) boolean bands of a kept-face mask, inside the eroded valid region."""

    def disc(r: int) -> np.ndarray:
        return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))

    inside = cv2.erode(valid, disc(3)).astype(bool)
    edge = cv2.dilate(keep, disc(width)).astype(bool) & ~cv2.erode(keep, disc(width)).astype(bool)
    halo = cv2.dilate(keep, disc(8)).astype(bool) & ~cv2.dilate(keep, disc(2)).astype(bool)
    return edge & inside, halo & inside


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("eval_dir", type=Path, help="a facectx.evaluate folder run with save_outputs")
    ap.add_argument("--root", type=Path, help="prepared folder (default: settings.json's root)")
    ap.add_argument("--width", type=int, default=2, help="px either side of the mask edge")
    args = ap.parse_args(argv)
    ratios: dict[str, dict[str, list[float]]] = defaultdict(lambda: {b: [] for b in BANDS})
    for method, batch, out, good in saved_output_batches(args.eval_dir, args.root):
        keep = (batch["mask"][:, 0] > 0.5).numpy().astype(np.uint8)
        valid = (batch["valid"][:, 0] > 0.5).numpy().astype(np.uint8)
        per_face = [bands(k, v, args.width) for k, v in zip(keep, valid)]
        for i, name in enumerate(BANDS):
            r = torch.from_numpy(np.stack([b[i] for b in per_face]))[:, None].float()
            o, t = edge_strength(out, r), edge_strength(batch["image"], r)
            scored = good & (r.flatten(1).sum(1) >= 30) & (t > 1e-6)
            ratios[method][name] += (o / t)[scored].tolist()
    print(f"{'method':28s} {'faces':>5s} {'edge':>6s} {'>1.5':>6s} {'halo':>6s} {'>1.5':>6s}")
    summary = {}
    for method in sorted(ratios):
        fig: dict = {"faces": len(ratios[method]["edge"])}
        for name, vals in ratios[method].items():
            a = np.asarray(vals)
            fig[name] = float(np.median(a)) if len(a) else float("nan")
            fig[f"{name}_over_1.5"] = float((a > 1.5).mean()) if len(a) else float("nan")
        summary[method] = fig
        print(
            f"{method:28s} {fig['faces']:5d} {fig['edge']:6.2f} {fig['edge_over_1.5']:6.3f} "
            f"{fig['halo']:6.2f} {fig['halo_over_1.5']:6.3f}"
        )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
