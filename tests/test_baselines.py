"""Every baseline on 20 real LFW test faces: face pixels kept exactly, context filled."""

from __future__ import annotations

import pytest
import torch

from facectx.evaluation import CvInpaint, MaskOnly, MeanContext, NearestNeighbour
from metrics.helpers import prepared_lfw_test

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache folder for the module: training features are computed once."""
    return tmp_path_factory.mktemp("baseline_cache")


@pytest.fixture(scope="session")
def lfw_test20(tmp_path_factory, lfw_split_images):
    return prepared_lfw_test(tmp_path_factory, lfw_split_images, 20)


@pytest.fixture(scope="module")
def batch(lfw_test20):
    from torch.utils.data import DataLoader

    from facectx.data.datasets import PreparedFaces

    faces = PreparedFaces(lfw_test20, split="test")
    b = next(iter(DataLoader(faces, batch_size=len(faces), shuffle=False)))
    b["person_name"] = [faces.rows[int(i)].get("person", "") for i in b["index"]]
    return b


def _check(method, batch, tmp_path):
    method.setup(128, torch.device("cpu"))
    pred = method.predict(batch)
    out, mask, masked = pred.images, batch["mask"], batch["masked"]
    assert out.shape == masked.shape and out.dtype == torch.float32
    assert pred.problems == [None] * len(out)
    assert out.min() >= -1 and out.max() <= 1
    face = mask.expand_as(out) > 0.5
    assert torch.equal(out[face], masked[face])  # known pixels exactly
    return out, ~face & (batch["valid"].expand_as(out) > 0.5)


def test_mask_only_keeps_the_black_context(batch, tmp_path):
    out, ctx = _check(MaskOnly(), batch, tmp_path)
    assert torch.equal(out, batch["masked"])
    assert (out[ctx] == -1).all()


@pytest.mark.parametrize(
    "make",
    [
        lambda d: MeanContext(),
        lambda d: CvInpaint("telea", 5.0),
        lambda d: CvInpaint("ns", 5.0),
        lambda d: NearestNeighbour(cache_dir=str(d)),
    ],
    ids=["mean_context", "telea", "navier_stokes", "nearest_neighbour"],
)
def test_baselines_fill_the_context(make, batch, cache, tmp_path):
    method = make(cache)
    out, ctx = _check(method, batch, tmp_path)
    changed = (out[ctx] != batch["masked"][ctx]).float().mean()
    assert changed > 0.9, f"{method.name} left {1 - changed:.0%} of the context black"


def test_mean_context_is_cached_and_reused(tmp_path, monkeypatch):
    first = MeanContext(cache_dir=str(tmp_path))
    first.setup(128, torch.device("cpu"))
    cached = list(tmp_path.glob("mean_context-*.pt"))
    assert len(cached) == 1 and cached[0].with_suffix(".png").is_file()

    def recompute(self, faces):
        raise AssertionError("the cached mean should have been read")

    monkeypatch.setattr(MeanContext, "compute", recompute)
    again = MeanContext(cache_dir=str(tmp_path))
    again.setup(128, torch.device("cpu"))
    assert torch.equal(again.mean, first.mean)


def test_nearest_neighbour_never_returns_the_face_itself(cache):
    """Evaluated on its own training set, it must pick another person's face."""
    from torch.utils.data import DataLoader

    from facectx.assets import sample_root
    from facectx.data.datasets import PreparedFaces

    faces = PreparedFaces(sample_root(), split="train")
    b = next(iter(DataLoader(faces, batch_size=6, shuffle=False)))
    b["person_name"] = [faces.rows[int(i)]["person"] for i in b["index"]]
    nn = NearestNeighbour(cache_dir=str(cache))
    nn.setup(128, torch.device("cpu"))
    pred = nn.predict(b)
    for face_id, person, note in zip(b["id"], b["person_name"], pred.notes):
        chosen = note.split()[0].removeprefix("neighbour=")
        assert chosen != face_id and not chosen.startswith(person + "_0")


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="algorithm"):
        CvInpaint("fast")
    with pytest.raises(ValueError, match="radius"):
        CvInpaint("telea", 0)
