"""Shared fixtures for the data tests: a tiny synthetic prepared folder (see synthetic_faces.py)."""

from __future__ import annotations

import shutil

import pytest
from synthetic_faces import SIZE, write_prepared


@pytest.fixture(scope="session")
def prepared_root(tmp_path_factory):
    """A read-only prepared folder of 15 synthetic 64 px faces (train 10, val 2, test 3)."""
    return write_prepared(tmp_path_factory.mktemp("prepared"), size=SIZE)


@pytest.fixture
def prepared_copy(prepared_root, tmp_path):
    """A private, writable copy of ``prepared_root`` for tests that break it."""
    return shutil.copytree(prepared_root, tmp_path / "prepared")
