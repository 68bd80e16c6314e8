"""Compose the real train config, shrunk for tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from facectx._conf import config_dir

TINY = [
    "generator.width=0.0625",
    "discriminator.width=0.0625",
    "data.num_workers=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def compose_train(tmp_path: Path, overrides: list[str], name: str = "train"):
    """The composed train config with outputs under ``tmp_path`` (no Hydra run needed)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(
            name,
            overrides=[
                f"paths.root_dir={tmp_path}",
                f"paths.output_dir={tmp_path / 'run'}",
                *overrides,
            ],
        )


def sample_available() -> bool:
    try:
        from facectx.assets import sample_root

        return (Path(sample_root()) / "manifest.csv").exists()
    except Exception:
        return False


needs_sample = pytest.mark.skipif(not sample_available(), reason="embedded sample not built")
