"""Packed generators and the pretrained model shipped inside the package."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from facectx.inference import CheckpointError, Hallucinator, load_hallucinator
from facectx.inference.export import export_model, sample_faces
from facectx.pretrained import registry
from facectx.pretrained.hallucinators import PRETRAINED, load_packed, pack_generator
from facectx.zoo import CascadeGenerator

from .conftest import needs_sample

ENTRY = PRETRAINED["lfw-128"].entry


def _tiny(seed: int = 0) -> CascadeGenerator:
    torch.manual_seed(seed)
    return CascadeGenerator(width=0.0625)


def _meta(gen: CascadeGenerator) -> dict:
    return {"kind": "cascade", "version": "test", "generator": gen.init_args(), "ema": True}


def test_pack_is_deterministic_and_round_trips_in_float16(tmp_path):
    gen = _tiny()
    a = pack_generator(gen, _meta(gen), tmp_path / "a.pt")
    b = pack_generator(gen, _meta(gen), tmp_path / "b.pt")
    assert a.read_bytes() == b.read_bytes()  # same weights -> same sha256
    loaded, meta = load_packed(a)
    assert meta["dtype"] == "float16" and meta["generator"] == gen.init_args()
    for (k, v), (k2, v2) in zip(gen.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and v2.dtype == v.dtype  # runs in float32 after loading
        assert torch.allclose(v, v2, rtol=1e-3, atol=1e-4)
    assert a.stat().st_size < 0.6 * sum(v.numel() * 4 for v in gen.state_dict().values())


def test_from_pretrained_with_an_explicit_file_and_a_pinned_checksum(tmp_path, monkeypatch):
    gen = _tiny()
    path = pack_generator(gen, _meta(gen), tmp_path / "m.pt")
    digest = registry.sha256sum(path)
    entry = registry.get_entry(ENTRY)
    spec = dataclasses.replace(entry.files["weights"], sha256=digest, size=None)
    monkeypatch.setitem(
        registry._REGISTRY, ENTRY, dataclasses.replace(entry, files={"weights": spec})
    )
    h = Hallucinator.from_pretrained("lfw-128", path=path)
    assert h.size == 128 and h.ema and "lfw-128" in h.source
    masked = torch.rand(2, 3, 128, 128) * 2 - 1
    mask = torch.zeros(2, 1, 128, 128)
    mask[..., 40:90, 40:90] = 1
    out = h(masked, mask)
    assert torch.equal(out[..., 40:90, 40:90], masked[..., 40:90, 40:90].clamp(-1, 1))

    spec = dataclasses.replace(spec, sha256="0" * 64)
    monkeypatch.setitem(
        registry._REGISTRY, ENTRY, dataclasses.replace(entry, files={"weights": spec})
    )
    with pytest.raises(registry.ChecksumError, match="does not match"):
        Hallucinator.from_pretrained("lfw-128", path=path)


def test_unknown_pretrained_name_lists_the_shipped_ones():
    with pytest.raises(KeyError, match="lfw-128"):
        Hallucinator.from_pretrained("no-such-model")


def test_a_training_checkpoint_is_not_a_packed_file(tmp_path):
    torch.save({"state_dict": {}, "facectx": {"kind": "cascade"}}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="packed"):
        load_packed(tmp_path / "x.pt")


@needs_sample
def test_export_packed_from_a_checkpoint_loads_as_ckpt(tmp_path, tiny_ckpt):
    out = tmp_path / "packed.pt"
    report = export_model(str(tiny_ckpt), "packed", str(out), check_faces=4)
    assert report.max_abs_diff <= 5e-2
    masked, mask = sample_faces(2)
    ref = Hallucinator.from_checkpoint(tiny_ckpt)(masked, mask)
    got = load_hallucinator(str(out))(masked, mask)
    assert (got - ref).abs().mean() < 5e-3
    # exporting the same checkpoint again reproduces the file byte for byte
    again = export_model(str(tiny_ckpt), "packed", str(tmp_path / "again.pt"), check_faces=0)
    assert (tmp_path / "again.pt").read_bytes() == out.read_bytes() and again.size == 128


def _shipped() -> bool:
    return registry.locate(registry.get_entry(ENTRY).files["weights"]) is not None


needs_shipped = pytest.mark.skipif(not _shipped(), reason="pretrained lfw-128 file not built")


@needs_shipped
def test_shipped_model_loads_offline_with_its_pinned_checksum(monkeypatch):
    monkeypatch.setenv("FACECTX_OFFLINE", "1")
    spec = registry.get_entry(ENTRY).files["weights"]
    assert spec.sha256 and len(spec.sha256) == 64, "the shipped file's sha256 must be pinned"
    path = registry.resolve(ENTRY)
    assert registry.sha256sum(path) == spec.sha256
    assert path.stat().st_size <= 25 * 2**20
    h = load_hallucinator(None)  # what the CLIs use without ckpt=
    assert "lfw-128" in h.source and h.frame is not None
    masked, mask = sample_faces(4)
    out = h(masked, mask)
    assert out.shape == (4, 3, 128, 128)
    keep = mask.expand_as(out) > 0.5
    assert torch.equal(out[keep], masked[keep])
    assert out[~keep].std() > 0.1  # context is painted, not left black or flat


def test_photo_in_portraits_out_with_the_shipped_model(wild_photos):
    """The README's few lines: a photo file to a hallucinated portrait, face pixels untouched."""
    import numpy as np

    h = Hallucinator.from_pretrained("lfw-128")
    photo = wild_photos / "couple.jpg"
    portraits = h.hallucinate_photo(photo, faces="all")
    faces = h.prepare_photo(photo, faces="all")
    assert len(portraits) == len(faces) >= 2
    for portrait, face in zip(portraits, faces):
        assert portrait.shape == (128, 128, 3) and portrait.dtype == np.uint8
        keep = (face.mask * face.valid).astype(bool)
        assert np.array_equal(portrait[keep], face.image[keep])
        assert portrait[~keep].std() > 5  # context was drawn, not left black
    blank = np.full((200, 200, 3), 127, np.uint8)
    assert h.hallucinate_photo(blank) == []
