"""Composing the real Hydra config in tests: one helper for every test folder (and the
session-scoped ``compose_config`` fixture in tests/conftest.py that returns it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from facectx._conf import config_dir


def compose_config(
    name: str,
    overrides: Sequence[str] = (),
    root: Path | None = None,
    output: str = "run",
) -> DictConfig:
    """The composed ``conf/<name>.yaml`` with ``overrides``, as the CLI would see it.

    Args:
        name: the primary config (train, eval, report, inpaint, hallucinate, ...).
        overrides: Hydra overrides, applied after the output paths.
        root: when given, ``paths.root_dir=root`` and ``paths.output_dir=root/output``, so a
            test writes nothing outside its tmp_path.
        output: the output folder's name under ``root``.
    """
    paths = [] if root is None else [f"paths.root_dir={root}", f"paths.output_dir={root / output}"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(name, overrides=[*paths, *overrides])


def compose_train(tmp_path: Path, overrides: Sequence[str], name: str = "train") -> DictConfig:
    """The composed train (or other) config with every output under ``tmp_path``."""
    return compose_config(name, overrides, root=tmp_path)
