"""Every command's front door: an ordinary user error is one logged line and exit code 2.

Each case runs the command's ``main()`` in this process (as ``python -m facectx.<command>``
would, with ``sys.argv`` set), so the table stays fast: what it checks is the path from a bad
argument to the message, not the work behind it. The wording is each error's own; the test
asks for the exit code, for no traceback, and for the offending path or key in the message.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facectx.assets import sample_root
from swapinpaint.conftest import needs_dlib, swapinpaint_checkpoint

MISSING = "/nonexistent/facectx-missing"


@pytest.fixture()
def folders(tmp_path: Path) -> dict[str, Path]:
    """An unprepared folder (photos, no manifest), a blank 'reference' without a face, and a
    folder that is not a sweep."""
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
            photos / f"p{i}.jpg"
        )
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((128, 128, 3), 127, np.uint8)).save(blank)
    return {"tmp": tmp_path, "photos": photos, "blank": blank}


def _cases(f: dict[str, Path]) -> list[tuple[str, list[str], str]]:
    """(command, arguments, text the one line must contain)."""
    out = f["tmp"] / "out"
    logs = f"paths.log_dir={f['tmp'] / 'logs'}"
    return [
        # a missing input
        ("prepare", [f"input={MISSING}", f"output={out}"], MISSING),
        ("hallucinate", [f"input={MISSING}", f"output={out}"], MISSING),
        (
            "background",
            [f"input={MISSING}", f"backgrounds={f['photos']}", f"output={out}"],
            MISSING,
        ),
        ("evaluate", [logs, f"data.root={MISSING}", "method=[mask_only]"], MISSING),
        ("report", [logs, f"sweep_dir={MISSING}"], MISSING),
        ("train", [logs, "experiment=quickstart", f"data.root={MISSING}"], MISSING),
        # a missing checkpoint
        ("hallucinate", [f"ckpt={MISSING}.ckpt", f"input={f['photos']}", f"output={out}"], MISSING),
        ("export", [f"ckpt={MISSING}.ckpt", f"output={out}/m.pt"], MISSING),
        (
            "augment",
            [logs, f"ckpt={MISSING}.ckpt", f"data.root={sample_root()}", f"output={out}"],
            MISSING,
        ),
        ("evaluate", [logs, f"ckpt={MISSING}.ckpt"], MISSING),
        (
            "inpaint",
            [
                f"ckpt={MISSING}.ckpt",
                f"image={f['blank']}",
                f"reference={f['blank']}",
                f"output={out}",
            ],
            MISSING,
        ),
        ("app", [f"ckpt={MISSING}.ckpt"], MISSING),
        # a mandatory key left out
        ("hallucinate", [f"output={out}"], "input="),
        ("inpaint", [f"image={f['blank']}", f"reference={f['blank']}"], "output="),
        # an unprepared data.root (photos, no manifest)
        ("train", [logs, "experiment=quickstart", f"data.root={f['photos']}"], str(f["photos"])),
        ("evaluate", [logs, f"data.root={f['photos']}", "method=[mask_only]"], str(f["photos"])),
        ("augment", [logs, f"data.root={f['photos']}", f"output={out}"], str(f["photos"])),
        (
            "background",
            [f"input={f['photos']}", f"backgrounds={f['photos']}", f"output={out}"],
            str(f["photos"]),
        ),
        # a folder that is not a sweep
        ("report", [logs, f"sweep_dir={f['photos']}"], str(f["photos"])),
    ]


def _ids() -> list[str]:
    names = ["missing input"] * 6 + ["missing checkpoint"] * 6 + ["missing key"] * 2
    names += ["unprepared root"] * 4 + ["not a sweep"]
    commands = [
        c for c, _, _ in _cases({"tmp": Path("t"), "photos": Path("p"), "blank": Path("b")})
    ]
    return [f"{c}: {n}" for c, n in zip(commands, names, strict=True)]


@pytest.mark.parametrize("index", range(19), ids=_ids())
def test_a_user_error_is_one_line_and_exit_code_2(index, folders, monkeypatch, capfd):
    command, args, needle = _cases(folders)[index]
    module = importlib.import_module(f"facectx.{command}")
    logs = f"paths.log_dir={folders['tmp'] / 'logs'}"  # Hydra's run folder, never the cwd
    args = args if any(a.startswith("paths.log_dir=") for a in args) else [*args, logs]
    monkeypatch.setattr(sys, "argv", [f"facectx-{command}", *args])
    monkeypatch.setenv("WANDB_MODE", "offline")
    with pytest.raises(SystemExit) as info:
        module.main()
    captured = capfd.readouterr()
    text = captured.out + captured.err
    # Hydra's console format: "[time][logger][ERROR] - message"
    errors = [line for line in text.splitlines() if "[ERROR]" in line]
    assert info.value.code == 2, (command, args, text[-3000:])
    assert "Traceback" not in text, text[-3000:]
    assert len(errors) == 1, text[-3000:]
    assert needle in errors[0], (needle, errors[0])


@pytest.mark.parametrize(
    "command",
    [
        "prepare",
        "train",
        "hallucinate",
        "background",
        "inpaint",
        "augment",
        "export",
        "evaluate",
        "report",
        "app",
        "bank",
    ],
)
def test_help_lists_the_usage_every_option_and_the_groups(command, monkeypatch, capsys):
    from facectx._conf import config_dir

    config = "eval" if command == "evaluate" else command
    text = (Path(config_dir()) / f"{config}.yaml").read_text(encoding="utf-8")
    keys = [line.split(":")[0] for line in text.splitlines() if line[:1].isalpha()]
    module = importlib.import_module(f"facectx.{command}")
    monkeypatch.setattr(sys, "argv", [f"facectx-{command}", "--help"])
    module.main()  # prints and returns: no run folder, no work
    out = capsys.readouterr().out
    assert out.startswith(f"python -m facectx.{command}:")
    first_comment = next(line for line in text.splitlines() if line.startswith("# "))
    assert first_comment[2:] in out  # the usage
    for key in keys:
        if key not in ("defaults", "task"):
            assert f"\n{key}:" in out, key
    if "  - detector:" in text:
        assert "detector: fan, [hog], mtcnn" in out


@needs_dlib
def test_a_reference_without_a_face_is_one_line_and_exit_code_2(
    folders, wild_photos, monkeypatch, capfd
):
    from facectx import inpaint

    ckpt = swapinpaint_checkpoint(folders["tmp"] / "si.ckpt", 128, 128, "dlib-resnet")
    out = folders["tmp"] / "out.png"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "facectx-inpaint",
            f"ckpt={ckpt}",
            f"image={wild_photos / 'img1.jpg'}",
            f"reference={folders['blank']}",
            f"output={out}",
            f"paths.log_dir={folders['tmp'] / 'logs'}",
        ],
    )
    with pytest.raises(SystemExit) as info:
        inpaint.main()
    text = "".join(capfd.readouterr())
    errors = [line for line in text.splitlines() if "[ERROR]" in line]
    assert info.value.code == 2 and "Traceback" not in text, text[-3000:]
    assert len(errors) == 1 and "reference" in errors[0] and "face" in errors[0], errors
    assert not out.exists()
