"""Every tool reads ``ckpt=`` the same way: nothing or ``pretrained`` = the default shipped model,
``pretrained:NAME`` = that one, anything else a file. ``inpaint`` has no shipped model and says
so in one line that names ``ckpt=`` and how to get a checkpoint."""

from __future__ import annotations

import sys

import pytest

from facectx.assets import sample_root
from facectx.inference.hallucinator import pretrained_name
from facectx.pretrained.hallucinators import DEFAULT_PRETRAINED


def test_one_reading_of_ckpt_for_every_tool(tmp_path):
    assert pretrained_name(None) == pretrained_name("") == DEFAULT_PRETRAINED
    assert pretrained_name("pretrained") == DEFAULT_PRETRAINED
    assert pretrained_name("pretrained:lfw-128") == "lfw-128"
    assert pretrained_name(tmp_path / "pretrained.ckpt") is None  # a file, whatever its name
    assert pretrained_name("runs/x/checkpoints/last.ckpt") is None


@pytest.mark.parametrize("ckpt", [[], ["ckpt=pretrained:lfw-128"]], ids=["no ckpt", "pretrained"])
def test_inpaint_without_a_swapinpaint_checkpoint_is_one_line(ckpt, tmp_path, monkeypatch, capfd):
    from facectx import inpaint

    face = next((sample_root() / "images").iterdir())
    args = [f"image={face}", f"reference={face}", f"output={tmp_path / 'out.png'}"]
    args += [f"hydra.run.dir={tmp_path / 'run'}", *ckpt]
    monkeypatch.setattr(sys, "argv", ["facectx-inpaint", *args])
    with pytest.raises(SystemExit) as info:
        inpaint.main()
    text = "".join(capfd.readouterr())
    errors = [line for line in text.splitlines() if "[ERROR]" in line]
    assert info.value.code == 2 and "Traceback" not in text, text[-3000:]
    assert len(errors) == 1, text[-3000:]
    assert "ckpt=" in errors[0] and "swapinpaint_quickstart" in errors[0], errors[0]
