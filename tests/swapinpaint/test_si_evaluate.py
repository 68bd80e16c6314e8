"""SwapInpaint in ``facectx.evaluate``: reference pairs, the Table I rows and their baselines."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from facectx.blend import poisson_blend
from facectx.data.manifest import read_manifest
from facectx.data.pairs import PairedFaces
from facectx.evaluation.harness import Evaluator, Instruments
from facectx.evaluation.swapinpaint import PasteReference, SwapInpaintMethod, blend_batch
from facectx.evaluation.tables import results_markdown
from facectx.masks import FacialMask, OcularMask
from facectx.pixels import to_uint8

from .conftest import TinyIdentity, needs_dlib, needs_sample, swapinpaint_checkpoint


def _sample():
    from pathlib import Path

    from facectx.assets import sample_root

    return Path(sample_root())


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@needs_sample
def test_pairs_carry_the_references_landmarks():
    ds = PairedFaces(_sample(), mask=OcularMask(), same_share=0.0, seed=3)
    for i in (0, 7, 50):
        item = ds[i]
        ref = ds.faces[int(item["reference_index"])]
        assert torch.equal(item["reference_landmarks"], ref["landmarks"])
        assert torch.equal(item["reference"], ref["image"])
        assert item["same"] == 0 and item["person"] != ref["person"]


def test_blending_ignores_what_the_hole_held():
    """With the default 5 px margin the black hole of the masked input gives the same result as
    the ground truth would (nothing leaks into the evaluation), and known pixels stay exact."""
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    source = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    mask = torch.ones(2, 1, 64, 64)
    mask[:, :, 20:44, 16:40] = 0
    masked = image * mask - (1 - mask)
    a = blend_batch(masked, source, mask, dilate=5)
    b = blend_batch(image, source, mask, dilate=5)
    assert torch.equal(a, b)
    # a smaller margin lets OpenCV's eroded clone mask read inside the hole
    assert not torch.equal(
        blend_batch(masked, source, mask, dilate=3), blend_batch(image, source, mask, dilate=3)
    )
    known = mask.expand_as(a) > 0.5
    q = torch.from_numpy(to_uint8(image)).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert torch.equal(a[known], q[known])
    one = poisson_blend(to_uint8(image)[0], to_uint8(source)[0], mask[0, 0] < 0.5)
    assert np.array_equal(to_uint8(a)[0], one)


@needs_sample
def test_reference_methods_need_references():
    ev = Evaluator(_sample(), split="train", limit=4, progress=False, num_samples=0)
    with pytest.raises(ValueError, match="reference=cross"):
        ev.run([PasteReference()])
    with pytest.raises(ValueError, match="reference must be one of"):
        Evaluator(_sample(), split="train", limit=4, reference="other")


@needs_sample
@needs_dlib
def test_table_one_rows_on_cross_pairs(tmp_path):
    """The model, X̂ alone and the pasted reference: known pixels exact, the identity column is
    the cosine to the reference, the paste without blending copies the reference's pixels."""
    ckpt = swapinpaint_checkpoint(tmp_path / "si.ckpt", 128, 128, "dlib-resnet")
    ev = Evaluator(
        _sample(),
        split="train",
        mask=FacialMask(),
        instruments=Instruments(identity=TinyIdentity()),
        limit=6,
        batch_size=4,
        reference="cross",
        output_dir=tmp_path,
        save_outputs=True,
        num_samples=2,
        progress=False,
    )
    methods = [
        SwapInpaintMethod(ckpt, name="si"),
        SwapInpaintMethod(ckpt, name="si/content", output="content"),
        PasteReference(name="paste", blend=False),
    ]
    result = ev.run(methods)
    rows = {r["method"]: r for r in result.rows}
    assert set(rows) == {"originals", "si", "si/content", "paste"}
    assert rows["si/content"]["kind"] == "baseline" and rows["si"]["kind"] == "checkpoint"
    for r in rows.values():
        assert r["n"] == 6 and np.isfinite(r["id_ref"]) and r["same"] == 0.0
    per = [r for r in result.per_image if r["method"] == "paste"]
    by_id = {r["id"]: r for r in read_manifest(_sample())}
    for r in per:
        assert r["reference"] != r["id"] and by_id[r["reference"]]["person"] != r["person"]
    # outputs keep the known pixels; the plain paste holds the reference in the hole
    for face in result.per_image[:6]:
        fid, ref_id = face["id"], face["reference"]
        orig = np.asarray(Image.open(_sample() / by_id[fid]["image"]).convert("RGB"))
        ref = np.asarray(Image.open(_sample() / by_id[ref_id]["image"]).convert("RGB"))
        lm = torch.from_numpy(np.load(_sample() / by_id[fid]["landmarks"])).float()
        hole = (FacialMask()(128, lm, torch.Generator().manual_seed(0))[0] < 0.5).numpy()
        for name in ("si", "si/content", "paste"):
            out = np.asarray(
                Image.open(tmp_path / "outputs" / name.replace("/", "_") / f"{fid}.png")
            )
            assert np.array_equal(out[~hole], orig[~hole]), (name, fid)
            assert not np.array_equal(out[hole], orig[hole]), (name, fid)
        paste = np.asarray(Image.open(tmp_path / "outputs" / "paste" / f"{fid}.png"))
        assert np.array_equal(paste[hole], ref[hole])
    md = results_markdown(result)
    assert "to the reference face's (cross pairs" in md and "Reference faces: cross" in md


@needs_sample
@needs_dlib
def test_cli_rows_from_a_swapinpaint_checkpoint(tmp_path):
    from facectx.evaluate import run
    from metrics.helpers import compose_eval

    ckpt = swapinpaint_checkpoint(tmp_path / "si.ckpt", 128, 128, "dlib-resnet")
    cfg = compose_eval(
        tmp_path,
        [
            f"ckpt={{swapinpaint:{ckpt}}}",
            "reference=same",
            "mask=ocular",
            "method=[paste_reference]",
            "split=train",
            "limit=4",
            "fid.enabled=false",
            "landmarks.enabled=false",
            "num_samples=2",
        ],
    )
    result = run(cfg)
    rows = {r["method"]: r for r in result.rows}
    assert list(rows) == ["originals", "paste_reference", "swapinpaint", "swapinpaint/content"]
    per = _read(tmp_path / "eval" / "per_image.csv")
    assert {r["reference"] for r in per} and all(r["id_ref"] for r in per)
    assert result.settings["key"]["reference"] == "same"
    # same-person references where the person has a second photo
    same = [r for r in per if r["method"] == "originals" and float(r["same"]) == 1.0]
    assert all(r["reference"].rsplit("_", 2)[0] == r["person"] for r in same)
