"""Shared test data for the evaluation tests: prepared LFW test faces and a tiny checkpoint.

Both are built once per test session into pytest's base temp folder and reused by every module
that asks (``tests/test_baselines.py``, ``tests/test_evaluate.py``, ``tests/test_report.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_TRAIN = [
    "identity=none",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
]


def prepared_lfw_test(tmp_path_factory, lfw_split_images, n: int = 20) -> Path:
    """The first ``n`` LFW test-split photos prepared (128 px) into a session temp folder."""
    from facectx.data.manifest import read_manifest
    from facectx.prepare import prepare_folder

    root = tmp_path_factory.getbasetemp() / f"lfw_test{n}"
    if (root / "manifest.csv").is_file() and len(read_manifest(root)) >= n - 2:
        return root
    photos = tmp_path_factory.getbasetemp() / f"lfw_test{n}_photos"
    photos.mkdir(exist_ok=True)
    for src in lfw_split_images("test", n):
        link = photos / src.name
        if not link.exists():
            link.symlink_to(src)
    splits = photos.parent / f"lfw_test{n}_splits.csv"
    splits.write_text(
        "image,split\n" + "".join(f"{p.name},test\n" for p in lfw_split_images("test", n))
    )
    prepare_folder(photos, root, splits=splits, workers=1, progress=False)
    if len(read_manifest(root)) < n - 2:
        pytest.skip(f"too few LFW test faces could be prepared into {root}")
    return root


def tiny_checkpoint(tmp_path_factory) -> Path:
    """``last.ckpt`` of a 1-batch, 1/16-width cascade trained on the embedded sample."""
    root = tmp_path_factory.getbasetemp() / "tiny_ckpt"
    ckpt = root / "run" / "checkpoints" / "last.ckpt"
    if ckpt.is_file():
        return ckpt
    from facectx.train import run
    from modules.conftest import TINY, compose_train

    summary = run(compose_train(root, [*TINY, *TINY_TRAIN]))
    assert summary["last_checkpoint"], summary
    return Path(summary["last_checkpoint"])


def compose_eval(tmp_path: Path, overrides: list[str], name: str = "eval"):
    """The composed eval (or report) config with outputs under ``tmp_path``."""
    from _config import compose_config

    return compose_config(name, ["progress=false", *overrides], root=tmp_path, output="eval")
