"""Fixtures for the "using trained models" tests: one tiny trained checkpoint per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from _config import compose_train

# The same shrinking as tests/modules/conftest.py (kept here so this folder stands alone).
TINY = [
    "generator.width=0.0625",
    "discriminator.width=0.0625",
    "data.num_workers=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def sample_available() -> bool:
    try:
        from facectx.assets import sample_root

        return (Path(sample_root()) / "manifest.csv").exists()
    except Exception:
        return False


needs_sample = pytest.mark.skipif(not sample_available(), reason="embedded sample not built")


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    """A real checkpoint from ``facectx.train.run``: tiny width, one step on the embedded sample."""
    from facectx.train import run

    if not sample_available():
        pytest.skip("embedded sample not built")
    tmp = tmp_path_factory.mktemp("train")
    summary = run(
        compose_train(
            tmp,
            [
                *TINY,
                "identity=none",
                "trainer.max_epochs=1",
                "trainer.limit_train_batches=1",
                "trainer.limit_val_batches=1",
            ],
        )
    )
    path = summary.get("last_checkpoint")
    assert path and Path(path).is_file(), summary
    return Path(path)


def replicate_sample(dst: Path, n: int) -> Path:
    """A prepared folder of ``n`` faces made from the embedded sample (files linked)."""
    from facectx.assets import sample_root
    from facectx.data.manifest import link_prepared

    return link_prepared(sample_root(), dst, n)


def fake_checkpoint(
    path: Path, seed: int = 0, sizes: tuple[int, ...] = (128,), progan: dict | None = None
) -> Path:
    """A cascade checkpoint in ``facectx.train``'s format, without training: a tiny generator
    with seeded random weights (``progan``: the ProGAN record, e.g. a run stopped at 8 px)."""
    import torch

    from facectx.zoo import CascadeGenerator

    torch.manual_seed(seed)
    generator = CascadeGenerator(sizes, width=0.0625)
    meta = {"kind": "cascade", "version": "test", "generator": generator.init_args(), "ema": False}
    if progan is not None:
        meta["progan"] = progan
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    torch.save({"facectx": meta, "state_dict": state}, path)
    return path
