"""Every ``python -m facectx.<tool> ...`` command in README.md and docs/ composes as written,
and the cheap ones run and give what the docs promise.

The commands are read from the ```bash blocks, joined across ``\\`` continuations, split as a
shell would (so an unquoted ``<run>`` placeholder, which bash reads as a redirection, fails
here too) and composed with Hydra's compose API: unknown keys, missing config options and
malformed overrides fail in milliseconds, without running anything. Sweeps (``-m a=x,y``)
are checked value by value. A command that needs a GPU must say so on its line, beside a CPU
form.

The commands that finish in seconds on a CPU (``RUNS``: weights list, prepare, hallucinate and
background on two photos, the config print, packing the shipped model) are then run as
written, in a temporary folder, with their placeholders bound to small stand-ins there.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from facectx._conf import config_dir

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONFIG = {  # module -> its Hydra config
    "train": "train",
    "prepare": "prepare",
    "hallucinate": "hallucinate",
    "background": "background",
    "augment": "augment",
    "export": "export",
    "evaluate": "eval",
    "report": "report",
    "inpaint": "inpaint",
    "app": "app",
    "bank": "bank",
}
GPU = re.compile(r"\btrainer=(gpu|ddp)\b|accelerator=(gpu|cuda)|device=cuda")
HYDRA_FLAGS = {"--cfg", "--help", "-h", "--hydra-help", "--info", "-c", "--resolve"}


def _bash_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line inside ```bash / ```sh blocks, continuations joined."""
    out, inside, pending, start = [], False, "", 0
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("```"):
            inside = not inside and line.strip()[3:].strip() in ("bash", "sh", "shell", "console")
            continue
        if not inside:
            continue
        if not pending:
            start = n
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    return out


def doc_commands() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for n, line in _bash_blocks(path.read_text(encoding="utf-8")):
            for part in re.split(r"&&|;|\|", line):
                if re.search(r"python -m facectx\.\w+", part):
                    found.append((f"{path.relative_to(ROOT)}:{n}", part.strip()))
    return found


COMMANDS = doc_commands()


def _split_sweep(value: str) -> list[str]:
    """Top-level comma-separated choices of a sweep value (brackets and quotes kept whole)."""
    parts, depth, cur, quote = [], 0, "", None
    for ch in value:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    return [*parts, cur]


def test_the_docs_have_commands():
    assert len(COMMANDS) > 50


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_composes(where, command):
    tokens = shlex.split(command, comments=True)
    assert not {"<", ">"} & set("".join(tokens)), (
        f"{where}: unquoted <placeholder> in a shell command (bash reads it as a redirection); "
        "write RUN, PATH or similar"
    )
    i = tokens.index("python") if "python" in tokens else 0
    module = tokens[i + 2].removeprefix("facectx.")
    args = tokens[i + 3 :]
    if module == "inpaint":  # its CLI reads mask=PATH as a mask file before composing
        from facectx.inpaint import mask_arguments

        args = mask_arguments(args)
    if module == "weights":
        assert args[:1] in ([], ["list"], ["check"], ["path"], ["--help"]), where
        return
    assert module in CONFIG, f"{where}: facectx.{module} is not a known tool"
    if GPU.search(command):
        comment = command.split("#", 1)[1] if "#" in command else ""
        assert re.search("gpu", comment, re.IGNORECASE), (
            f"{where}: a GPU-only command; show the CPU form and mark this one as the GPU form"
        )
    multirun = "-m" in args or "--multirun" in args
    overrides, skip_next = [], False
    for a in args:
        if skip_next:
            skip_next = False
            continue
        if a in ("-m", "--multirun"):
            continue
        if a in HYDRA_FLAGS:
            skip_next = a in ("--cfg", "-c")
            continue
        assert not a.startswith("-"), f"{where}: unknown flag {a}"
        overrides.append(a)
    runs = [overrides]
    if multirun:
        for j, o in enumerate(overrides):
            key, _, value = o.partition("=")
            values = _split_sweep(value)
            if len(values) > 1:
                runs += [[*overrides[:j], f"{key}={v}", *overrides[j + 1 :]] for v in values]
        runs = runs[1:] or runs
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        for ovs in runs:
            try:
                compose(CONFIG[module], overrides=ovs)
            except Exception as exc:  # the message names the override that failed
                pytest.fail(f"{where}: `{command}` does not compose: {exc}")


# ---------------------------------------------------------------- running the cheap ones


@dataclass(frozen=True)
class Run:
    """A documented command to run as written: ``bind`` maps its placeholders (a ``key=value``
    value, or a whole argument) to stand-ins in the work folder, which is the working
    directory."""

    command: str
    bind: dict[str, str] = field(default_factory=dict)


def _normal(command: str) -> str:
    return " ".join(shlex.split(command, comments=True))


SAMPLE = ROOT / "src" / "facectx" / "assets" / "sample"
SHIPPED = ROOT / "src" / "facectx" / "assets" / "pretrained" / "hallucinator_lfw128_fp16.pt"
# two of the sample's faces the HOG detector finds (facectx.demo.EXAMPLES), as LFW-named photos
PHOTOS = {
    "AJ_Lamas_0001_0.png": "AJ_Lamas_0001.png",
    "Aaron_Peirsol_0001_0.png": "Aaron_Peirsol_0001.png",
}

RUNS = {
    "weights": Run("python -m facectx.weights list"),
    "prepare": Run(
        "python -m facectx.prepare input=path/to/photos output=path/to/prepared",
        {"path/to/photos": "my_photos", "path/to/prepared": "prepared"},
    ),
    "hallucinate": Run("python -m facectx.hallucinate input=my_photos/ output=portraits/"),
    "background": Run(
        "python -m facectx.background input=portraits/ backgrounds=my_backgrounds/ output=new_bg/"
    ),
    "background_sample": Run(
        "python -m facectx.background input=src/facectx/assets/sample backgrounds=/tmp/bgs "
        "output=/tmp/sample_b per_face=3 limit=4",
        {
            "src/facectx/assets/sample": str(SAMPLE),
            "/tmp/bgs": "my_backgrounds",
            "/tmp/sample_b": "sample_b",
        },
    ),
    "config": Run("python -m facectx.train experiment=quickstart --cfg job"),
    "pack": Run(
        "python -m facectx.export ckpt=logs/lfw_cpu/RUN/checkpoints/CHOSEN.ckpt format=packed "
        "output=src/facectx/assets/pretrained/hallucinator_lfw128_fp16.pt",
        {
            "logs/lfw_cpu/RUN/checkpoints/CHOSEN.ckpt": "pretrained:lfw-128",
            "src/facectx/assets/pretrained/hallucinator_lfw128_fp16.pt": "packed.pt",
        },
    ),
}


def test_every_command_run_is_documented():
    documented = {_normal(c) for _, c in COMMANDS}
    missing = [name for name, r in RUNS.items() if _normal(r.command) not in documented]
    assert not missing, f"no longer in the docs (update RUNS to the new text): {missing}"


def run_documented(name: str, folder: Path) -> subprocess.CompletedProcess:
    """Run ``RUNS[name]`` in ``folder``; fails with the output's tail on a non-zero exit."""
    spec = RUNS[name]
    tokens = shlex.split(spec.command, comments=True)
    args = []
    for token in tokens[3:]:
        key, eq, value = token.partition("=")
        args.append(f"{key}={spec.bind.get(value, value)}" if eq else spec.bind.get(token, token))
    # Hydra's run folders go under the work folder; nothing is downloaded
    env = {**os.environ, "FACECTX_ROOT": str(folder), "FACECTX_OFFLINE": "1", "COLUMNS": "160"}
    res = subprocess.run(
        [sys.executable, "-m", tokens[2], *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    text = res.stdout + res.stderr
    assert res.returncode == 0, f"`{spec.command}` exited {res.returncode}:\n{text[-3000:]}"
    return res


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """The work folder: ``my_photos/`` (two photos), ``my_backgrounds/`` (two images)."""
    import numpy as np
    from PIL import Image

    if not SAMPLE.is_dir():
        pytest.skip("embedded sample not built")
    folder = tmp_path_factory.mktemp("docs_walk")
    (folder / "my_photos").mkdir()
    for src, dst in PHOTOS.items():
        shutil.copy(SAMPLE / "images" / src, folder / "my_photos" / dst)
    (folder / "my_backgrounds").mkdir()
    rng = np.random.default_rng(0)
    for k in range(2):
        ramp = np.linspace(0, 255, 320)[None, :, None] * rng.random(3)
        image = np.broadcast_to(ramp, (240, 320, 3)).astype(np.uint8)
        Image.fromarray(image).save(folder / "my_backgrounds" / f"bg{k}.jpg")
    return folder


@pytest.fixture(scope="module")
def portraits(work) -> subprocess.CompletedProcess:
    return run_documented("hallucinate", work)


def test_weights_list_shows_the_shipped_model_present(work):
    out = run_documented("weights", work).stdout
    assert "hallucinator-lfw-128" in out and "present" in out


def test_prepare_writes_the_documented_folder(work):
    run_documented("prepare", work)
    out = work / "prepared"
    rows = _rows(out / "manifest.csv")
    assert [r["person"] for r in rows] == ["AJ_Lamas", "Aaron_Peirsol"]  # LFW names
    for r in rows:
        for key in ("image", "mask", "valid", "landmarks"):
            assert (out / r[key]).is_file()
    assert (out / "meta.json").is_file() and (out / "skipped.csv").is_file()


def test_hallucinate_with_the_shipped_model_writes_the_documented_outputs(work, portraits):
    assert "pretrained model 'exemplar-lfw-128'" in portraits.stdout + portraits.stderr
    out = work / "portraits"
    rows = _rows(out / "outputs.csv")
    assert sorted(r["id"] for r in rows) == ["AJ_Lamas_0001_0", "Aaron_Peirsol_0001_0"]
    for r in rows:
        for path in (f"{r['id']}.png", f"masks/{r['id']}.png", f"previews/{r['id']}.png"):
            assert (out / path).is_file(), path
    assert (out / "job.json").is_file() and (out / "skipped.csv").is_file()


def test_background_on_the_portraits_writes_the_documented_outputs(work, portraits):
    run_documented("background", work)
    out = work / "new_bg"
    rows = _rows(out / "backgrounds.csv")
    assert len(rows) == 2
    for r in rows:
        assert (out / r["output"]).is_file() and (out / r["alpha"]).is_file()
    assert len(list((out / "previews").glob("*_bg0.png"))) == 2
    assert (out / "job.json").is_file()


def test_background_on_the_embedded_sample_gives_per_face_outputs(work):
    run_documented("background_sample", work)
    assert len(_rows(work / "sample_b" / "backgrounds.csv")) == 4 * 3


def test_config_print_shows_the_quickstart_and_trains_nothing(work):
    out = run_documented("config", work).stdout
    assert "task: quickstart" in out
    assert not (work / "logs" / "quickstart").exists()


@pytest.mark.slow  # ~9 s of CPU: loads, packs and checks the model on 16 faces
def test_packing_the_shipped_model_reproduces_its_bytes(work):
    run_documented("pack", work)
    assert (work / "packed.pt").read_bytes() == SHIPPED.read_bytes()  # docs/model_card.md
    assert (work / "packed.pt.json").is_file()  # the check's record, as docs/using_models.md says
