"""Every config file composes; a wheel install ships the configs (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from _config import compose_config
from facectx._conf import config_dir

CONF = Path(config_dir())
ROOT = CONF.parent
# groups of conf/train.yaml, each option selected in turn
TRAIN_GROUPS = [
    "data",
    "mask",
    "generator",
    "discriminator",
    "model",
    "loss",
    "identity",
    "lpips",
    "trainer",
    "logger",
    "callbacks",
    "debug",
    "experiment",
    "ablation",
]
REQUIRED_GROUPS = [
    "data",
    "mask",
    "model",
    "loss",
    "trainer",
    "logger",
    "callbacks",
    "paths",
    "hydra",
    "experiment",
    "debug",
]


def _compose(name: str, overrides: list[str], tmp_path: Path):
    return compose_config(name, overrides, root=tmp_path)


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_required_groups_exist():
    for group in REQUIRED_GROUPS:
        assert _options(group), f"conf/{group}/ has no options"


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in TRAIN_GROUPS for o in _options(g)], ids=lambda x: str(x)
)
def test_every_train_option_composes(tmp_path, group, option):
    cfg = _compose("train", [f"{group}={option}"], tmp_path)
    # everything but mandatory user inputs (???) resolves
    container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    assert container["task"]
    assert "_target_" in container["model"] and "_target_" in container["trainer"]


@pytest.mark.parametrize("name", sorted(p.stem for p in CONF.glob("*.yaml")))
def test_every_top_level_config_composes(tmp_path, name):
    cfg = _compose(name, [], tmp_path)
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    assert cfg.task


def test_runs_write_under_logs_task_datetime():
    hydra_cfg = OmegaConf.to_container(OmegaConf.load(CONF / "hydra" / "default.yaml"))
    # microseconds: two commands started in the same second get two run folders
    assert hydra_cfg["run"]["dir"] == "${paths.log_dir}/${task}/${now:%Y-%m-%d_%H-%M-%S-%f}"
    assert hydra_cfg["sweep"]["dir"].endswith("/multiruns/${now:%Y-%m-%d_%H-%M-%S-%f}")
    assert hydra_cfg["job"]["chdir"] is False


@pytest.mark.slow
def test_non_editable_install_ships_configs(tmp_path):
    """Build the wheel, install it (no deps) into a fresh venv that borrows our dependencies,
    and run `python -m facectx.train --cfg job` from an unrelated folder."""
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(ROOT)],
        check=True,
        timeout=600,
    )
    wheel = next(wheel_dir.glob("facectx-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # dependencies from the current environment; facectx itself only from the wheel
    deps = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, str(wheel)],
        check=True,
        timeout=600,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [
            str(py),
            "-c",
            "import facectx, facectx._conf as c; print(facectx.__file__); print(c.config_dir())",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(venv) in where.splitlines()[0], where
    assert where.splitlines()[1].startswith(site), where
    res = subprocess.run(
        [str(py), "-m", "facectx.train", "experiment=quickstart", "--cfg", "job"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "CascadeGAN" in res.stdout
    assert not (work / "logs").exists()  # --cfg job writes nothing
