"""Pair data: deterministic under a seed, same-person flags that match the persons, the asked
share of same-person pairs where persons have second photos, and the data module's batches."""

from __future__ import annotations

import torch

from facectx.data.pairs import PairDataModule, PairedFaces, pair_generator
from facectx.masks import CenterMask, IrregularMask, MaskSampler

from .conftest import needs_sample


def _mixed() -> MaskSampler:
    return MaskSampler(
        {"center": 0.5, "irregular": 0.5}, {"center": CenterMask(), "irregular": IrregularMask()}
    )


def _sample():
    from facectx.assets import sample_root

    return sample_root()


@needs_sample
def test_pairs_are_deterministic_and_change_with_the_epoch():
    ds = PairedFaces(_sample(), mask=_mixed(), mirror=True, seed=3)
    a, b = ds[(2, 7)], ds[(2, 7)]
    for k in ("image", "mask", "reference", "same", "reference_index"):
        assert torch.equal(a[k], b[k])
    again = PairedFaces(_sample(), mask=_mixed(), mirror=True, seed=3)[(2, 7)]
    assert torch.equal(again["reference"], a["reference"])
    refs = {int(ds[(e, 7)]["reference_index"]) for e in range(8)}
    assert len(refs) > 1  # new pairs every epoch


@needs_sample
def test_same_flag_matches_persons_and_share_follows_the_data():
    ds = PairedFaces(_sample(), same_share=1.0)
    n_same = 0
    for i in range(len(ds)):  # the draw alone (no image I/O): fast
        ref, same = ds.draw_reference(i, pair_generator(0, 0, i))
        assert (ds.rows[i]["person"] == ds.rows[ref]["person"]) == same
        assert ref != i  # never the image itself unless same_image=True
        n_same += int(same)
    it = ds[(0, 5)]
    assert bool(it["same"]) == (
        ds.rows[5]["person"] == ds.rows[int(it["reference_index"])]["person"]
    )
    assert it["reference"].shape == it["image"].shape
    stats = ds.statistics()
    assert stats["faces_with_second_photo"] == 132 and stats["persons"] == 114
    # with same_share=1 exactly the faces with a second photo get a same-person reference
    assert n_same == 132

    never = PairedFaces(_sample(), same_share=0.0)
    assert not any(never.draw_reference(i, pair_generator(1, 0, i))[1] for i in range(len(never)))
    half = PairedFaces(_sample(), same_share=0.5)
    share = sum(half.draw_reference(i, pair_generator(2, 0, i))[1] for i in range(len(half)))
    assert abs(share / len(half) - half.statistics()["expected_same_share"]) < 0.1

    itself = PairedFaces(_sample(), same_share=1.0, same_image=True)
    lone = next(i for i in range(len(itself)) if len(itself._group_of[i]) == 1)
    it = itself[(0, lone)]
    assert int(it["reference_index"]) == lone and bool(it["same"])


def test_different_person_draw_skips_the_group():
    ds = object.__new__(PairedFaces)
    ds.same_share, ds.same_image = 0.0, False
    ds.faces = type("F", (), {"__len__": lambda self: 8})()
    group = [2, 5]
    ds._group_of = [group if i in group else [i] for i in range(8)]
    seen = set()
    for s in range(200):
        j, same = ds.draw_reference(2, torch.Generator().manual_seed(s))
        assert not same and j not in group and 0 <= j < 8
        seen.add(j)
    assert seen == {0, 1, 3, 4, 6, 7}


@needs_sample
def test_data_module_batches_hold_pairs_without_a_pyramid():
    dm = PairDataModule(batch_size=4, mask=_mixed(), seed=0)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    batch = dm.on_after_batch_transfer(batch, 0)
    assert "pyramid" not in batch
    assert batch["reference"].shape == batch["image"].shape == (4, 3, 128, 128)
    assert batch["same"].shape == (4,) and batch["mask"].shape == (4, 1, 128, 128)
    assert len(batch["reference_id"]) == 4
    val_persons = {r["person"] for r in dm.val_set.rows}
    train_persons = {r["person"] for r in dm.train_set.rows}
    assert not val_persons & train_persons
