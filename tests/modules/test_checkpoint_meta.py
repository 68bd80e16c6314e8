"""The typed checkpoint record (``facectx.checkpoint.CheckpointMeta``): it round-trips through a
file, every model kind writes one with the training data's frame, and the dicts written before
the record existed still read."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from facectx.checkpoint import CheckpointError, CheckpointMeta, check_finished, read_meta
from facectx.losses import CascadeLoss
from facectx.modules.cascade import CascadeGAN
from facectx.modules.progan import ProGAN
from facectx.zoo import CascadeGenerator, CasiaDiscriminator
from swapinpaint.conftest import make_module as make_swapinpaint

FRAME = {"size": 64, "eye_distance": 0.3, "eye_y": 0.4}


def _cascade() -> CascadeGAN:
    loss = CascadeLoss(identity=None, lpips=None)
    gen = CascadeGenerator(sizes=(8, 16), width=1 / 16)
    return CascadeGAN(gen, lambda size: CasiaDiscriminator(size, width=1 / 16), loss)


def _progan() -> ProGAN:
    loss = CascadeLoss(identity=None, lpips=None)
    return ProGAN(
        lambda size: CasiaDiscriminator(size, width=1 / 16),
        loss,
        generator_width=1 / 16,
        final_size=16,
        ema_decay=0.9,
    )


class PreparedFolder:
    """The part of ``FaceDataModule`` the record reads: the prepared folder with meta.json."""

    def __init__(self, root) -> None:
        self.root = root

    def resolve_root(self):
        return self.root


def _saved(module: nn.Module, tmp_path) -> dict:
    """What ``Trainer.save_checkpoint`` stores, read back as a file is read."""
    (tmp_path / "meta.json").write_text(json.dumps({"frame": FRAME, "version": "0.1.0"}))
    module._trainer = SimpleNamespace(datamodule=PreparedFolder(tmp_path))
    ckpt = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(ckpt)
    module._trainer = None
    torch.save(ckpt, tmp_path / "x.ckpt")
    return torch.load(tmp_path / "x.ckpt", weights_only=True)


def test_the_record_round_trips_through_a_file(tmp_path):
    meta = CheckpointMeta(
        kind="swapinpaint",
        init_args={"size": 64, "content": {"width": 0.5}},
        ema=True,
        frame=FRAME,
        iteration=12,
        version="0.1.0",
        extra={"stage": "generator", "identity": {"name": "x", "feature_dim": 16}},
    )
    torch.save({"facectx": meta.to_dict()}, tmp_path / "m.pt")
    loaded = torch.load(tmp_path / "m.pt", weights_only=True)
    assert loaded["facectx"]["model"] == meta.init_args  # the key files have always used
    assert read_meta(loaded, tmp_path / "m.pt", "swapinpaint") == meta
    with pytest.raises(ValueError, match="overwrite"):
        CheckpointMeta(kind="cascade", init_args={}, extra={"frame": None})


@pytest.mark.parametrize("kind", ["cascade", "progan", "swapinpaint"])
def test_every_model_kind_records_its_training_frame(tmp_path, kind):
    module = {"cascade": _cascade, "progan": _progan, "swapinpaint": make_swapinpaint}[kind]()
    ckpt = _saved(module, tmp_path)
    meta = read_meta(ckpt, "x.ckpt")
    assert meta.frame == FRAME and meta.iteration == 0 and meta.version
    if kind == "swapinpaint":
        assert meta.kind == "swapinpaint" and meta.init_args == module.generator.config
        assert meta.extra["identity"] == {"name": "tiny-identity", "feature_dim": 16}
        assert set(meta.extra) == {"identity", "schedule", "stage", "content_iterations"}
    else:
        assert meta.kind == "cascade" and meta.init_args == module.generator.init_args()
        # the keys every reader has always used stay where they were
        assert ckpt["facectx"]["generator"] == meta.init_args and "frame" in ckpt["facectx"]
    if kind == "progan":
        assert meta.ema and meta.extra["progan"]["size"] == 8
        with pytest.raises(CheckpointError, match="before the network grew"):
            check_finished("x.ckpt", meta)


def test_a_record_written_before_the_typed_one_still_reads():
    old_cascade = {
        "facectx": {
            "kind": "cascade",
            "version": "0.1.0",
            "generator": {"sizes": [8, 16], "width": 0.0625},
            "ema": False,
        }
    }
    meta = read_meta(old_cascade, "old.ckpt", "cascade")
    assert meta.init_args == {"sizes": [8, 16], "width": 0.0625}
    assert meta.frame is None and meta.iteration is None and meta.extra == {}
    old_swapinpaint = {
        "facectx": {
            "kind": "swapinpaint",
            "model": {"size": 64},
            "identity": {"name": "x", "feature_dim": 16},
            "ema": True,
            "stage": "generator",
            "iteration": 7,
        }
    }
    meta = read_meta(old_swapinpaint, "old.ckpt", "swapinpaint")
    assert meta.ema and meta.iteration == 7 and meta.frame is None and meta.version is None
    assert meta.extra == {"identity": {"name": "x", "feature_dim": 16}, "stage": "generator"}
    # written back, the dict has the keys it had (and the ones the record adds)
    assert old_swapinpaint["facectx"].items() <= meta.to_dict().items()


@pytest.mark.parametrize(
    "checkpoint, message",
    [
        ({"state_dict": {}}, "no facectx metadata"),
        ({"facectx": "cascade"}, "no facectx metadata"),
        ({"facectx": {"kind": "swapinpaint", "model": {}}}, "says kind 'swapinpaint'"),
        ({"facectx": {"generator": {}}}, "no model kind recorded"),
        ({"facectx": {"kind": "cascade"}}, "incomplete: no 'generator' entry"),
    ],
)
def test_a_missing_wrong_or_old_record_is_one_clear_error(checkpoint, message):
    with pytest.raises(CheckpointError, match=message) as info:
        read_meta(checkpoint, "some.ckpt", "cascade")
    text = str(info.value)
    assert "\n" not in text and text.startswith("some.ckpt is not a facectx cascade checkpoint")


def test_an_unknown_iteration_is_left_out_so_packed_files_keep_their_bytes():
    """Packed generator files (``export format=packed``) never had an ``iteration`` key; the
    record must not add one, or a repack of the shipped model's checkpoint changes its sha256."""
    from facectx.checkpoint import CheckpointMeta

    meta = CheckpointMeta(kind="cascade", init_args={"sizes": [128]}, frame=None, version="x")
    assert list(meta.to_dict()) == ["kind", "version", "generator", "ema", "frame"]
    with_it = CheckpointMeta(kind="cascade", init_args={"sizes": [128]}, iteration=7)
    assert with_it.to_dict()["iteration"] == 7
