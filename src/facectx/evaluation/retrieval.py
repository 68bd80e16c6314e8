"""Identity retrieval columns of ``facectx.evaluate``: each output against a gallery of other photos.

For every scored face, its output's identity features are ranked against a gallery of the
evaluated originals holding one photo per person: the first photo by id that is neither the face
itself nor its reference (so neither the answer nor the fill's source sits in the gallery).
Every person of the evaluated set with such a photo is in the gallery, single-photo persons as
distractors. A face whose person has no photo besides the face and its reference is left out.

| column | meaning |
|---|---|
| ``id_top1`` | share of faces whose best gallery match is their own person |
| ``id_tpr`` | TPR at ``fpr``: output vs its person's gallery photo (genuine) against output vs the other persons' photos (impostors) |
| ``ret_n``, ``ret_left_out`` | faces scored / left out |
| ``ref_top1``, ``ref_tpr``, ``ref_n`` | with ``reference=cross``: the same with the *reference's* person as the target (does the output move to the reference's identity?) |
| ``ref_top5``, ``ref_rank``, ``ref_gallery`` | with ``reference=cross``: share with the reference's person among the 5 best matches, median rank of its photo (1 = best), median gallery size (the rank's scale) |

The pure metric is ``facectx.metrics.retrieval``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

RETRIEVAL_COLUMNS = (
    "id_top1",
    "id_tpr",
    "ret_n",
    "ret_left_out",
    "ref_top1",
    "ref_tpr",
    "ref_n",
    "ref_top5",
    "ref_rank",
    "ref_gallery",
)


def identity_retrieval(
    scored: Sequence[Mapping],
    features: Mapping[str, Tensor],
    originals: Mapping[str, Tensor],
    faces: Sequence[Mapping[str, str]],
    fpr: float = 0.01,
    cross: bool = False,
) -> dict:
    """The ``RETRIEVAL_COLUMNS`` of one method.

    Args:
        scored: the method's per-face rows (``id``, optional ``reference``) that were scored.
        features: face id -> identity features of the method's output.
        originals: face id -> identity features of the original (the gallery's source).
        faces: manifest rows of the evaluated set (``id``, ``person``).
        fpr: false-accept rate of the TPR columns.
        cross: also score retrieval of the reference's person (``ref_*``; else None).
    """
    from facectx.data.manifest import person_key
    from facectx.metrics.retrieval import pick_gallery, retrieval

    out: dict = dict.fromkeys(RETRIEVAL_COLUMNS)
    person = {r["id"]: person_key(r) for r in faces}
    ids = sorted(i for i in person if i in originals)  # "first" = first by id
    at = {i: k for k, i in enumerate(ids)}
    queries = [r for r in scored if r["id"] in features and r["id"] in at]
    if not ids or not queries:
        return out
    exclude = [{at[r["id"]], at.get(r.get("reference") or "", -1)} for r in queries]
    use = pick_gallery([person[i] for i in ids], exclude)
    query = torch.stack([features[r["id"]] for r in queries])
    gallery = torch.stack([originals[i] for i in ids])
    labels = [person[i] for i in ids]
    own = retrieval(query, [person[r["id"]] for r in queries], gallery, labels, fpr, use)
    out.update(id_top1=own.top1, id_tpr=own.tpr, ret_n=own.n, ret_left_out=own.left_out)
    if cross:
        refs = [person.get(r.get("reference") or "", "\0none") for r in queries]
        theirs = retrieval(query, refs, gallery, labels, fpr, use)
        out.update(ref_top1=theirs.top1, ref_tpr=theirs.tpr, ref_n=theirs.n)
        out.update(ref_top5=theirs.top5, ref_rank=theirs.median_rank, ref_gallery=theirs.gallery)
    return out


def retrieval_note(results: Sequence[Mapping], fpr: float, reference: str | None) -> str | None:
    """One line for results.md: how the gallery was built and how many faces it left out."""
    have = [r for r in results if r.get("ret_n") is not None]
    if not have:
        return None
    r = have[0]
    ref = (
        ", never the face's reference"
        if reference
        else ""  # without references only the face itself is kept out
    )
    text = (
        f"identity retrieval: each output's identity features ranked against one photo per person "
        f"of the evaluated set (the first by id that is not the face itself{ref}); "
        f"{r['ret_n']} faces scored, {r['ret_left_out']} left out (their person has no such "
        f"photo). TPR at FPR = {fpr:g}: output vs its person's gallery photo = genuine, output "
        "vs the other persons' photos = impostors."
    )
    if reference == "cross":
        text += (
            f" Ref. top-1: the same ranking with the reference's person as the target "
            f"({r['ref_n']} faces whose reference's person has another photo); Ref. rank: the "
            f"median rank of that person's photo among about {r.get('ref_gallery') or 0:.0f} "
            "(1 = best)."
        )
    return text


__all__ = ["RETRIEVAL_COLUMNS", "identity_retrieval", "retrieval_note"]
