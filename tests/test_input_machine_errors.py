"""A photo the machine cannot read (permission denied, an I/O error) stops prepare and hallucinate
with one line naming it and exit code 2; it is not marked done, and a rerun after the fix
produces it. Each command runs its ``main()`` in this process, as ``python -m`` would.

Root reads a ``chmod 000`` file anyway, so the kernel's answer is injected instead: ``open`` of
that one photo fails (EACCES), or its reads do (EIO), as they would for a normal user or on a
failing disk. Everything else opens files as usual."""

from __future__ import annotations

import builtins
import errno
import importlib
import os
import shutil
import sys
from pathlib import Path

import pytest

from facectx.data.manifest import read_rows


class _FailingReads:
    """A file whose reads fail with ``error`` (a disk that answers open but not read)."""

    def __init__(self, f, error: OSError):
        self._f, self._error = f, error

    def read(self, *a):
        raise self._error

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def _break(monkeypatch, target: Path, error: OSError, on_read: bool) -> None:
    real = builtins.open

    def guarded(file, *a, **k):
        if isinstance(file, str | os.PathLike) and Path(file).resolve() == target.resolve():
            if not on_read:
                raise error
            return _FailingReads(real(file, *a, **k), error)
        return real(file, *a, **k)

    monkeypatch.setattr(builtins, "open", guarded)


def _main(command: str, args: list[str], tmp: Path, monkeypatch, capfd) -> tuple[int, list[str]]:
    """Run ``python -m facectx.<command> args`` in-process: (exit code, its [ERROR] lines)."""
    module = importlib.import_module(f"facectx.{command}")
    argv = [f"facectx-{command}", *args, "progress=false", f"paths.log_dir={tmp / 'logs'}"]
    monkeypatch.setattr(sys, "argv", argv)
    code = 0
    try:
        module.main()
    except SystemExit as e:
        code = e.code
    text = capfd.readouterr()
    errors = [line for line in (text.out + text.err).splitlines() if "[ERROR]" in line]
    assert "Traceback" not in text.out + text.err
    return code, errors


CASES = [
    ("EACCES", PermissionError(errno.EACCES, "Permission denied"), False, "Permission denied"),
    ("EIO", OSError(errno.EIO, "Input/output error"), True, "Input/output error"),
]


@pytest.fixture()
def faces(lfw_split_images, tmp_path) -> Path:
    """Two LFW test photos, one face each."""
    d = tmp_path / "in"
    d.mkdir()
    for p in lfw_split_images("test", 2):
        shutil.copy(p, d / p.name)
    return d


def _stop_then_fix(command, args, bad, out, results, key, tmp, monkeypatch, capfd, case):
    _, error, on_read, words = case
    with monkeypatch.context() as m:
        _break(m, bad, error, on_read)
        code, errors = _main(command, args, tmp, m, capfd)
    assert code == 2
    assert len(errors) == 1 and bad.name in errors[0] and words in errors[0], errors
    listed = {r[key] for r in read_rows(out / results)} | {
        r["source"] for r in read_rows(out / "skipped.csv")
    }
    assert bad.name not in listed  # neither done nor skipped
    code, errors = _main(command, args, tmp, monkeypatch, capfd)  # the permission is fixed
    assert code == 0 and errors == []
    assert bad.name in {r[key] for r in read_rows(out / results)}
    assert not (out / "skipped.csv").exists() or not read_rows(out / "skipped.csv")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_prepare_stops_on_an_unreadable_photo_and_the_rerun_prepares_it(
    faces, tmp_path, monkeypatch, capfd, case
):
    out = tmp_path / "out"
    bad = sorted(faces.iterdir())[1]
    args = [f"input={faces}", f"output={out}", "workers=1"]
    _stop_then_fix(
        "prepare", args, bad, out, "manifest.csv", "source", tmp_path, monkeypatch, capfd, case
    )
    assert len(read_rows(out / "manifest.csv")) == 2


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hallucinate_stops_on_an_unreadable_photo_and_the_rerun_makes_it(
    faces, tmp_path, monkeypatch, capfd, case
):
    from usage.conftest import fake_checkpoint

    out = tmp_path / "out"
    bad = sorted(faces.iterdir())[0]
    ckpt = fake_checkpoint(tmp_path / "m.ckpt")
    args = [f"ckpt={ckpt}", f"input={faces}", f"output={out}", "preview=false"]
    _stop_then_fix(
        "hallucinate", args, bad, out, "outputs.csv", "source", tmp_path, monkeypatch, capfd, case
    )
    assert {r["source"] for r in read_rows(out / "outputs.csv")} == {
        p.name for p in faces.iterdir()
    }
