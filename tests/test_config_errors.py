"""A configuration mistake on the command line ends in one line that names the key as the user
typed it, with exit code 2, before Hydra makes a run folder or anything is built.

Most cases call :func:`facectx._conf.check_command_line` (the check every command's ``main()``
runs first) in this process; a few go through ``main()`` and a few through a real
``python -m facectx.train``, where the test also asks that torch was never imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facectx._conf import ConfigError, check_command_line
from facectx.train import check_config

# (arguments, text the one line must contain): at least one per config group of train
CASES = [
    # unknown keys: named as typed, with the `+` form and close matches where there are some
    (["model.foo=1"], "model.foo=1"),
    (["model.foo=1"], "+model.foo=1"),
    (["generator.widht=0.5"], "generator.width"),
    (["loss.lambda_advv=1"], "loss.lambda_adv"),
    (["trainer.batch_size=4"], "data.batch_size"),
    (["logger.csv.foo=1"], "logger.csv.foo=1"),
    (["paths.nope=1"], "paths.nope=1"),
    (["identity.path=x"], "dlib-resnet"),  # identity is off: say how to choose one
    # unknown group options: every valid option on the same line
    (
        ["experiment=nope"],
        "lfw_cpu, lfw_cpu_progan, lfw_harmoniser, lfw_quickstart, lfw_swap_cpu, lfw_swap_cpu_composite_d, lfw_swap_cpu_wide, paper_cascaded",
    ),
    (["data=nope"], "folder, lfw, pairs, pairs_sample, sample"),
    (["mask=nope"], "mask=nope"),
    (["lpips=alexnet"], "alex-v0.0"),
    (["ablation=no_lpip"], "no_lpips"),
    (["debug=nope"], "fdr, limit, overfit"),
    (["callbacks=nope"], "callbacks=nope"),
    (["logger=nope"], "csv, none, tensorboard, wandb"),
    (["detector=fan"], "+detector=fan"),  # a group train does not compose
    # wrong types
    (["trainer.max_epochs=abc"], "trainer.max_epochs='abc'"),
    (["data.mirror=maybe"], "data.mirror='maybe'"),
    (["model.optimizer_g=3"], "model.optimizer_g.lr"),
    (["mask.dilate=2.5"], "mask.dilate=2.5"),
    # out-of-range values
    (["data.batch_size=-3"], "data.batch_size=-3"),
    (["data.num_workers=-1"], "data.num_workers=-1"),
    (["generator.width=0"], "generator.width=0"),
    (["discriminator.width=-1"], "discriminator.width=-1"),
    (["model.optimizer_g.lr=0"], "model.optimizer_g.lr=0"),
    (["model.optimizer_d.lr=-1e-4"], "model.optimizer_d.lr=-0.0001"),
    (["loss.lambda_adv=-0.1"], "loss.lambda_adv=-0.1"),
    (["trainer.max_steps=0"], "trainer.max_steps=0"),
    (["callbacks.image_grid.num_images=0"], "callbacks.image_grid.num_images=0"),
    (["experiment=quickstart", "model.ema_decay=1.5"], "model.ema_decay=1.5"),
    (["experiment=swapinpaint_quickstart", "model.width=0"], "model.width=0"),
    (["experiment=lfw_swap_cpu_wide", "loss.late_start=-3"], "loss.late_start=-3"),
    (["experiment=lfw_swap_cpu_wide", "loss.late_identity_grad=grey"], "rgb, gray"),
    (["experiment=lfw_harmoniser", "model.harmoniser.width=0"], "model.harmoniser.width=0"),
    (["experiment=lfw_harmoniser", "model.optimizer.lr=-1"], "model.optimizer.lr=-1"),
    (["experiment=lfw_harmoniser", "model.near_scale=0"], "model.near_scale=0"),
    # command-line syntax
    (["data.batch_size=8,16"], "-m"),
    (["data.batch_size=[1"], "data.batch_size=[1"),
    # a sweep: every value is checked before the first job starts
    (["-m", "data.batch_size=8,-3"], "data.batch_size=-3"),
    (["-m", "experiment=quickstart,nope"], "experiment=nope"),
]


@pytest.mark.parametrize(("args", "needle"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_a_config_mistake_is_one_line_naming_the_key(args, needle):
    with pytest.raises(ConfigError) as info:
        check_command_line("train", args, check=check_config)
    message = str(info.value)
    assert "\n" not in message, message
    assert needle in message, message


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["experiment=quickstart", "trainer.max_steps=5", "data.mirror=false"],
        ["experiment=lfw_cpu_progan", "data.root=null"],
        ["+model.note=1"],  # a new key, added as the message says
        ["-m", "data.batch_size=8,16", "ablation=full,no_adv"],
        ["hydra.run.dir=/tmp/x", "hydra.job.chdir=false"],
        ["--cfg", "job", "data.batch_size=-3"],  # prints the config: values are not checked
        ["trainer.devices=auto"],
        ["experiment=lfw_swap_cpu_wide", "loss.swap_late=null", "loss.late_start=null"],
        ["experiment=lfw_swap_cpu_wide", "loss.swap_late.id_out=2", "+loss.swap_late.hole=10"],
    ],
)
def test_a_valid_command_line_passes(args):
    check_command_line("train", args, check=check_config)


def _main(command: str, args: list[str], tmp_path: Path, monkeypatch) -> SystemExit:
    import importlib

    module = importlib.import_module(f"facectx.{command}")
    logs = tmp_path / "logs"
    monkeypatch.setattr(sys, "argv", [command, *args, f"paths.log_dir={logs}"])
    with pytest.raises(SystemExit) as info:
        module.main()
    return info.value


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["model.foo=1"], "model.foo=1"),
        (["experiment=nope"], "experiment=nope"),
        (["data.batch_size=-3"], "data.batch_size=-3"),
        (["generator.width=0"], "generator.width=0"),
    ],
)
def test_train_main_refuses_before_hydra_makes_a_run_folder(
    args, needle, tmp_path, monkeypatch, capfd
):
    exit_ = _main("train", args, tmp_path, monkeypatch)
    text = "".join(capfd.readouterr())
    errors = [line for line in text.splitlines() if "[ERROR]" in line]
    assert exit_.code == 2, text
    assert len(errors) == 1 and needle in errors[0], text
    assert "Traceback" not in text and "HYDRA_FULL_ERROR" not in text, text
    assert not (tmp_path / "logs").exists()  # Hydra never ran the job


@pytest.mark.parametrize("command", ["hallucinate", "evaluate", "prepare", "export"])
def test_every_command_reports_an_unknown_key_in_one_line(command, tmp_path, monkeypatch, capfd):
    exit_ = _main(command, ["nosuchkey=1"], tmp_path, monkeypatch)
    text = "".join(capfd.readouterr())
    errors = [line for line in text.splitlines() if "[ERROR]" in line]
    assert exit_.code == 2 and len(errors) == 1, text
    assert "nosuchkey=1" in errors[0] and "+nosuchkey=1" in errors[0], text


# Run as `python -m facectx.train`; the modules a model needs must not have been imported.
_PROBE = """
import json, runpy, sys
sys.argv = ["facectx.train", *sys.argv[1:]]
try:
    runpy.run_module("facectx.train", run_name="__main__", alter_sys=True)
finally:
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "pytorch_lightning"))
    sys.stderr.write("HEAVY " + json.dumps(heavy) + "\\n")
"""


@pytest.mark.parametrize(
    ("arg", "needle"),
    [
        ("model.foo=1", "+model.foo=1"),
        ("experiment=nope", "quickstart"),
        ("data.batch_size=-3", "data.batch_size=-3"),
        ("generator.width=0", "generator.width=0"),
    ],
)
def test_cli_config_mistake_exits_2_without_loading_torch(arg, needle, tmp_path):
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    res = subprocess.run(
        [sys.executable, "-c", _PROBE, arg, f"paths.log_dir={tmp_path / 'logs'}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    heavy = json.loads(res.stderr.split("HEAVY ", 1)[1].splitlines()[0])
    lines = [
        line for line in (res.stdout + res.stderr).splitlines() if not line.startswith("HEAVY")
    ]
    assert res.returncode == 2, res.stdout + res.stderr
    assert len(lines) == 1 and needle in lines[0], lines
    assert heavy == [], heavy  # refused before anything was built
    assert not (tmp_path / "logs").exists()


def _options(group: str) -> str:
    from facectx._conf import config_dir

    return ",".join(sorted(p.stem for p in (Path(config_dir()) / group).glob("*.yaml")))


@pytest.mark.parametrize(
    "group",
    [
        "data",
        "mask",
        "discriminator",
        "model",
        "loss",
        "callbacks",
        "experiment",
        "ablation",
        "debug",
    ],
)
def test_every_shipped_option_passes_the_checks(group):
    # a sweep over the group's options: every one composes and obeys train's rules
    check_command_line("train", ["-m", f"{group}={_options(group)}"], check=check_config)
