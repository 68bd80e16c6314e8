"""The web demo's Inpaint tab without ``inpaint_ckpt=``: the SwapInpaint model shipped with
facectx (here a tiny stand-in the registry entry points at), the tab's sentence when that file
is missing, and ``inpaint_ckpt=`` still taking precedence."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from facectx.demo import NO_INPAINT, AppError, read_photo
from swapinpaint.conftest import (
    TinyIdentity,
    hide_shipped_inpainter,
    pack_tiny_inpainter,
    point_shipped_inpainter,
    register_tiny_identity,
    swapinpaint_checkpoint,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _app_config(*overrides: str):
    from _config import compose_config

    return compose_config("app", ["port=0", *overrides])


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    register_tiny_identity(monkeypatch)
    path = pack_tiny_inpainter(tmp_path / "weights" / "inpainter_lfw_swap128_fp16.pt")
    point_shipped_inpainter(monkeypatch, path.parent)
    return path


def test_without_inpaint_ckpt_the_tab_runs_the_shipped_model(shipped, wild_photos, caplog):
    from facectx.app import load_demo

    with caplog.at_level(logging.INFO, logger="facectx"):
        demo = load_demo(_app_config())
    try:
        assert demo.inpainter is not None and demo.inpainter.file == shipped
        assert demo.inpainter.source.startswith("pretrained:lfw-swap-128@")
        assert any("'lfw-swap-128'" in r.getMessage() for r in caplog.records)  # says which
        photo = read_photo(wild_photos / "img12.jpg")
        result = demo.inpaint(photo, wild_photos / "img5.jpg", mask="facial")
        changed = (result.image != photo).any(axis=2)
        assert result.image.shape == photo.shape and result.hole.any()
        assert changed.any() and not (changed & ~result.hole).any()
    finally:
        demo.close()


def test_without_the_shipped_file_the_tab_says_how_to_get_one(monkeypatch, wild_photos, caplog):
    from facectx.app import load_demo

    hide_shipped_inpainter(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="facectx.app"):
        demo = load_demo(_app_config())  # the app still starts, for hallucination
    try:
        assert demo.inpainter is None
        assert any("Inpaint tab is off" in r.getMessage() for r in caplog.records)
        with pytest.raises(AppError) as e:
            demo.inpaint(wild_photos / "img12.jpg", wild_photos / "img5.jpg")
        assert str(e.value) == NO_INPAINT and "inpaint_ckpt=" in NO_INPAINT
    finally:
        demo.close()


def test_inpaint_ckpt_still_picks_the_model(shipped, tmp_path):
    from facectx.app import load_demo

    ckpt = swapinpaint_checkpoint(tmp_path / "own.ckpt", 128, 16, TinyIdentity.name, seed=3)
    demo = load_demo(_app_config(f"inpaint_ckpt={ckpt}"))
    try:
        assert demo.inpainter.file is None and demo.inpainter.source == str(ckpt.resolve())
        assert isinstance(demo.inpainter.identity, TinyIdentity)
        assert np.isfinite(next(demo.inpainter.model.parameters()).sum().item())
    finally:
        demo.close()
