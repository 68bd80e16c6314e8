"""Fixtures for the mask tests: the synthetic 68-point template shared with tests/data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest


def _load_synthetic():
    path = Path(__file__).resolve().parents[1] / "data" / "synthetic_faces.py"
    spec = importlib.util.spec_from_file_location("facectx_tests_synthetic", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


synthetic = _load_synthetic()


@pytest.fixture
def template():
    """``template(size, shift=(dx, dy), scale=1.0) -> (68, 2) float32`` landmarks in pixels."""
    return synthetic.template_landmarks


@pytest.fixture
def random_landmarks():
    """``random_landmarks(size, n, seed) -> list of (68, 2)``: the template randomly shifted,
    scaled and slightly rotated, as aligned faces vary."""

    def make(size: int, n: int, seed: int = 0) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            lm = synthetic.template_landmarks(
                size, shift=rng.uniform(-0.05, 0.05, 2) * size, scale=rng.uniform(0.85, 1.05)
            )
            a = rng.uniform(-0.1, 0.1)
            c = lm.mean(0)
            rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            out.append(((lm - c) @ rot.T + c).astype(np.float32))
        return out

    return make
