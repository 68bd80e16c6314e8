"""The shipped SwapInpaint model: packing a checkpoint (deterministic fp16 file, EMA C and G),
loading it back without Lightning (``Inpainter.from_pretrained``, ``ckpt=pretrained``), checksum
and wrong-file errors, ``python -m facectx.export format=packed`` for SwapInpaint, and
``python -m facectx.inpaint`` without ``ckpt=``.

The real file does not exist until the LFW model is trained: these tests pack a tiny model
trained for two iterations and point the registry entry at it."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from facectx.checkpoint import CheckpointError
from facectx.inference import Inpainter
from facectx.pretrained import registry
from facectx.pretrained.inpainters import (
    DEFAULT_INPAINTER,
    PRETRAINED_INPAINTERS,
    load_packed_inpainter,
    pack_checkpoint,
)
from swapinpaint.conftest import (
    PairBatches,
    TinyIdentity,
    make_module,
    needs_dlib,
    pack_tiny_inpainter,
    point_shipped_inpainter,
    random_pairs,
    register_tiny_identity,
    tiny_trainer,
)

from .conftest import needs_sample

ENTRY = PRETRAINED_INPAINTERS[DEFAULT_INPAINTER].entry
FILENAME = registry.get_entry(ENTRY).files["weights"].filename
SIZE = 64

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained_ckpt(tmp_path_factory):
    """A tiny SwapInpaint checkpoint written by Lightning after 2 iterations (1 content, 1
    generator), with EMA weights; its identity network is ``tiny-identity``."""
    root = tmp_path_factory.mktemp("si-train")
    model = make_module(size=SIZE, identity=TinyIdentity(), content_iterations=1, ema_decay=0.9)
    trainer = tiny_trainer(root, 2)
    trainer.fit(model, PairBatches(size=SIZE))
    path = root / "last.ckpt"
    trainer.save_checkpoint(path)
    return path


@pytest.fixture
def tiny_identity_entry(monkeypatch):
    register_tiny_identity(monkeypatch)


def point_entry(monkeypatch, folder, sha256: str | None = "", **changes) -> None:
    point_shipped_inpainter(monkeypatch, folder, sha256, **changes)


@pytest.fixture
def shipped(trained_ckpt, tiny_identity_entry, tmp_path, monkeypatch):
    """The tiny checkpoint packed as the shipped file, found by the registry, checksum pinned."""
    folder = tmp_path / "weights"
    pack_checkpoint(trained_ckpt, folder / FILENAME)
    point_entry(monkeypatch, folder)
    return folder / FILENAME


def test_packing_is_deterministic_and_keeps_ema_c_and_g(trained_ckpt, tmp_path):
    _, _, a = pack_checkpoint(trained_ckpt, tmp_path / "a.pt")
    _, _, b = pack_checkpoint(trained_ckpt, tmp_path / "b.pt")
    assert registry.sha256sum(a) == registry.sha256sum(b)  # same checkpoint -> same bytes
    record = torch.load(a, weights_only=True)
    info = record["facectx"]
    assert info["kind"] == "swapinpaint" and info["dtype"] == "float16" and info["ema"]
    assert info["identity"] == {"name": "tiny-identity", "feature_dim": 16}
    assert info["size"] == SIZE and info["width"] == 1 / 16
    assert set(info["model"]) == {"content", "swap"} and "frame" in info
    state = record["state_dict"]
    assert {k.split(".")[0] for k in state} == {"content", "swap"}
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    ema = torch.load(trained_ckpt, weights_only=True)["state_dict"]
    key = next(k for k in state if k.startswith("swap.") and state[k].is_floating_point())
    assert torch.equal(state[key], ema[f"generator_ema.{key}"].half())  # the EMA weights
    loaded, _ = load_packed_inpainter(a)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())  # runs in float32


def test_the_shipped_model_reproduces_the_checkpoint(trained_ckpt, shipped):
    eager = Inpainter.from_checkpoint(trained_ckpt, identity=TinyIdentity())
    packed = Inpainter.from_pretrained("lfw-swap-128")  # I loaded by name from the registry
    assert packed.ema and packed.file == shipped and packed.size == SIZE
    assert packed.source.startswith("pretrained:lfw-swap-128@")
    b = random_pairs(4, SIZE)
    ours = packed(b["masked"], b["mask"], b["reference"])
    theirs = eager(b["masked"], b["mask"], b["reference"])
    for k in ("content", "swapped", "output"):
        diff = (ours[k] - theirs[k]).abs()
        assert diff.max() < 2e-2 and diff.mean() < 2e-3, (k, float(diff.max()))
    # every spelling of "the shipped model" loads the same file
    for ckpt in ("pretrained", "pretrained:lfw-swap-128"):
        again = Inpainter.from_checkpoint(ckpt)
        assert again.file == shipped
        assert torch.equal(again(b["masked"], b["mask"], b["reference"])["output"], ours["output"])
    # a packed file is also a checkpoint (ckpt=packed.pt)
    direct = Inpainter.from_checkpoint(shipped)
    assert direct.ema and direct(b["masked"], b["mask"], b["reference"])["output"].equal(
        ours["output"]
    )


def test_kept_pixels_are_the_inputs_exactly(shipped):
    model = Inpainter.from_pretrained()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    reference = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    keep = np.ones((SIZE, SIZE), np.float32)
    keep[20:44, 16:48] = 0
    for blend in (True, False):
        r = model.inpaint_aligned(image, keep, reference, blend=blend)
        assert np.array_equal(r.output[keep > 0], image[keep > 0])
        assert not np.array_equal(r.output[keep == 0], image[keep == 0])


def test_a_wrong_checksum_names_the_file(shipped, monkeypatch):
    point_entry(monkeypatch, shipped.parent, sha256="0" * 64)
    with pytest.raises(registry.ChecksumError, match=FILENAME):
        Inpainter.from_pretrained("lfw-swap-128")
    with pytest.raises(registry.ChecksumError, match="does not match"):
        Inpainter.from_checkpoint("pretrained")


def test_a_missing_file_is_the_registrys_error(tmp_path, monkeypatch):
    from facectx.inference.inpainter import load_inpainter

    point_entry(
        monkeypatch,
        tmp_path,
        filename="missing_inpainter.pt",
        package_path="assets/pretrained/missing_inpainter.pt",
    )
    with pytest.raises(registry.WeightsNotFoundError) as info:
        Inpainter.from_pretrained("lfw-swap-128")
    text = str(info.value)
    assert text.startswith(f"weights for '{ENTRY}'") and "missing_inpainter.pt" in text
    assert "looked in" in text and str(tmp_path) in text
    # without ckpt= the command line's loader says first how to pass a checkpoint instead
    with pytest.raises(registry.WeightsNotFoundError) as info:
        load_inpainter(None)
    first, rest = str(info.value).split("\n", 1)
    assert "ckpt=" in first and "swapinpaint_quickstart" in first and "lfw-swap-128" in first
    assert rest == text


def test_a_cascade_file_given_to_the_inpainter_is_a_clear_error(tmp_path, monkeypatch):
    from facectx.pretrained.hallucinators import pack_generator
    from facectx.zoo import CascadeGenerator

    gen = CascadeGenerator(width=0.0625)
    meta = {"kind": "cascade", "version": "test", "generator": gen.init_args(), "ema": False}
    cascade = pack_generator(gen, meta, tmp_path / FILENAME)
    with pytest.raises(CheckpointError, match="packed cascade hallucinator"):
        Inpainter.from_checkpoint(cascade)
    point_entry(monkeypatch, tmp_path)
    with pytest.raises(CheckpointError, match="not a packed facectx SwapInpaint model"):
        Inpainter.from_pretrained("lfw-swap-128")


def test_unknown_names_list_the_shipped_inpainters():
    from facectx.pretrained import UnknownModelError

    with pytest.raises(UnknownModelError) as info:
        Inpainter.from_pretrained("lfw-128")
    msg = str(info.value)
    assert "lfw-swap-128" in msg and "facectx.hallucinate" in msg  # lfw-128 hallucinates
    with pytest.raises(UnknownModelError, match="lfw-swap-128"):
        Inpainter.from_checkpoint("pretrained:no-such-model")


def test_weights_list_shows_the_entry(shipped, monkeypatch, capsys):
    from facectx.weights import main

    monkeypatch.setenv("COLUMNS", "100")  # one block per file
    assert main(["list"]) == 0
    head = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(ENTRY))
    assert "present" in head
    point_entry(
        monkeypatch,
        shipped.parent,
        filename="missing_inpainter.pt",
        package_path="assets/pretrained/missing_inpainter.pt",
    )
    assert main(["list"]) == 0
    head = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(ENTRY))
    assert "absent" in head


@needs_sample
def test_export_packs_a_swapinpaint_checkpoint_and_refuses_other_formats(
    trained_ckpt, tmp_path, compose_config
):
    from facectx.export import run
    from facectx.inference.export import export_model

    out = tmp_path / "packed.pt"
    cfg = compose_config(
        "export",
        [f"ckpt={trained_ckpt}", "format=packed", f"output={out}", "check_faces=2"],
        root=tmp_path,
    )
    report = run(cfg)
    assert report.max_abs_diff <= 5e-2 and report.size == SIZE and report.faces_checked == 4
    assert (tmp_path / "packed.pt.json").is_file()
    _, _, again = pack_checkpoint(trained_ckpt, tmp_path / "again.pt")
    assert again.read_bytes() == out.read_bytes()  # the command writes the same bytes
    with pytest.raises(ValueError, match="only as format=packed"):
        export_model(str(trained_ckpt), "torchscript", str(tmp_path / "x.pt"))


# ---- the command line without ckpt= ----------------------------------------------------------
@pytest.fixture
def shipped_128(tiny_identity_entry, tmp_path, monkeypatch):
    """A random-init 128 px tiny model packed as the shipped file (HOG finds the faces the
    command aligns into its frame)."""
    path = pack_tiny_inpainter(tmp_path / "weights" / FILENAME, 128)
    point_entry(monkeypatch, path.parent)
    return path


@needs_dlib
def test_inpaint_without_ckpt_uses_the_shipped_model(
    shipped_128, wild_photos, tmp_path, compose_config, caplog
):
    from facectx.faces.io import read_image
    from facectx.inpaint import run

    photo = wild_photos / "img5.jpg"
    out = tmp_path / "out.png"
    cfg = compose_config(
        "inpaint",
        [f"image={photo}", f"reference={photo}", "mask=facial", f"output={out}", "save_hole=true"],
        root=tmp_path,
    )
    assert cfg.ckpt is None
    with caplog.at_level(logging.INFO, logger="facectx"):
        counts = run(cfg)
    assert counts["done"] == 1
    assert any(
        "no ckpt= given" in r.getMessage() and "'lfw-swap-128'" in r.getMessage()
        for r in caplog.records
    )
    src, res = read_image(photo), read_image(out)
    hole = read_image(out.with_name("out_hole.png"))[..., 0] > 127
    assert res.shape == src.shape and hole.any()
    assert np.array_equal(res[~hole], src[~hole])


@needs_dlib
def test_a_batch_job_records_the_shipped_model(shipped_128, wild_photos, tmp_path):
    import json
    import shutil

    from facectx.inference.inpaint_jobs import inpaint_photos

    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(wild_photos / "img5.jpg", folder / "a.jpg")
    counts = inpaint_photos(
        None, str(folder), str(tmp_path / "out"), reference=str(folder / "a.jpg"), mask="center"
    )
    assert counts["done"] == 1
    text = (tmp_path / "out" / "job.json").read_text()
    assert "pretrained:lfw-swap-128@" in json.dumps(json.loads(text))


# ---- the real file, once it ships ------------------------------------------------------------
def _shipped() -> bool:
    return registry.locate(registry.get_entry(ENTRY).files["weights"]) is not None


@pytest.mark.skipif(not _shipped(), reason=f"{FILENAME} not built yet (docs/swapinpaint.md)")
@needs_dlib
def test_the_real_shipped_file_is_pinned_and_loads_offline(monkeypatch):
    monkeypatch.setenv("FACECTX_OFFLINE", "1")
    spec = registry.get_entry(ENTRY).files["weights"]
    assert spec.sha256 and len(spec.sha256) == 64, "pin the shipped file's sha256 in registry.py"
    model = Inpainter.from_pretrained()
    assert model.size == 128 and model.ema and model.frame is not None
    b = random_pairs(2, 128)
    out = model(b["masked"], b["mask"], b["reference"])["output"]
    keep = b["mask"].expand_as(out) > 0.5
    assert out.shape == (2, 3, 128, 128) and torch.allclose(out[keep], b["image"][keep])
