"""A device that is not there (``device=cuda`` on a machine without a GPU, ``cuda:3`` beyond
the count, an unknown name, ``trainer=gpu`` without a GPU) ends every command in one line that
names the key as typed and the fix, with exit code 2, before any work."""

from __future__ import annotations

import functools
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from facectx._conf import ConfigError, check_device


def _returning(real, result):
    """``real`` answering ``result``; keeps ``__wrapped__``, which torch._dynamo reads at import."""

    @functools.wraps(real)
    def fake(*args, **kwargs):
        return result

    return fake


@pytest.fixture()
def no_gpu(monkeypatch):
    """This machine as one without CUDA or MPS, whatever it really has."""
    monkeypatch.setattr(torch.cuda, "is_available", _returning(torch.cuda.is_available, False))
    monkeypatch.setattr(torch.cuda, "device_count", _returning(torch.cuda.device_count, 0))
    monkeypatch.setattr(
        torch.backends.mps, "is_available", _returning(torch.backends.mps.is_available, False)
    )


@pytest.fixture()
def one_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", _returning(torch.cuda.is_available, True))
    monkeypatch.setattr(torch.cuda, "device_count", _returning(torch.cuda.device_count, 1))


@pytest.mark.parametrize(
    ("key", "value", "needles"),
    [
        ("device", "cuda", ["device=cuda", "device=cpu"]),
        ("device", "cuda:0", ["device=cuda:0", "device=cpu"]),
        ("device", "mps", ["device=mps", "device=cpu"]),
        ("detector.device", "cuda", ["detector.device=cuda", "detector.device=cpu"]),
        ("device", "gpu", ["device=gpu", "device=cpu", "device=cuda"]),
        ("device", "cuda:x", ["device=cuda:x", "device=cpu"]),
    ],
)
def test_a_device_that_is_not_here_is_one_line_naming_the_key_and_the_fix(
    no_gpu, key, value, needles
):
    with pytest.raises(ConfigError) as info:
        check_device(value, key)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_a_gpu_index_beyond_the_count_names_the_gpus_there_are(one_gpu):
    check_device("cuda", "device")
    check_device("cuda:0", "device")
    with pytest.raises(ConfigError, match=r"device=cuda:3: .*1 CUDA GPU.*device=cuda:0"):
        check_device("cuda:3", "device")


def test_cpu_needs_no_torch_import():
    # in a fresh interpreter: this test process has torch loaded already
    code = (
        "import sys; from facectx._conf import check_device; "
        "check_device('cpu', 'device'); check_device('cpu:0', 'device'); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _blank(tmp_path: Path) -> Path:
    import numpy as np
    from PIL import Image

    path = tmp_path / "blank.png"
    Image.fromarray(np.full((64, 64, 3), 127, np.uint8)).save(path)
    return path


def _cases(tmp: Path) -> list[tuple[str, list[str], str]]:
    """(command, arguments, the key as the message must name it)."""
    out = f"output={tmp / 'out'}"
    blank = _blank(tmp)
    return [
        ("hallucinate", [f"input={blank}", out, "device=cuda"], "device=cuda"),
        ("inpaint", ["ckpt=x.ckpt", f"image={blank}", out, "device=cuda"], "device=cuda"),
        ("evaluate", ["method=[mask_only]", "device=cuda:1"], "device=cuda:1"),
        ("app", ["device=cuda"], "device=cuda"),
        (
            "prepare",
            [f"input={tmp}", out, "detector=fan", "detector.device=cuda"],
            "detector.device=cuda",
        ),
        (
            "background",
            [
                f"input={tmp}",
                f"backgrounds={tmp}",
                out,
                "segmenter=network",
                "segmenter.device=mps",
            ],
            "segmenter.device=mps",
        ),
        ("train", ["trainer=gpu"], "trainer=gpu"),
        ("augment", [out, "data.root=x", "trainer=gpu"], "trainer=gpu"),
    ]


_IDS = ["hallucinate", "inpaint", "evaluate", "app", "prepare", "background", "train", "augment"]


@pytest.mark.parametrize("index", range(len(_IDS)), ids=_IDS)
def test_every_command_refuses_a_missing_device_in_one_line(
    index, no_gpu, tmp_path, monkeypatch, capfd
):
    command, args, needle = _cases(tmp_path)[index]
    module = importlib.import_module(f"facectx.{command}")
    logs = tmp_path / "logs"
    monkeypatch.setattr(sys, "argv", [command, *args, f"paths.log_dir={logs}"])
    with pytest.raises(SystemExit) as info:
        module.main()
    text = "".join(capfd.readouterr())
    errors = [line for line in text.splitlines() if "[ERROR]" in line]
    assert info.value.code == 2, text
    assert len(errors) == 1 and needle in errors[0], text
    assert "cpu" in errors[0] and "Traceback" not in text, text
    assert not (tmp_path / "out").exists() and not logs.exists()


def test_cli_hallucinate_on_cuda_without_a_gpu_is_one_line_and_exit_code_2(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HYDRA_FULL_ERROR": "0"}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "facectx.hallucinate",
            f"input={_blank(tmp_path)}",
            f"output={tmp_path / 'out'}",
            "device=cuda",
            f"paths.log_dir={tmp_path / 'logs'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    lines = (res.stdout + res.stderr).splitlines()
    assert res.returncode == 2, res.stdout + res.stderr
    assert len(lines) == 1, lines
    assert "device=cuda" in lines[0] and "device=cpu" in lines[0], lines
