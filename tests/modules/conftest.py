"""Compose the real train config, shrunk for tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from _config import compose_train  # noqa: F401  (imported by this folder's tests)

TINY = [
    "generator.width=0.0625",
    "discriminator.width=0.0625",
    "data.num_workers=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]

# a quickstart run of a few seconds: three scales, no identity network, one validation batch
QUICK = [
    *TINY,
    "experiment=quickstart",
    "generator.sizes=[8,16,32]",
    "data.pyramid_sizes=[8,16,32]",
    "identity=none",
    "data.batch_size=4",
    "trainer.limit_val_batches=1",
]


def sample_available() -> bool:
    try:
        from facectx.assets import sample_root

        return (Path(sample_root()) / "manifest.csv").exists()
    except Exception:
        return False


needs_sample = pytest.mark.skipif(not sample_available(), reason="embedded sample not built")
