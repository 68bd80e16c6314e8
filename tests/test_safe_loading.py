"""A crafted checkpoint runs no code through any load path, whatever the environment says, and
no error message advises the unsafe ``weights_only=False``."""

from __future__ import annotations

import os

import pytest
import torch

from facectx.inference import CheckpointError, Hallucinator, load_checkpoint


def _evil(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "facectx": {"kind": "cascade"}, "x": Evil()}, path)
    return path, marker


def _inpainter(path):
    from facectx.inference import Inpainter

    return Inpainter.from_checkpoint(path)


def _export(path):
    from facectx.inference.export import export_model

    return export_model(str(path), format="packed", output=str(path) + ".out")


def _evaluate(path):
    from facectx.evaluation.external import CheckpointMethod

    return CheckpointMethod(path).setup(128, torch.device("cpu"))


def _swapinpaint_evaluate(path):
    from facectx.evaluation.swapinpaint import SwapInpaintMethod

    return SwapInpaintMethod(path).setup(128, torch.device("cpu"))


def _evaluate_dispatch(path):
    from facectx.evaluation.swapinpaint import checkpoint_kind

    return checkpoint_kind(path)


def _hallucinate_cli_loader(path):
    from facectx.inference import load_hallucinator

    return load_hallucinator(str(path))


@pytest.mark.parametrize(
    "load",
    [
        load_checkpoint,
        Hallucinator.from_checkpoint,
        _inpainter,
        _export,
        _hallucinate_cli_loader,
        _evaluate,
        _swapinpaint_evaluate,
        _evaluate_dispatch,
    ],
    ids=[
        "load_checkpoint",
        "Hallucinator",
        "Inpainter",
        "export",
        "load_hallucinator",
        "evaluate",
        "evaluate_swapinpaint",
        "evaluate_dispatch",
    ],
)
def test_crafted_checkpoint_is_refused_without_running_code(tmp_path, monkeypatch, load):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    path, marker = _evil(tmp_path)
    with pytest.raises(CheckpointError, match="refusing to load checkpoint") as info:
        load(path)
    assert not marker.exists()
    assert "weights_only=False" not in str(info.value)
    assert str(path) in str(info.value)


def test_a_truncated_checkpoint_names_the_file_in_one_line(tmp_path):
    path = tmp_path / "last.ckpt"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="cannot read checkpoint") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
