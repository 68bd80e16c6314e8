"""The Python API and the command line agree: the same defaults for the same options (or a
documented reason why not), and an unknown model name is one clear error everywhere."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import subprocess
import sys

import pytest

from _config import compose_config
from facectx._conf import _user_errors

# (command's config, its composed overrides, the API functions that take its options)
PAIRS = [
    (
        "hallucinate",
        ["input=x", "output=y"],
        [
            "facectx.inference.portraits:hallucinate_photos",
            "facectx.inference.portraits:hallucinate_folder",
            "facectx.inference.portraits:build_preparer",
            "facectx.inference.hallucinator:Hallucinator.hallucinate_photo",
            "facectx.inference.hallucinator:Hallucinator.prepare_photo",
            "facectx.inference.hallucinator:load_hallucinator",
        ],
    ),
    (
        "inpaint",
        ["output=y"],
        [
            "facectx.inference.inpaint_jobs:inpaint_photos",
            "facectx.inference.inpainter:Inpainter.inpaint_photo",
            "facectx.inference.inpainter:Inpainter.inpaint_aligned",
            "facectx.inference.inpainter:Inpainter.preparer",
            "facectx.inference.inpainter:Inpainter.from_checkpoint",
        ],
    ),
    ("prepare", ["input=x", "output=y"], ["facectx.preparation:prepare_folder"]),
    ("prepare", ["input=x", "output=y"], ["facectx.faces.pipeline:PreparerSpec"]),
    (
        "background",
        ["input=x", "backgrounds=b", "output=y"],
        ["facectx.segment.folder:replace_folder"],
    ),
    ("export", ["output=y"], ["facectx.inference.export:export_model"]),
    ("augment", ["output=y", "data.root=r"], ["facectx.inference.predict:augment"]),
    ("eval", [], ["facectx.evaluation.harness:Evaluator.__init__"]),
]

# Differences on purpose: (config, key, API) -> why
DELIBERATE = {
    # the command resolves null to the checkpoint's recorded frame before it builds a preparer;
    # the function builds one for a frame it is given
    ("hallucinate", "eye_distance", "facectx.inference.portraits:build_preparer"): "frame",
    ("hallucinate", "eye_y", "facectx.inference.portraits:build_preparer"): "frame",
    # the command finds LFW's pairs beside the checkout; the library assumes no data layout
    ("eval", "pairs", "facectx.evaluation.harness:Evaluator.__init__"): "layout",
}


def _defaults(obj) -> dict:
    if dataclasses.is_dataclass(obj):
        return {
            f.name: f.default
            for f in dataclasses.fields(obj)
            if f.default is not dataclasses.MISSING
        }
    params = inspect.signature(obj).parameters.items()
    return {k: p.default for k, p in params if p.default is not inspect.Parameter.empty}


def _resolve(spec: str):
    module, _, attr = spec.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize(("config", "overrides", "apis"), PAIRS, ids=[p[2][0] for p in PAIRS])
def test_api_defaults_are_the_command_line_defaults(config, overrides, apis):
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(compose_config(config, overrides), resolve=False)
    options = {**cfg, **(cfg.get("data") or {})}  # augment and eval keep some under data.
    checked, wrong = 0, []
    for spec in apis:
        for key, default in _defaults(_resolve(spec)).items():
            if key not in options or isinstance(options[key], dict):
                continue
            checked += 1
            if options[key] != default and (config, key, spec) not in DELIBERATE:
                wrong.append(f"{config}.yaml {key}={options[key]!r} but {spec}({key}={default!r})")
    assert checked, f"no shared option between {config}.yaml and {apis}"
    assert not wrong, "\n".join(wrong)


def test_a_photo_in_python_gets_a_portrait_per_face_as_on_the_command_line():
    from facectx.inference.hallucinator import Hallucinator

    cli = compose_config("hallucinate", ["input=x", "output=y"]).faces
    assert cli == "all"
    assert inspect.signature(Hallucinator.hallucinate_photo).parameters["faces"].default == cli


def _unknown(call):
    from facectx.pretrained.registry import UnknownModelError

    with pytest.raises(UnknownModelError) as info:
        call()
    err = info.value
    assert isinstance(err, KeyError) and isinstance(err, ValueError)  # old handlers still catch
    assert isinstance(err, _user_errors())  # the CLIs show it as one line, exit code 2
    assert not str(err).startswith("'")  # not KeyError's repr-quoted text
    return str(err)


def test_from_pretrained_with_an_unknown_name_lists_the_shipped_models():
    from facectx.inference import Hallucinator, load_hallucinator

    msg = _unknown(lambda: Hallucinator.from_pretrained("no-such-model"))
    assert "'no-such-model'" in msg and "lfw-128" in msg
    assert "lfw-128" in _unknown(lambda: load_hallucinator("pretrained:no-such-model"))


def test_an_unknown_registry_entry_lists_the_known_ones():
    from facectx.pretrained import registry

    msg = _unknown(lambda: registry.get_entry("no-such-net"))
    assert "dlib-resnet" in msg and "hallucinator-lfw-128" in msg
    assert "dlib-resnet" in _unknown(lambda: registry.load("no-such-net"))


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "FACECTX_ROOT": str(cwd), "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
    )


def test_cli_unknown_pretrained_is_one_line_naming_the_shipped_models(tmp_path):
    from facectx.assets import sample_root

    res = _cli(
        "facectx.hallucinate",
        "ckpt=pretrained:no-such-model",
        f"input={sample_root()}",
        f"output={tmp_path / 'out'}",
        cwd=tmp_path,
    )
    text = res.stdout + res.stderr  # Hydra logs to stdout
    assert res.returncode == 2, text[-2000:]
    errors = [line for line in text.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "no-such-model" in errors[0] and "lfw-128" in errors[0]
    assert "Traceback" not in text
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [["path", "no-such-net"], ["check", "no-such-net"]])
def test_weights_cli_unknown_name_lists_the_known_ones(command, capsys):
    from facectx.weights import main

    assert main(command) == 2
    err = capsys.readouterr().err
    assert "no-such-net" in err and "hallucinator-lfw-128" in err
    assert not err.startswith("'")


def test_a_hallucinator_name_given_to_the_inpainter_says_what_to_do():
    from facectx.inference.inpainter import Inpainter

    msg = _unknown(lambda: Inpainter.from_checkpoint("pretrained:lfw-128"))
    assert "swapinpaint_quickstart" in msg and "facectx.hallucinate" in msg
    assert "lfw-swap-128" in msg  # the shipped SwapInpaint model
