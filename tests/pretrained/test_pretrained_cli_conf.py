"""`python -m facectx.weights` and the identity / lpips Hydra config groups."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from facectx.pretrained import RandomWeightsWarning, get_entry, load, registry
from facectx.weights import main

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_list_shows_every_entry_and_where(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for entry in registry.list_entries():
        assert entry.name in out
    assert "lpips_alex_v0.1.pth" in out and "present" in out
    assert "vgg_face_dag.pth" in out


def test_list_fits_a_narrow_terminal(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert not any("┃" in line or "│" in line for line in lines)  # blocks, not a table
    heads = [line for line in lines if line and not line.startswith(" ")]
    for entry in registry.list_entries():
        assert any(line.startswith(entry.name) for line in heads), entry.name
    assert any(line.strip().startswith("looked in:") for line in lines)


def test_console_script_is_declared():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    pyproject = tomllib.loads((CONF.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["facectx-weights"] == "facectx.weights:main"


def test_check_and_path_exit_codes(isolated, tiny_entry, place, capsys, monkeypatch):
    _, src, _ = tiny_entry
    assert main(["check", "tiny-test"]) == 1  # named and missing
    assert main(["path", "tiny-test"]) == 2
    assert "tiny.pth" in capsys.readouterr().err

    hub = place(src, Path(torch.hub.get_dir()) / "checkpoints")
    assert main(["check", "tiny-test"]) == 0
    assert main(["path", "tiny-test"]) == 0
    assert capsys.readouterr().out.strip().endswith(str(hub))

    hub.write_bytes(b"x" + src.read_bytes()[1:])
    assert main(["check", "tiny-test"]) == 1
    assert "MISMATCH" in capsys.readouterr().out
    assert main(["path", "nope"]) == 2


def _configs():
    files = sorted((CONF / "identity").glob("*.yaml")) + sorted((CONF / "lpips").glob("*.yaml"))
    return [f for f in files if "_target_" in f.read_text()]  # not none.yaml


@pytest.mark.parametrize("path", _configs(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_targets_load_with_accepted_arguments(path):
    cfg = OmegaConf.to_container(OmegaConf.load(path))
    assert cfg.pop("_target_") == "facectx.pretrained.load"
    entry = get_entry(cfg.pop("name"))
    accepted = set(inspect.signature(load).parameters) - {"kwargs"}
    builder = registry._import_builder(entry.builder)
    accepted |= set(inspect.signature(builder).parameters) - {"fetch"}
    assert set(cfg) <= accepted, set(cfg) - accepted
    if "version" in cfg:
        assert isinstance(cfg["version"], str)


def test_lpips_config_instantiates(isolated):
    from hydra.utils import instantiate

    cfg = OmegaConf.load(CONF / "lpips" / "alex-v0.0.yaml")
    with pytest.warns(RandomWeightsWarning):
        net = instantiate(cfg, allow_random_init=True)
    assert net.version == "0.0"
