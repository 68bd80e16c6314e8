"""Identity retrieval in SwapInpaint's evaluation: real dlib-resnet features on the embedded sample.

The cosine to the reference barely separates a face that carries its person from one that does
not; ranking a gallery of other photos must.
"""

from __future__ import annotations

from collections import Counter

from facectx.data.manifest import read_manifest
from facectx.evaluation.baselines import CvInpaint
from facectx.evaluation.harness import Evaluator, Instruments
from facectx.evaluation.swapinpaint import PasteReference, SwapInpaintMethod
from facectx.evaluation.tables import results_markdown
from facectx.masks import FacialMask

from .conftest import needs_dlib, needs_sample, swapinpaint_checkpoint

LIMIT = 40  # the sample's first 40 faces: 8 persons with 2+ photos, 6 of them with 3+


def _run(reference: str, methods):
    from facectx.assets import sample_root
    from facectx.pretrained import load

    ev = Evaluator(
        sample_root(),
        split="train",
        mask=FacialMask(),
        instruments=Instruments(identity=load("dlib-resnet")),
        limit=LIMIT,
        batch_size=20,
        reference=reference,
        num_samples=0,
        progress=False,
    )
    result = ev.run(methods)
    faces = read_manifest(sample_root(), "train")[:LIMIT]
    photos = Counter(r["person"] for r in faces)
    return result, {r["method"]: r for r in result.rows}, [photos[r["person"]] for r in faces]


@needs_sample
@needs_dlib
def test_same_person_references_retrieval_separates_what_the_cosine_does_not(tmp_path):
    ckpt = swapinpaint_checkpoint(tmp_path / "si.ckpt", 128, 128, "dlib-resnet")
    methods = [
        CvInpaint("ns"),
        PasteReference(),
        SwapInpaintMethod(ckpt, name="si"),
        SwapInpaintMethod(ckpt, name="si/content", output="content"),
    ]
    result, rows, photos = _run("same", methods)
    # the face and its reference are two photos of the person: a third must be in the gallery
    scorable = sum(n >= 3 for n in photos)
    assert 0 < scorable < LIMIT
    for r in rows.values():
        assert (r["ret_n"], r["ret_left_out"]) == (scorable, LIMIT - scorable)
        assert r["ref_top1"] is None  # the reference's person is the face's own
        assert r["id_top1"] <= rows["originals"]["id_top1"]
    orig, ns = rows["originals"], rows["navier_stokes"]
    assert orig["id_top1"] == 1.0 and orig["id_tpr"] == 1.0
    # a smooth fill of eyes, nose and mouth loses the person far more often than the cosine says
    assert orig["id_top1"] - ns["id_top1"] > 0.1 > abs(orig["id_ref"] - ns["id_ref"])
    assert ns["id_tpr"] < orig["id_tpr"]
    md = results_markdown(result)
    assert "| Top-1 ↑ | TPR@FPR=0.01 ↑ |" in md and "Top-1 ref." not in md
    assert f"{scorable} faces scored, {LIMIT - scorable} left out" in md


@needs_sample
@needs_dlib
def test_cross_references_also_score_retrieval_of_the_references_person():
    result, rows, photos = _run("cross", [CvInpaint("ns"), PasteReference()])
    scorable = sum(n >= 2 for n in photos)  # the reference is another person's photo
    orig, ns, paste = rows["originals"], rows["navier_stokes"], rows["paste_reference"]
    for r in rows.values():
        assert r["ret_n"] == scorable and r["ref_n"] > 0
    # pasting the reference's eyes, nose and mouth moves the face towards the reference's person
    # and away from its own; the untouched face almost never ranks the reference's person first
    assert paste["ref_top1"] > max(ns["ref_top1"], orig["ref_top1"])
    assert orig["ref_top1"] < 0.1
    assert paste["id_top1"] < orig["id_top1"]
    md = results_markdown(result)
    assert "Top-1 ref." in md and "reference's person as the target" in md


@needs_sample
def test_without_identity_features_there_are_no_retrieval_columns():
    from facectx.assets import sample_root

    ev = Evaluator(sample_root(), split="train", limit=4, num_samples=0, progress=False)
    row = ev.run([CvInpaint("ns")]).rows[0]
    assert row["id_top1"] is None and row["ret_n"] is None
