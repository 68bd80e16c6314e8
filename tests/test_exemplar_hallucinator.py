"""``ExemplarHallucinator``: the exemplar model run from a packed bank, with the interface of
``Hallucinator`` plus ``samples`` (K portraits per face from K exemplars) and ``seed``. The bank
is packed from the embedded sample (no identity features) and loaded with ``path=``, as the
shipped file would be."""

from __future__ import annotations

import dataclasses
import logging

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facectx.assets import sample_root
from facectx.data.datasets import PreparedFaces
from facectx.inference import Hallucinator, load_hallucinator
from facectx.inference.exemplar import ExemplarHallucinator, pack_bank
from facectx.pixels import to_uint8
from facectx.pretrained import registry
from facectx.pretrained.hallucinators import PRETRAINED

pytestmark = pytest.mark.usefixtures("one_thread")

NAME = "exemplar-lfw-128"


@pytest.fixture(scope="module")
def bank_file(tmp_path_factory):
    weights = {"shape": 1.0, "colour": 1.0, "hull": 1.0, "coverage": 1.0}
    out = tmp_path_factory.mktemp("bank") / "bank.pt"
    return pack_bank(sample_root(), out, feature=None, weights=weights, progress=False).path


@pytest.fixture(scope="module")
def faces():
    """Four sample faces: masked, mask, landmarks, valid and the uint8 pictures."""
    data = PreparedFaces(sample_root(), split="train")
    items = [data[j] for j in (3, 40, 90, 150)]
    out = {k: torch.stack([it[k] for it in items]) for k in ("masked", "mask", "landmarks")}
    out["valid"] = torch.stack([it["valid"] for it in items])
    out["images"] = list(to_uint8(torch.stack([it["image"] for it in items])))
    return out


def _model(bank_file, **options) -> ExemplarHallucinator:
    return ExemplarHallucinator.from_file(bank_file, **options)


def _pin(monkeypatch, sha256: str | None) -> None:
    """Point the shipped bank's registry entry at ``sha256`` (None = unchecked), size unchecked:
    the tests load a small bank of the embedded sample under the shipped name."""
    entry = registry.get_entry(PRETRAINED[NAME].entry)
    spec = dataclasses.replace(entry.files["bank"], sha256=sha256, size=None)
    monkeypatch.setitem(
        registry._REGISTRY, entry.name, dataclasses.replace(entry, files={"bank": spec})
    )


def test_loaders_give_the_exemplar_model_for_a_bank(bank_file, monkeypatch):
    _pin(monkeypatch, None)
    for model in (
        Hallucinator.from_pretrained(NAME, path=bank_file, samples=2),
        ExemplarHallucinator.from_file(bank_file, samples=2),
        load_hallucinator(str(bank_file), samples=2),
    ):
        assert isinstance(model, ExemplarHallucinator)
        assert model.size == 128 and model.samples == 2 and model.sampling
        assert model.frame == {"size": 128, "eye_distance": 0.27, "eye_y": 0.43}
        assert model.ema is False and model.file is not None
    assert Hallucinator.from_pretrained(NAME, path=bank_file).source.startswith(
        f"pretrained:{NAME}@"
    )
    assert PRETRAINED[NAME].kind == "exemplar" and PRETRAINED["lfw-128"].kind == "cascade"


def test_a_pinned_checksum_is_checked(bank_file, monkeypatch):
    _pin(monkeypatch, "0" * 64)
    with pytest.raises(registry.ChecksumError, match="does not match"):
        Hallucinator.from_pretrained(NAME, path=bank_file)


def test_k_samples_are_k_exemplars_with_the_face_kept(bank_file, faces):
    model = _model(bank_file, samples=3, pool=1)
    masked, mask = faces["masked"], faces["mask"]
    out = model(masked, mask, landmarks=faces["landmarks"], valid=faces["valid"])
    assert out.shape == (4, 3, 3, 128, 128) and out.min() >= -1 and out.max() <= 1
    keep = model.kept(masked, mask)[:, None].expand_as(out) > 0.5
    assert torch.equal(out[keep], masked[:, None].expand_as(out)[keep])
    hole = (mask < 0.5).expand(-1, 3, -1, -1)
    for a, b in ((0, 1), (0, 2), (1, 2)):  # three different contexts per face
        assert ((out[:, a] - out[:, b]).abs()[hole] > 0.05).float().mean() > 0.3
    one = _model(bank_file, pool=1)(
        masked, mask, landmarks=faces["landmarks"], valid=faces["valid"]
    )
    assert one.shape == (4, 3, 128, 128)
    assert torch.equal(one, out[:, 0])  # pool 1: the first sample is the best-ranked exemplar


def test_same_seed_same_portraits_other_seed_others(bank_file, faces):
    images, keeps = faces["images"], list(faces["mask"][:, 0].numpy())
    extra = {
        "landmarks": list(faces["landmarks"].numpy()),
        "valid": list(faces["valid"][:, 0].numpy()),
    }
    model = _model(bank_file, samples=3, top=40)  # more than the pool × K fitted
    first = model.hallucinate_uint8(images, keeps, **extra)
    assert first.shape == (4, 3, 128, 128, 3) and first.dtype == np.uint8
    kept = model.kept(faces["masked"], faces["mask"])[:, 0].numpy() > 0.5
    keep = np.broadcast_to(kept[:, None, :, :, None], first.shape)
    given = np.broadcast_to(np.stack(images)[:, None], first.shape)
    assert np.array_equal(first[keep], given[keep])  # face pixels exact, in every sample
    again = _model(bank_file, samples=3, top=40).hallucinate_uint8(images, keeps, **extra)
    assert np.array_equal(first, again)
    assert np.array_equal(first, model.hallucinate_uint8(images, keeps, **extra, seed=0))
    assert not np.array_equal(first, model.hallucinate_uint8(images, keeps, **extra, seed=1))
    # a face gets the same portraits in any batch
    alone = model.hallucinate_uint8(
        images[2:3], keeps[2:3], landmarks=extra["landmarks"][2:3], valid=extra["valid"][2:3]
    )
    assert np.array_equal(alone[0], first[2])
    # top <= samples: the best by rank, whatever the seed
    ranked = _model(bank_file, samples=3)
    assert np.array_equal(
        ranked.hallucinate_uint8(images, keeps), ranked.hallucinate_uint8(images, keeps, seed=5)
    )


def test_without_landmarks_the_shape_term_is_dropped_and_said_once(bank_file, faces, caplog):
    model = _model(bank_file)
    with caplog.at_level(logging.INFO, logger="facectx"):
        out = model(faces["masked"], faces["mask"])
        model(faces["masked"], faces["mask"])
    assert out.shape == (4, 3, 128, 128)
    assert sum("without the shape term" in r.getMessage() for r in caplog.records) == 1


def test_the_cascade_refuses_several_samples_and_names_the_exemplar_model(bank_file):
    from facectx.inference.hallucinator import cascade_generator
    from facectx.zoo import CascadeGenerator

    with pytest.raises(ValueError, match=r"deterministic.*exemplar-lfw-128"):
        Hallucinator(CascadeGenerator(width=0.0625), samples=2)
    with pytest.raises(ValueError, match="deterministic"):
        Hallucinator.from_pretrained("lfw-128", samples=3)
    cascade = Hallucinator(CascadeGenerator(width=0.0625))
    masked, mask = torch.zeros(1, 3, 128, 128), torch.ones(1, 1, 128, 128)
    with pytest.raises(ValueError, match="deterministic"):
        cascade(masked, mask, samples=2)
    assert cascade(masked, mask, samples=1).shape == (1, 3, 128, 128)
    with pytest.raises(ValueError, match="exemplar model"):
        cascade_generator(_model(bank_file), "augment")


def test_the_shipped_bank_loads_offline_with_its_pinned_checksum():
    """The default portrait model ships in the package: found, sha256-verified, loaded."""
    model = Hallucinator.from_pretrained()
    assert isinstance(model, ExemplarHallucinator) and model.size == 128
    assert model.source.startswith(f"pretrained:{NAME}@853c62dcddd2")
    assert len(model.packed.bank) == 3363
    # with its context harmoniser, trained 7,000 iterations, and the pool of 4 with accept 26
    assert model.packed.meta["harmoniser"] == {"width": 1.0, "scale": 2, "iteration": 7000}
    assert model.model.harmoniser is not None
    assert model.model.pool == 4 and model.model.accept == 26.0


def test_the_hulls_dark_rim_gets_context_and_the_rest_stays(bank_file, faces):
    """A shadow on the keep-mask's edge (the hull's staircase past the jaw) is not pasted
    back as a dotted line: those pixels get context; every other face pixel is exact."""
    images = [im.copy() for im in faces["images"]]
    keeps = list(faces["mask"][:, 0].numpy())
    extra = {
        "landmarks": list(faces["landmarks"].numpy()),
        "valid": list(faces["valid"][:, 0].numpy()),
    }
    m = torch.from_numpy(keeps[0] > 0).float()[None, None]
    edge = (m[0, 0] > 0) & (F.max_pool2d(1 - m, 3, 1, 1)[0, 0] > 0)  # kept, next to the hole
    edge[: edge.shape[0] // 2] = False  # the lower half: along the jaw
    images[0][edge.numpy()] = 10  # near black
    out = _model(bank_file).hallucinate_uint8(images, keeps, **extra)
    assert (out[0][edge.numpy()].astype(int).mean(-1) > 40).mean() > 0.9  # covered by context
    off = _model(bank_file, rim=0.0).hallucinate_uint8(images, keeps, **extra)
    assert (off[0][edge.numpy()] == 10).all()  # rim=0: every kept pixel stays, dark or not
    kept = _model(bank_file).kept(faces["masked"][:1], faces["mask"][:1])[0, 0].numpy() > 0.5
    inner = kept & ~edge.numpy()  # what the sample face itself keeps, less the painted rim
    assert np.array_equal(out[0][inner], images[0][inner])
    core = cv2.distanceTransform((keeps[0] > 0).astype(np.uint8), cv2.DIST_L2, 5) > 2
    assert kept[core].all()  # beyond 2 px from the edge nothing is ever dropped


def test_pool_keeps_the_face_and_names_itself_in_the_digest(bank_file, faces, monkeypatch):
    """pool > 1: the K portraits are the best-meeting of pool × K fits; the face stays exact and
    the digest (what job records compare) changes, as it does with the fitting code's revision;
    pool 1 is the plain model's digest."""
    extra = {"landmarks": faces["landmarks"], "valid": faces["valid"]}
    masked, mask = faces["masked"], faces["mask"]
    plain, pooled = _model(bank_file, samples=2, pool=1), _model(bank_file, samples=2, pool=3)
    a, b = plain(masked, mask, **extra), pooled(masked, mask, **extra)
    assert a.shape == b.shape == (4, 2, 3, 128, 128)
    keep = pooled.kept(masked, mask)[:, None].expand_as(b) > 0.5
    assert torch.equal(b[keep], masked[:, None].expand_as(b)[keep])
    assert not torch.equal(a, b)  # another choice for at least one face
    assert pooled.digest() != plain.digest()
    assert plain.digest() == _model(bank_file, samples=2, pool=1, accept=None).digest()
    # accept changes the pick, so it names itself too; without a pool it changes nothing
    assert _model(bank_file, samples=2, pool=3, accept=None).digest() != pooled.digest()
    # the shipped default: a pool of 4 with accept 26
    assert (
        _model(bank_file, samples=2).digest()
        == _model(bank_file, samples=2, pool=4, accept=26.0).digest()
    )
    # a revision of the fitting code gives other portraits from the same bank file
    import facectx.inference.exemplar as module

    before = plain.digest()
    monkeypatch.setattr(module, "FIT_REVISION", module.FIT_REVISION + 1)
    assert plain.digest() != before


def test_the_banks_harmoniser_relights_only_the_context(faces, tmp_path):
    """A bank holding a harmoniser: its portraits keep the face pixels the plain fit keeps,
    change the context, and name the choice in the digest."""
    from facectx.checkpoint import CheckpointMeta
    from facectx.zoo.harmoniser import ContextHarmoniser

    net = ContextHarmoniser(width=0.25)
    torch.nn.init.normal_(net.head.weight, std=0.05)  # a harmoniser that does something
    meta = CheckpointMeta("harmoniser", {"width": 0.25, "scale": 2}, iteration=1)
    state = {f"generator.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "facectx": meta.to_dict()}, tmp_path / "h.ckpt")
    weights = {"shape": 1.0, "colour": 1.0, "hull": 1.0, "coverage": 1.0}
    bank = pack_bank(
        sample_root(),
        tmp_path / "bank.pt",
        feature=None,
        weights=weights,
        progress=False,
        harmoniser=tmp_path / "h.ckpt",
    ).path
    on, off = _model(bank), _model(bank, harmoniser=False)
    args = (faces["masked"], faces["mask"])
    kw = {"landmarks": faces["landmarks"], "valid": faces["valid"]}
    a, b = on(*args, **kw), off(*args, **kw)
    kept = on.kept(*args).expand_as(a) > 0.5
    assert torch.equal(a[kept], b[kept]) and torch.equal(a[kept], faces["masked"][kept])
    assert (a - b).abs()[~kept].mean() > 1e-3
    assert on.digest() != off.digest()
