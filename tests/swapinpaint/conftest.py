"""Tiny SwapInpaint pieces for fast tests: a small deterministic identity network, random pair
batches, an in-memory pair data module and a tiny module builder."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from _config import compose_train  # noqa: F401  (imported by this folder's tests)
from facectx.losses.swapinpaint import SwapInpaintLoss
from facectx.modules.swapinpaint import SwapInpaintGAN
from facectx.zoo.swapinpaint import (
    ContentInference,
    MultiScalePatchDiscriminator,
    SwapGenerator,
    SwapInpaint,
)

TINY_WIDTH = 1 / 16
SIZE = 64


def sample_available() -> bool:
    try:
        from facectx.assets import sample_root

        return (Path(sample_root()) / "manifest.csv").exists()
    except Exception:
        return False


def dlib_available() -> bool:
    try:
        from facectx.pretrained import resolve

        resolve("dlib-resnet")
        return True
    except Exception:
        return False


needs_sample = pytest.mark.skipif(not sample_available(), reason="embedded sample not built")
needs_dlib = pytest.mark.skipif(
    not dlib_available(), reason="dlib-resnet weights (face_recognition_models) not installed"
)


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
        h = nn.functional.adaptive_avg_pool2d(h, 4).flatten(1)
        return self.fc(h)


def random_pairs(batch: int = 2, size: int = SIZE, seed: int = 0, same=None) -> dict:
    """A batch like ``PairDataModule``'s: smooth random faces, centre holes, references."""
    g = torch.Generator().manual_seed(seed)
    image = (
        torch.nn.functional.interpolate(
            torch.rand(batch, 3, size // 8, size // 8, generator=g),
            size=(size, size),
            mode="bilinear",
        )
        * 2
        - 1
    )
    reference = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    mask = torch.ones(batch, 1, size, size)
    q = size // 4
    mask[:, :, q : 3 * q, q : 3 * q] = 0
    if same is None:
        same = [float(i % 2 == 0) for i in range(batch)]
    return {
        "image": image,
        "mask": mask,
        "masked": image * mask - (1 - mask),
        "valid": torch.ones(batch, 1, size, size),
        "reference": reference,
        "same": torch.tensor(same),
    }


class _PairList(Dataset):
    def __init__(self, n: int, size: int, seed: int) -> None:
        b = random_pairs(n, size, seed)
        self.items = [{k: v[i] for k, v in b.items()} for i in range(n)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


class PairBatches(pl.LightningDataModule):
    """``n`` fixed random pairs, unshuffled, as train and val loaders."""

    def __init__(self, n: int = 4, batch_size: int = 2, size: int = SIZE, seed: int = 0) -> None:
        super().__init__()
        self.ds = _PairList(n, size, seed)
        self.batch_size = batch_size

    def train_dataloader(self):
        return DataLoader(self.ds, batch_size=self.batch_size, shuffle=False)

    def val_dataloader(self):
        return DataLoader(self.ds, batch_size=self.batch_size, shuffle=False)


def make_module(
    size: int = SIZE,
    width: float = TINY_WIDTH,
    identity: nn.Module | None = None,
    seed: int = 0,
    **kwargs,
) -> SwapInpaintGAN:
    """A tiny SwapInpaintGAN with the test identity network (``discriminator``: G's, or a
    3-channel one)."""
    torch.manual_seed(seed)
    loss_kw = kwargs.pop("loss_kw", {})
    discriminator = kwargs.pop("discriminator", None)
    if discriminator is None:
        discriminator = MultiScalePatchDiscriminator(width, num_scales=2)
    return SwapInpaintGAN(
        content=ContentInference(size, width=width),
        content_discriminator=MultiScalePatchDiscriminator(width, num_scales=2),
        swap=lambda id_dim: SwapGenerator(size, id_dim, width=width),
        discriminator=discriminator,
        identity=identity if identity is not None else TinyIdentity(),
        loss=SwapInpaintLoss(**loss_kw),
        size=size,
        width=width,
        **kwargs,
    )


def tiny_trainer(tmp_path, max_steps_iterations: int, **kwargs) -> pl.Trainer:
    """A quiet CPU trainer that runs ``max_steps_iterations`` batches (one epoch each batch)."""
    return pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=kwargs.pop("max_epochs", 1),
        limit_train_batches=max_steps_iterations,
        limit_val_batches=kwargs.pop("limit_val_batches", 0),
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        **kwargs,
    )


@pytest.fixture
def tiny_identity() -> TinyIdentity:
    return TinyIdentity()


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test of this folder runs single-threaded (tests/conftest.py)."""


def swapinpaint_checkpoint(path, size: int, id_dim: int, name: str, seed: int = 0):
    """A SwapInpaint checkpoint with random weights, as the train CLI would write it."""
    torch.manual_seed(seed)
    net = SwapInpaint(
        ContentInference(size, width=TINY_WIDTH), SwapGenerator(size, id_dim, TINY_WIDTH)
    )
    torch.save(
        {
            "facectx": {
                "kind": "swapinpaint",
                "model": net.config,
                "identity": {"name": name, "feature_dim": id_dim},
                "ema": False,
                "stage": "generator",
            },
            "state_dict": {f"generator.{k}": v for k, v in net.state_dict().items()},
        },
        path,
    )
    return path


# ---- the shipped SwapInpaint model, pointed at a tiny stand-in --------------------------------
SHIPPED_ENTRY = "inpainter-lfw-swap-128"


def register_tiny_identity(monkeypatch) -> None:
    """``tiny-identity`` as a registry entry (for the test's duration), so a model naming it loads
    its identity network through ``facectx.pretrained.load``, as the shipped model does."""
    from facectx.pretrained import registry

    entry = registry.Entry(
        name=TinyIdentity.name,
        builder=lambda fetch, **_: TinyIdentity(),
        files={"weights": registry.WeightsFile(filename="tiny-identity.pt", source="tests")},
        summary="test identity network",
        input="canonical [-1,1]",
        output="(B, 16)",
    )
    monkeypatch.setitem(registry._REGISTRY, entry.name, entry)


def point_shipped_inpainter(monkeypatch, folder: Path, sha256: str | None = "", **changes):
    """Make the shipped SwapInpaint entry look in ``folder`` ($FACECTX_WEIGHTS) first, pinned to
    its file's sha256 (``sha256=""``) or to ``sha256``; ``changes`` edit its file record (e.g.
    ``filename``/``package_path`` of a file that is nowhere). Returns the file's path there."""
    import dataclasses

    from facectx.pretrained import registry

    entry = registry.get_entry(SHIPPED_ENTRY)
    spec = dataclasses.replace(entry.files["weights"], **changes)
    path = folder / spec.filename
    if sha256 == "" and path.is_file():
        sha256 = registry.sha256sum(path)
    spec = dataclasses.replace(spec, sha256=sha256 or None, size=None)
    monkeypatch.setitem(
        registry._REGISTRY, SHIPPED_ENTRY, dataclasses.replace(entry, files={"weights": spec})
    )
    monkeypatch.setenv("FACECTX_WEIGHTS", str(folder))
    return path


def hide_shipped_inpainter(monkeypatch) -> None:
    """The shipped SwapInpaint file nowhere on the resolution path (as before it is built)."""
    point_shipped_inpainter(
        monkeypatch,
        Path("/nonexistent"),
        sha256=None,
        filename="missing_inpainter.pt",
        package_path="assets/pretrained/missing_inpainter.pt",
    )


def pack_tiny_inpainter(path: Path, size: int = 128, seed: int = 0) -> Path:
    """A random-init tiny C and G (``tiny-identity``, 16-D) packed as a shipped file."""
    from facectx.pretrained.inpainters import pack_swapinpaint, packed_meta

    torch.manual_seed(seed)
    net = SwapInpaint(ContentInference(size, width=TINY_WIDTH), SwapGenerator(size, 16, TINY_WIDTH))
    meta = packed_meta(net, {"name": TinyIdentity.name, "feature_dim": 16}, ema=True)
    return pack_swapinpaint(net, meta, path)
