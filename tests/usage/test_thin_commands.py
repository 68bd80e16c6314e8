"""The folder commands are thin front doors: library code lives in library modules, which never
import a command module; the names callers import from the commands stay importable."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import facectx

CLI = ("prepare", "hallucinate", "background", "inpaint", "augment", "train", "evaluate")
CLI += ("report", "export", "app", "weights", "bank")
SRC = Path(facectx.__file__).parent


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_no_library_module_imports_a_command_module():
    bad = []
    for path in SRC.rglob("*.py"):
        own = path.relative_to(SRC).with_suffix("").as_posix().replace("/", ".")
        for name in _imported(path):
            command = name.removeprefix("facectx.")
            if name.startswith("facectx.") and command in CLI and command != own:
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert bad == []


@pytest.mark.parametrize(
    ("command", "names"),
    [
        ("prepare", ["prepare_folder", "read_splits", "Summary", "PrepareInterrupted"]),
        ("hallucinate", ["hallucinate_folder", "hallucinate_photos", "is_prepared_folder"]),
        ("background", ["replace_folder", "pick_backgrounds", "build_segmenter"]),
        ("inpaint", ["inpaint_photos", "mask_arguments"]),
        ("augment", ["augment", "KILLED_EXIT", "AugmentModule", "ShardWriter", "merge_manifest"]),
    ],
)
def test_the_commands_keep_their_python_names(command, names):
    import importlib

    module = importlib.import_module(f"facectx.{command}")
    assert callable(module.run) and callable(module.main)
    assert [n for n in names if not hasattr(module, n)] == []
