"""FaceDataModule: batches, pyramids, worker/epoch determinism, val fallback, configs."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from synthetic_faces import FACES, SIZE

from facectx._conf import config_dir
from facectx.data.datamodule import FaceDataModule, holdout
from facectx.data.manifest import ManifestError
from facectx.masks import CenterMask, IrregularMask, MaskSampler
from facectx.zoo.pyramid import build_pyramid

SIZES = (8, 16, 32, 64)


def make_dm(root, **kw) -> FaceDataModule:
    args = {"root": root, "batch_size": 4, "pyramid_sizes": SIZES, "seed": 0}
    args.update(kw)
    return FaceDataModule(**args)


def first_batch(dm: FaceDataModule, loader) -> dict:
    batch = next(iter(loader))
    return dm.on_after_batch_transfer(batch, 0)


def test_training_batch_and_inference_give_the_same_pyramid(prepared_root, monkeypatch):
    """The pyramid a training batch carries is exactly the one CascadeGenerator.hallucinate
    builds from the same face at inference (one builder, facectx.zoo.pyramid)."""
    from facectx.zoo import CascadeGenerator

    dm = make_dm(prepared_root)
    dm.setup("fit")
    batch = first_batch(dm, dm.val_dataloader())
    gen = CascadeGenerator(sizes=SIZES, width=1 / 16)
    seen = {}
    real_trace = gen.trace

    def spy(pyramid, *a, **k):
        seen.update(pyramid)
        return real_trace(pyramid, *a, **k)

    monkeypatch.setattr(gen, "trace", spy)
    with torch.inference_mode():
        gen.hallucinate(batch["masked"], batch["mask"])
    assert sorted(seen) == sorted(batch["pyramid"]) == list(SIZES)
    for s in SIZES:
        for key in ("masked", "mask"):
            assert torch.equal(seen[s][key], batch["pyramid"][s][key]), (s, key)


def test_batch_spec(prepared_root):
    dm = make_dm(prepared_root, mask=IrregularMask())
    dm.setup("fit")
    batch = first_batch(dm, dm.train_dataloader())
    b = 4
    assert batch["image"].shape == (b, 3, SIZE, SIZE) and batch["mask"].shape == (b, 1, SIZE, SIZE)
    assert batch["masked"].shape == (b, 3, SIZE, SIZE) and batch["valid"].shape == (
        b,
        1,
        SIZE,
        SIZE,
    )
    assert batch["landmarks"].shape == (b, 68, 2)
    assert batch["person"].dtype == torch.int64 and batch["person"].shape == (b,)
    assert batch["index"].dtype == torch.int64 and len(batch["id"]) == b
    assert batch["image"].min() >= -1 and batch["image"].max() <= 1
    keep = batch["mask"].expand_as(batch["image"]) == 1
    assert torch.equal(batch["masked"][keep], batch["image"][keep])
    assert (batch["masked"][~keep] == -1).all()

    pyr = batch["pyramid"]
    assert sorted(pyr) == list(SIZES)
    for s in SIZES:
        assert set(pyr[s]) == {"image", "masked", "mask", "valid"}
        assert pyr[s]["image"].shape == (b, 3, s, s) and pyr[s]["masked"].shape == (b, 3, s, s)
        assert pyr[s]["mask"].shape == (b, 1, s, s)
        assert set(pyr[s]["mask"].unique().tolist()) <= {0.0, 1.0}
        cell_known = torch.nn.functional.avg_pool2d(batch["mask"], SIZE // s) == 1
        assert torch.equal(pyr[s]["mask"].bool(), cell_known)  # 1 only where the cell is all 1
    assert pyr[SIZE]["image"] is batch["image"] and pyr[SIZE]["mask"] is batch["mask"]


def test_build_pyramid_resamples_antialiased():
    img = torch.rand(2, 3, 32, 32) * 2 - 1
    mask = torch.ones(2, 1, 32, 32)
    pyr = build_pyramid(img, img, mask, [16, 8, 32])
    assert list(pyr) == [8, 16, 32] and "valid" not in pyr[8]
    want = torch.nn.functional.interpolate(
        img, size=(8, 8), mode="bilinear", antialias=True, align_corners=False
    )
    assert torch.allclose(pyr[8]["image"], want) and torch.equal(
        pyr[8]["mask"], torch.ones(2, 1, 8, 8)
    )
    with pytest.raises(ValueError, match="size 64"):
        build_pyramid(img, img, mask, [64])
    with pytest.raises(ValueError, match="mask"):
        build_pyramid(img, img, mask[:, :, :16], [8])


def _epoch(dm: FaceDataModule, epoch: int) -> dict[str, tuple]:
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)  # what Lightning does at the start of every epoch
    out = {}
    for batch in loader:
        for i, fid in enumerate(batch["id"]):
            out[fid] = (batch["mask"][i], batch["image"][i], batch["landmarks"][i])
    return out


def test_same_items_with_0_or_2_workers_and_new_ones_each_epoch(prepared_root):
    mask = MaskSampler(
        {"center": 0.5, "irregular": 0.5},
        {"center": CenterMask(jitter=0.1), "irregular": IrregularMask()},
    )
    dm0 = make_dm(prepared_root, mask=mask, mirror=True, drop_last=False, num_workers=0)
    dm2 = make_dm(
        prepared_root,
        mask=mask,
        mirror=True,
        drop_last=False,
        num_workers=2,
        persistent_workers=True,
        batch_size=3,
    )  # other batches, stale workers
    dm0.setup("fit")
    dm2.setup("fit")
    a0, b0 = _epoch(dm0, 0), _epoch(dm2, 0)
    a1, b1 = _epoch(dm0, 1), _epoch(dm2, 1)
    assert sorted(a0) == sorted(b0) and len(a0) == len(dm0.train_set)
    for fid in a0:
        for x, y in zip(a0[fid], b0[fid]):
            assert torch.equal(x, y), fid
        for x, y in zip(a1[fid], b1[fid]):
            assert torch.equal(x, y), fid
    assert sum(not torch.equal(a0[f][0], a1[f][0]) for f in a0) >= len(a0) - 1  # masks change
    assert any(not torch.equal(a0[f][1], a1[f][1]) for f in a0)  # some flips change


@pytest.mark.filterwarnings("ignore:You passed in a `val_dataloader`")
def test_trainer_sets_the_epoch_and_builds_pyramids(prepared_root):
    class Probe(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))
            self.seen: list[tuple[int, str, torch.Tensor]] = []

        def training_step(self, batch, batch_idx):
            assert sorted(batch["pyramid"]) == list(SIZES)
            for fid, m in zip(batch["id"], batch["mask"]):
                self.seen.append((self.current_epoch, fid, m))
            return (self.w - 1) ** 2

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = make_dm(prepared_root, mask=IrregularMask(), batch_size=5, val_fraction=0.0)
    probe = Probe()
    trainer = pl.Trainer(
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(probe, datamodule=dm)
    by_epoch = [{fid: m for e, fid, m in probe.seen if e == k} for k in (0, 1)]
    assert len(by_epoch[0]) == len(by_epoch[1]) == 10
    assert all(not torch.equal(m, by_epoch[1][f]) for f, m in by_epoch[0].items())
    ds = dm.train_set
    f = next(iter(by_epoch[1]))
    assert torch.equal(by_epoch[1][f], ds[(1, [r["id"] for r in ds.rows].index(f))]["mask"])


def test_splits_and_predict_order(prepared_root):
    dm = make_dm(prepared_root)
    dm.setup("fit")
    dm.setup("predict")
    assert len(dm.train_set) == 10 and len(dm.val_set) == 2
    assert not dm.val_set.mirror and dm.train_set.mirror
    ids = [fid for batch in dm.predict_dataloader() for fid in batch["id"]]
    assert ids == [f"{p}_{i:04d}" for i, (p, s) in enumerate(FACES) if s == "test"]
    assert len(dm.train_dataloader()) == 10 // 4  # drop_last


def test_val_fallback_holds_out_persons(prepared_root):
    dm = make_dm(prepared_root, val_split="nope", val_fraction=0.25, seed=1)
    dm.setup("fit")
    train_p = {r["person"] for r in dm.train_set.rows}
    val_p = {r["person"] for r in dm.val_set.rows}
    assert val_p and not (train_p & val_p)
    assert len(dm.train_set) + len(dm.val_set) == 10
    again = make_dm(prepared_root, val_split="nope", val_fraction=0.25, seed=1)
    again.setup("fit")
    assert [r["id"] for r in again.val_set.rows] == [r["id"] for r in dm.val_set.rows]


def test_holdout_without_persons():
    rows = [{"id": str(i), "person": ""} for i in range(20)]
    train, val = holdout(rows, 0.1, seed=0)
    assert len(val) == 2 and len(train) == 18
    assert holdout(rows, 0.1, seed=0) == (train, val)
    assert holdout(rows, 0.0, seed=0) == (rows, [])


def test_train_split_null_uses_rows_outside_val_and_test(prepared_root):
    dm = make_dm(prepared_root, train_split=None)
    dm.setup("fit")
    assert len(dm.train_set) == 10 and len(dm.val_set) == 2


def test_clear_errors(prepared_root):
    with pytest.raises(ManifestError, match=r"splits present: \['test', 'train', 'val'\]"):
        make_dm(prepared_root, train_split="nope").setup("fit")
    with pytest.raises(ValueError, match="pyramid_sizes"):
        make_dm(prepared_root, pyramid_sizes=(8, 128)).setup("fit")


def test_hydra_configs_compose_and_instantiate(prepared_root):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        for kind, cls in (
            ("hull", "FaceHullMask"),
            ("center", "CenterMask"),
            ("irregular", "IrregularMask"),
            ("facial", "FacialMask"),
            ("ocular", "OcularMask"),
            ("mixed", "MaskSampler"),
        ):
            cfg = compose(overrides=[f"+mask={kind}"])
            mask = instantiate(cfg.mask)
            assert type(mask).__name__ == cls
            lm = torch.from_numpy(__import__("synthetic_faces").template_landmarks(64))
            assert mask(64, lm, torch.Generator().manual_seed(0)).shape == (1, 64, 64)
        for data in ("sample", "folder", "lfw"):
            over = [f"+data={data}", "+mask=mixed", "+seed=7", "data.pyramid_sizes=[8,16,32,64]"]
            if data != "sample":
                over.append(f"data.root={prepared_root}")
            dm = instantiate(compose(overrides=over).data)
            assert isinstance(dm, FaceDataModule) and dm.seed == 7
            assert isinstance(dm.mask, MaskSampler)
        assert dm.num_workers > 0 and dm.root == str(prepared_root)
        dm.setup("fit")
        assert len(dm.train_set) == 10


def test_embedded_sample_is_the_default_root():
    try:
        from facectx.assets import sample_root

        sample_root()
    except (ImportError, FileNotFoundError) as e:
        pytest.skip(f"embedded sample not available: {e}")
    dm = FaceDataModule(batch_size=4, mask=IrregularMask())  # root=None
    dm.setup("fit")
    assert dm.val_set is not None  # the sample has no val split: persons are held out
    assert not {r["person"] for r in dm.train_set.rows} & {r["person"] for r in dm.val_set.rows}
    batch = first_batch(dm, dm.train_dataloader())
    assert batch["image"].shape == (4, 3, 128, 128) and sorted(batch["pyramid"]) == [
        8,
        16,
        32,
        64,
        128,
    ]
    # real landmarks: after mirroring the subject's right eye is still on the image left
    item = dm.train_set[0]
    assert item["landmarks"][36:42, 0].mean() < 64 < item["landmarks"][42:48, 0].mean()
