"""Fixtures for the web demo's tests: the shipped model, a Demo around it, a tiny random-init
SwapInpaint model, and photos without a face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# the SwapInpaint tests' tiny identity network and random-init checkpoint writer
from swapinpaint.conftest import TinyIdentity, swapinpaint_checkpoint


@pytest.fixture(scope="session")
def hallucinator():
    from facectx.inference import Hallucinator

    return Hallucinator.from_pretrained("lfw-128")


@pytest.fixture(scope="module")
def demo(hallucinator, tmp_path_factory):
    """A Demo without an inpainter; module-scoped so its face preparers load once."""
    from facectx.demo import Demo

    d = Demo(hallucinator, work_dir=tmp_path_factory.mktemp("app-results"))
    yield d
    d.close()


@pytest.fixture(scope="module")
def inpaint_demo(hallucinator, tmp_path_factory):
    """A Demo with a tiny random-init SwapInpaint model (its outputs are noise, its geometry
    is real: holes, warping back, full resolution)."""
    from facectx.demo import Demo
    from facectx.inference import Inpainter

    root = tmp_path_factory.mktemp("app-inpaint")
    ckpt = swapinpaint_checkpoint(root / "tiny.ckpt", 128, 16, TinyIdentity.name)
    inpainter = Inpainter.from_checkpoint(ckpt, identity=TinyIdentity())
    d = Demo(hallucinator, inpainter, work_dir=root / "results")
    yield d
    d.close()


def plain_image(path: Path, size: tuple[int, int] = (320, 240), colour=(70, 130, 180)) -> Path:
    """A plain-colour PNG: a readable photo with no face in it."""
    from PIL import Image

    Image.fromarray(np.full((size[1], size[0], 3), colour, np.uint8)).save(path)
    return path
