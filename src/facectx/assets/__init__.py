"""Small files shipped inside the package: the embedded sample of prepared LFW faces."""

from __future__ import annotations

from pathlib import Path


def sample_root() -> Path:
    """Prepared folder of LFW train-split faces at 128 px (see assets/README.md).

    Lets tests, docs and quick-start training run without any download. The folder has the
    layout described in :mod:`facectx.data.manifest`.
    """
    root = Path(__file__).resolve().parent / "sample"
    if not (root / "manifest.csv").is_file():
        raise FileNotFoundError(f"embedded sample missing at {root}; reinstall facectx")
    return root
