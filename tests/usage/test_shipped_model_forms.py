"""Every tool reads ``ckpt=`` the same way: nothing or ``pretrained`` = the default shipped model,
``pretrained:NAME`` = that one, anything else a file. ``inpaint``'s shipped model is a
SwapInpaint one: a hallucinator's name, or no ``ckpt=`` while its file is missing, is one line
that names ``ckpt=`` and how to get a checkpoint."""

from __future__ import annotations

import sys

import pytest

from facectx.assets import sample_root
from facectx.inference.hallucinator import pretrained_name
from facectx.inference.inpainter import inpainter_name
from facectx.pretrained.hallucinators import DEFAULT_PRETRAINED
from facectx.pretrained.inpainters import DEFAULT_INPAINTER
from swapinpaint.conftest import hide_shipped_inpainter


def test_one_reading_of_ckpt_for_every_tool(tmp_path):
    for read, default in (
        (pretrained_name, DEFAULT_PRETRAINED),
        (inpainter_name, DEFAULT_INPAINTER),
    ):
        assert read(None) == read("") == read("pretrained") == default
        assert read("pretrained:lfw-128") == "lfw-128"
        assert read(tmp_path / "pretrained.ckpt") is None  # a file, whatever its name
        assert read("runs/x/checkpoints/last.ckpt") is None


@pytest.mark.parametrize("ckpt", [[], ["ckpt=pretrained:lfw-128"]], ids=["no ckpt", "pretrained"])
def test_inpaint_without_a_swapinpaint_model_is_one_line(ckpt, tmp_path, monkeypatch, cli_error):
    from facectx import inpaint

    hide_shipped_inpainter(monkeypatch)  # the file is missing until the LFW model ships

    face = next((sample_root() / "images").iterdir())
    args = [f"image={face}", f"reference={face}", f"output={tmp_path / 'out.png'}"]
    args += [f"hydra.run.dir={tmp_path / 'run'}", *ckpt]
    monkeypatch.setattr(sys, "argv", ["facectx-inpaint", *args])
    error, _ = cli_error(inpaint.main)
    assert "ckpt=" in error and "swapinpaint_quickstart" in error, error
