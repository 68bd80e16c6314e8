"""Identity retrieval (``facectx.metrics.retrieval``) on hand-made embeddings with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facectx.evaluation.retrieval import identity_retrieval
from facectx.metrics.retrieval import pick_gallery, retrieval

# three persons on a circle: A east, B north, C west
GALLERY = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
LABELS = ["A", "B", "C"]
# A's query lands on A, B's query lands nearest A (a miss), C's lands on C
QUERY = torch.tensor([[1.0, 0.1], [1.0, 0.2], [-1.0, 0.5]])
QLABELS = ["A", "B", "C"]


def test_top1_counts_queries_whose_best_match_is_their_person():
    r = retrieval(QUERY, QLABELS, GALLERY, LABELS)
    assert r.top1 == 2 / 3 and r.n == 3 and r.left_out == 0


def test_tpr_at_fpr_pools_genuine_and_impostor_scores_over_queries():
    # genuine cosines 0.995 (A), 0.196 (B), 0.894 (C); the six impostors' highest is
    # B's query vs A = 1/sqrt(1.04) = 0.981, the next 0.5/sqrt(1.25) = 0.447 (C's query vs B)
    strict = retrieval(QUERY, QLABELS, GALLERY, LABELS, fpr=0.01)  # 6 impostors: accept none
    assert strict.threshold == pytest.approx(1 / math.sqrt(1.04))
    assert strict.tpr == 1 / 3  # only A's 0.995 beats it
    loose = retrieval(QUERY, QLABELS, GALLERY, LABELS, fpr=0.2)  # floor(1.2) = 1 accepted
    assert loose.threshold == pytest.approx(0.5 / math.sqrt(1.25))
    assert loose.tpr == 2 / 3


def test_rank_and_top5_say_how_near_a_missed_person_came():
    # B's query (a miss) ranks B's photo second of three: A's scores 0.981, B's 0.196, C's -0.98
    r = retrieval(QUERY, QLABELS, GALLERY, LABELS)
    assert r.median_rank == 1.0 and r.gallery == 3.0  # ranks 1, 2, 1
    assert r.top5 == 1.0  # every person is among the 5 best of a 3-photo gallery
    # 12 persons on a circle; each query sits nearest the photo 3 steps from its own, so its
    # person's photo ranks 6th or 7th (angles 3 x 30° = 90°: five photos are closer)
    angles = torch.arange(12) * (2 * math.pi / 12)
    ring = torch.stack([angles.cos(), angles.sin()], 1)
    labels = [f"p{i}" for i in range(12)]
    far = retrieval(ring.roll(-3, 0), labels, ring, labels)
    assert far.top1 == 0.0 and far.top5 == 0.0 and far.gallery == 12.0
    assert 6 <= far.median_rank <= 7
    near = retrieval(ring.roll(-1, 0), labels, ring, labels)  # one step away: rank 2 or 3
    assert near.top5 == 1.0 and near.median_rank < far.median_rank


def test_only_the_direction_of_a_feature_counts():
    a = retrieval(QUERY, QLABELS, GALLERY, LABELS, fpr=0.2)
    b = retrieval(QUERY * torch.tensor([[3.0], [0.5], [7.0]]), QLABELS, GALLERY * 4, LABELS, 0.2)
    assert (a.top1, a.tpr, a.n) == (b.top1, b.tpr, b.n)
    assert a.threshold == pytest.approx(b.threshold)


def test_queries_without_a_usable_photo_of_their_person_are_left_out():
    use = np.ones((3, 3), bool)
    use[1, 1] = False  # B's query may not see B's photo: it cannot be scored
    r = retrieval(QUERY, QLABELS, GALLERY, LABELS, use=use)
    assert (r.top1, r.n, r.left_out) == (1.0, 2, 1)
    empty = retrieval(QUERY[:1], ["D"], GALLERY, LABELS)
    assert empty.n == 0 and empty.left_out == 1 and math.isnan(empty.top1)


def test_the_gallery_mask_limits_what_a_query_is_ranked_against():
    use = np.ones((3, 3), bool)
    use[1, 0] = False  # without A's photo, B's query finds B
    r = retrieval(QUERY, QLABELS, GALLERY, LABELS, use=use)
    assert r.top1 == 1.0


def test_a_tie_goes_to_the_lower_gallery_index():
    gallery = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    q = torch.tensor([[1.0, 0.0]])
    assert retrieval(q, ["X"], gallery, ["X", "Y"]).top1 == 1.0
    assert retrieval(q, ["Y"], gallery, ["X", "Y"]).top1 == 0.0


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="labels"):
        retrieval(QUERY, ["A"], GALLERY, LABELS)
    with pytest.raises(ValueError, match="feature sizes"):
        retrieval(torch.ones(3, 3), QLABELS, GALLERY, LABELS)
    with pytest.raises(ValueError, match="use must be"):
        retrieval(QUERY, QLABELS, GALLERY, LABELS, use=np.ones((2, 3), bool))


def test_pick_gallery_takes_each_persons_first_photo_not_excluded():
    use = pick_gallery(["a", "a", "b", "b", "c"], [{0}, {0, 1}, {2, 4}])
    assert use.tolist() == [
        [False, True, True, False, True],  # a: photo 0 is the query -> photo 1
        [False, False, True, False, True],  # a: both photos excluded -> no a
        [True, False, False, True, False],  # b -> photo 3; c: its only photo excluded
    ]


def test_the_gallery_never_holds_the_face_or_its_reference():
    """Person P has photos p1 < p2 < p3 (by id): p1 filled from p2 must be found through p3;
    an output equal to the reference would otherwise be retrieved for free."""
    faces = [
        {"id": "p1", "person": "P"},
        {"id": "p2", "person": "P"},
        {"id": "p3", "person": "P"},
        {"id": "q1", "person": "Q"},
        {"id": "q2", "person": "Q"},
    ]
    e = torch.eye(4)
    originals = {"p1": e[0], "p2": e[1], "p3": e[2], "q1": e[3], "q2": e[3] + e[1]}
    # an output near its reference p2 (cosine 0.89) but off P's other photo p3 (0) and towards
    # Q's q1 (0.45): with p2 in the gallery it would be a hit, without it is a miss
    out = identity_retrieval(
        [{"id": "p1", "reference": "p2"}], {"p1": e[1] + 0.5 * e[3]}, originals, faces
    )
    assert out["id_top1"] == 0.0 and out["ret_n"] == 1 and out["ret_left_out"] == 0
    assert out["ref_top1"] is None  # reference's person only with cross=True
    # q1 with reference q2 has no other photo of Q: left out; q2's cross reference p1 is kept
    # out of the gallery, P's next photo p2 stands for P
    out = identity_retrieval(
        [{"id": "q1", "reference": "q2"}, {"id": "q2", "reference": "p1"}],
        {"q1": e[3], "q2": e[1]},
        originals,
        faces,
        cross=True,
    )
    assert (out["ret_n"], out["ret_left_out"]) == (1, 1)
    assert out["id_top1"] == 0.0  # q2's output is p2's direction: ranked P over Q's q1
    assert out["ref_top1"] == 1.0 and out["ref_n"] == 1  # Q (q1's reference's) has no photo
    assert out["ref_rank"] == 1.0 and out["ref_top5"] == 1.0 and out["ref_gallery"] == 2.0
