"""Fixtures that keep registry tests away from the real caches and the network."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from torch import nn

from facectx.pretrained import registry


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Empty hub cache under tmp, no $FACECTX_WEIGHTS, downloads disabled."""
    monkeypatch.delenv(registry.ENV_WEIGHTS, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("FACECTX_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(registry, "_REACHABLE", {})
    return tmp_path


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x):
        return self.lin(x)


def build_tiny(fetch) -> nn.Module:
    net = Tiny()
    path = fetch("weights")
    if path is not None:
        net.load_state_dict(registry.load_state_dict(path))
    return net


@pytest.fixture
def tiny_entry(tmp_path, monkeypatch):
    """A registered entry 'tiny-test' whose pinned file is a small state dict in tmp/src."""
    src = tmp_path / "src" / "tiny.pth"
    src.parent.mkdir()
    torch.manual_seed(0)
    state = Tiny().state_dict()
    torch.save(state, src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    entry = registry.Entry(
        name="tiny-test",
        builder=build_tiny,
        files={
            "weights": registry.WeightsFile(
                filename="tiny.pth",
                source="the test suite",
                url="https://example.invalid/tiny.pth",
                sha256=digest,
                size=src.stat().st_size,
            )
        },
        summary="test",
        input="(B, 4)",
        output="(B, 2)",
    )
    registry.register(entry, replace=True)
    yield entry, src, state
    registry.unregister("tiny-test")


def _place(src: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / src.name
    dst.write_bytes(src.read_bytes())
    return dst


@pytest.fixture
def place():
    """``place(src, folder)``: copy a file into a folder (created), return the copy's path."""
    return _place
