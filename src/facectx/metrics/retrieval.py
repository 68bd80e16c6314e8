"""Identity retrieval: does an (inpainted) face find its person in a gallery of other photos?

A cosine to one reference face barely moves between a face that carries the person and one that
does not (dlib-resnet scores nearly every aligned face above 0.8). Ranking a gallery of many
persons does discriminate, so reference-based inpainting reports top-1 retrieval and a
verification rate.

* ``pick_gallery(labels, exclude)``: for each query, one gallery photo per person, the first
  (lowest index) not in that query's ``exclude`` set; a (Q, G) boolean mask.
* ``retrieval(query, query_labels, gallery, gallery_labels, fpr, use)``: cosine of each query to
  its usable gallery photos. Top-1 = share of queries whose best-scoring photo shows the query's
  label (ties go to the lower gallery index). TPR at ``fpr``: the scores to a photo of the
  query's label are genuine, all others impostors, pooled over queries; the threshold rule is
  ``facectx.metrics.verification.tpr_at_fpr``'s (accept when score > t). Queries with no usable
  photo of their label are left out and counted. Top-5 and the median rank (1 = best) of the
  label's photo say how far a query moved toward a label that top-1 alone may not show.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Retrieval:
    """Outcome of ``retrieval``.

    Args:
        top1: share of scored queries whose best gallery match has their label (NaN if none).
        tpr: genuine acceptance at the threshold that accepts at most ``fpr`` of impostors.
        threshold: that threshold (cosine; accept when greater).
        n: queries scored.
        left_out: queries without a usable gallery photo of their label.
        top5: share of scored queries with a photo of their label among the 5 best matches.
        median_rank: median over queries of the best rank (1 = first) of a photo of their label
            among that query's usable gallery (strictly better scores count; ties favour it).
        gallery: median number of usable gallery photos per scored query (the rank's scale).
    """

    top1: float
    tpr: float
    threshold: float
    n: int
    left_out: int
    top5: float = float("nan")
    median_rank: float = float("nan")
    gallery: float = float("nan")


def pick_gallery(labels: Sequence[str], exclude: Sequence[Iterable[int]]) -> np.ndarray:
    """(Q, G) mask: for query q, the first candidate of each label whose index is not in
    ``exclude[q]`` (order the candidates first, e.g. by id, to make "first" meaningful)."""
    labels = list(labels)
    order: dict[str, list[int]] = {}
    for j, lab in enumerate(labels):
        order.setdefault(lab, []).append(j)
    use = np.zeros((len(exclude), len(labels)), dtype=bool)
    for q, skip in enumerate(exclude):
        skip = set(skip)
        for members in order.values():
            j = next((j for j in members if j not in skip), None)
            if j is not None:
                use[q, j] = True
    return use


def _unit(x: Tensor) -> Tensor:
    x = torch.as_tensor(x).double()
    if x.ndim != 2:
        raise ValueError(f"expected a (N, D) feature batch, got shape {tuple(x.shape)}")
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-300)


def retrieval(
    query: Tensor,
    query_labels: Sequence[str],
    gallery: Tensor,
    gallery_labels: Sequence[str],
    fpr: float = 0.01,
    use: np.ndarray | None = None,
) -> Retrieval:
    """Top-1 retrieval and TPR at ``fpr`` of (Q, D) ``query`` features against (G, D)
    ``gallery`` features; ``use`` (Q, G) bool limits each query's gallery (None = all)."""
    from facectx.metrics.verification import tpr_at_fpr

    q, g = _unit(query), _unit(gallery)
    if len(query_labels) != len(q) or len(gallery_labels) != len(g):
        raise ValueError(
            f"labels do not match the features: {len(query_labels)} labels for {len(q)} queries, "
            f"{len(gallery_labels)} for {len(g)} gallery photos"
        )
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"feature sizes differ: queries {q.shape[1]}, gallery {g.shape[1]}")
    use = np.ones((len(q), len(g)), bool) if use is None else np.asarray(use, bool)
    if use.shape != (len(q), len(g)):
        raise ValueError(f"use must be ({len(q)}, {len(g)}), got {use.shape}")
    sim = (q @ g.T).numpy()
    glab = np.asarray(list(gallery_labels), dtype=object)
    hits, scores, same, ranks, sizes = [], [], [], [], []
    left_out = 0
    for i, lab in enumerate(query_labels):
        cand = np.flatnonzero(use[i])
        s = sim[i, cand]
        genuine = glab[cand] == lab
        if not genuine.any():
            left_out += 1
            continue
        best = cand[np.argmax(s)]  # first maximum: the lower gallery index
        hits.append(glab[best] == lab)
        scores.extend(s.tolist())
        same.extend(genuine.tolist())
        ranks.append(1 + int((s > s[genuine].max()).sum()))
        sizes.append(len(cand))
    if not hits:
        return Retrieval(float("nan"), float("nan"), float("nan"), 0, left_out)
    tpr, threshold = tpr_at_fpr(scores, same, fpr)
    r = np.asarray(ranks)
    return Retrieval(
        float(np.mean(hits)),
        tpr,
        threshold,
        len(hits),
        left_out,
        top5=float(np.mean(r <= 5)),
        median_rank=float(np.median(r)),
        gallery=float(np.median(sizes)),
    )


__all__ = ["Retrieval", "pick_gallery", "retrieval"]
