"""Face verification on image pairs: TPR at a fixed FPR, and accuracy at a threshold.

A pair is declared "same person" when its score (higher = more similar, e.g. the cosine of two
identity features) is **strictly greater** than a threshold t.

* ``tpr_at_fpr(scores, same, fpr)``: with N negative (different-person) pairs, allow
  k = floor(fpr * N) false accepts; t is the (k+1)-th largest negative score, the lowest
  threshold that accepts at most k negatives. Returns (TPR, t), TPR = fraction of positive
  pairs scoring above t. With few negatives the operating point is coarse: at fpr = 0.01,
  200 negatives give k = 2 (t = the third-highest negative score), and below 100 negatives
  k = 0 (t = the highest negative score).
* ``best_threshold(scores, same)``: the t (a midpoint between consecutive distinct scores, or
  +-inf) that maximises accuracy; ties go to the lowest such t. Returns (t, accuracy).
* ``accuracy(scores, same, t)``: fraction of pairs classified correctly at t.

``read_pairs`` reads LFW's ``pairs.csv`` (``image_a,image_b,same``) and ``pairs_in_set`` maps its
image names onto evaluated face ids, keeping the pairs that lie wholly in the set.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np


def _arrays(scores: Iterable[float], same: Iterable[bool]) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(list(scores), dtype=np.float64)
    y = np.asarray(list(same), dtype=bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D of equal length: {s.shape} vs {y.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN; drop those pairs first")
    return s, y


def tpr_at_fpr(
    scores: Iterable[float], same: Iterable[bool], fpr: float = 0.01
) -> tuple[float, float]:
    """(TPR, threshold) at the lowest threshold whose false-accept rate is <= ``fpr``."""
    s, y = _arrays(scores, same)
    neg, pos = np.sort(s[~y])[::-1], s[y]
    if len(neg) == 0 or len(pos) == 0:
        return float("nan"), float("nan")
    k = math.floor(fpr * len(neg) + 1e-9)
    t = float(neg[k]) if k < len(neg) else -math.inf
    return float((pos > t).mean()), t


def accuracy(scores: Iterable[float], same: Iterable[bool], threshold: float) -> float:
    """Fraction of pairs with ``(score > threshold) == same``."""
    s, y = _arrays(scores, same)
    if len(s) == 0:
        return float("nan")
    return float(((s > threshold) == y).mean())


def best_threshold(scores: Iterable[float], same: Iterable[bool]) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy; candidates are midpoints and +-inf."""
    s, y = _arrays(scores, same)
    if len(s) == 0:
        return float("nan"), float("nan")
    u = np.unique(s)
    candidates = np.concatenate([[-math.inf], (u[:-1] + u[1:]) / 2, [math.inf]])
    accs = np.array([((s > t) == y).mean() for t in candidates])
    i = int(np.argmax(accs))
    return float(candidates[i]), float(accs[i])


def read_pairs(path: str | os.PathLike) -> list[tuple[str, str, bool]]:
    """Rows of an LFW-style ``pairs.csv`` (columns ``image_a,image_b,same``)."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"image_a", "image_b", "same"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(
                f"{path} lacks the column(s) {sorted(missing)}; expected image_a,image_b,same "
                "(LFW's pairs.csv)"
            )
        return [
            (r["image_a"], r["image_b"], r["same"].strip().lower() in ("1", "true", "yes"))
            for r in reader
        ]


def pairs_in_set(
    pairs: Iterable[tuple[str, str, bool]], image_to_id: Mapping[str, str]
) -> list[tuple[str, str, bool]]:
    """Pairs whose two images both map to an evaluated face id, as ``(id_a, id_b, same)``.

    ``image_to_id`` maps a photo's file name (a manifest ``source``, e.g. ``Name_0001.jpg``;
    only its base name is compared) to the id of the photo's face 0.
    """
    by_name = {Path(k).name: v for k, v in image_to_id.items()}
    out = []
    for a, b, same in pairs:
        ia, ib = by_name.get(Path(a).name), by_name.get(Path(b).name)
        if ia is not None and ib is not None:
            out.append((ia, ib, same))
    return out


__all__ = ["accuracy", "best_threshold", "pairs_in_set", "read_pairs", "tpr_at_fpr"]
