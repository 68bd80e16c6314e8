"""Fixtures shared by all test folders.

Real data lives outside the repository (``<repo>/../shared/data`` or ``$FACECTX_SHARED_DATA``);
tests that need it skip with the reason when it is absent, e.g. on a user's machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Where the real data should be: $FACECTX_SHARED_DATA, else <repo>/../shared/data."""
    env = os.environ.get("FACECTX_SHARED_DATA")
    return Path(env).expanduser().resolve() if env else (REPO.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the read-only real data (lfw/, wild/); skips the test when it is absent."""
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"real data not found at {root}; set FACECTX_SHARED_DATA to run this test")
    return root


@pytest.fixture(scope="session")
def lfw_dir(shared_data) -> Path:
    """shared_data/lfw with images/ and splits.csv; skips when missing."""
    root = shared_data / "lfw"
    if not (root / "images").is_dir() or not (root / "splits.csv").is_file():
        pytest.skip(f"LFW images or splits.csv not found under {root}")
    return root


@pytest.fixture(scope="session")
def wild_photos(shared_data) -> Path:
    """shared_data/wild/photos (in-the-wild photos, incl. couple.jpg, selfie-many-people.jpg)."""
    root = shared_data / "wild" / "photos"
    if not root.is_dir():
        pytest.skip(f"wild photos not found at {root}")
    return root


@pytest.fixture(scope="session")
def lfw_split_images(lfw_dir):
    """``f(split, n)``: the first ``n`` image paths (sorted by name) of an LFW split."""
    import csv

    with (lfw_dir / "splits.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))

    def pick(split: str, n: int) -> list[Path]:
        names = sorted(r["image"] for r in rows if r["split"] == split)
        return [lfw_dir / "images" / name for name in names[:n]]

    return pick
