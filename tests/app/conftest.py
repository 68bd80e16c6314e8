"""Fixtures for the web demo's tests: the shipped model, a Demo around it, a tiny random-init
SwapInpaint model, and photos without a face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn


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


class TinyIdentity(nn.Module):
    """A small fixed-weight stand-in for an identity network: (B, 3, S, S) -> (B, 16)."""

    name = "tiny-identity"
    feature_dim = 16

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 8, 5, stride=4, padding=2)
        self.fc = nn.Linear(8 * 4 * 4, self.feature_dim)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        self.eval().requires_grad_(False)

    def forward(self, x):
        h = torch.tanh(self.conv(x))
        return self.fc(nn.functional.adaptive_avg_pool2d(h, 4).flatten(1))


def swapinpaint_checkpoint(
    path: Path, size: int = 128, id_dim: int = 16, identity: str = TinyIdentity.name
) -> Path:
    """A random-init SwapInpaint checkpoint as `python -m facectx.train` writes it, naming the
    identity network it was "trained" with (``dlib-resnet``, 128-D, loads from the registry)."""
    from facectx.zoo.swapinpaint import ContentInference, SwapGenerator, SwapInpaint

    torch.manual_seed(0)
    net = SwapInpaint(ContentInference(size, width=1 / 16), SwapGenerator(size, id_dim, 1 / 16))
    torch.save(
        {
            "facectx": {
                "kind": "swapinpaint",
                "model": net.config,
                "identity": {"name": identity, "feature_dim": id_dim},
                "ema": False,
                "stage": "generator",
            },
            "state_dict": {f"generator.{k}": v for k, v in net.state_dict().items()},
        },
        path,
    )
    return path


@pytest.fixture(scope="module")
def inpaint_demo(hallucinator, tmp_path_factory):
    """A Demo with a tiny random-init SwapInpaint model (its outputs are noise, its geometry
    is real: holes, warping back, full resolution)."""
    from facectx.demo import Demo
    from facectx.inference import Inpainter

    root = tmp_path_factory.mktemp("app-inpaint")
    ckpt = swapinpaint_checkpoint(root / "tiny.ckpt")
    inpainter = Inpainter.from_checkpoint(ckpt, identity=TinyIdentity())
    d = Demo(hallucinator, inpainter, work_dir=root / "results")
    yield d
    d.close()


def plain_image(path: Path, size: tuple[int, int] = (320, 240), colour=(70, 130, 180)) -> Path:
    """A plain-colour PNG: a readable photo with no face in it."""
    from PIL import Image

    Image.fromarray(np.full((size[1], size[0], 3), colour, np.uint8)).save(path)
    return path
