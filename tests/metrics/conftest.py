"""Metric tests run single-threaded: the test machine is shared and oversubscription stalls."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test of this folder runs single-threaded (tests/conftest.py)."""
