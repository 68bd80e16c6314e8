"""Every ``python -m facectx.<tool> ...`` command in README.md and docs/ composes as written.

The commands are read from the ```bash blocks, joined across ``\\`` continuations, split as a
shell would (so an unquoted ``<run>`` placeholder, which bash reads as a redirection, fails
here too) and composed with Hydra's compose API: unknown keys, missing config options and
malformed overrides fail in milliseconds, without running anything. Sweeps (``-m a=x,y``)
are checked value by value. A command that needs a GPU must say so on its line, beside a CPU
form.
"""

from __future__ import annotations

import re
import shlex
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
        assert args[:1] in ([], ["list"], ["fetch"], ["verify"], ["path"], ["--help"]), where
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
