"""Fixtures for the zoo tests: tiny random pyramids with binary keep-masks."""

from __future__ import annotations

import pytest
import torch

from facectx.zoo.pyramid import build_pyramid

SIZES = (8, 16, 32, 64, 128)
TINY = 1 / 8


def make_sample(batch: int = 2, size: int = 128, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random image in [-1, 1], an elliptical keep-mask (face) and the masked image."""
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    radius = 0.5 + 0.2 * torch.rand(batch, 1, 1, 1, generator=g)
    mask = ((xx / 0.8) ** 2 + yy**2 < radius**2).float()
    masked = mask * image - (1 - mask)
    return {"image": image, "mask": mask, "masked": masked}


@pytest.fixture(name="make_sample")
def make_sample_fixture():
    """The :func:`make_sample` factory, for tests that need other batch sizes or seeds."""
    return make_sample


@pytest.fixture
def sample() -> dict[str, torch.Tensor]:
    return make_sample()


@pytest.fixture
def pyramid(sample) -> dict[int, dict[str, torch.Tensor]]:
    return build_pyramid(sample["image"], sample["masked"], sample["mask"], SIZES)
