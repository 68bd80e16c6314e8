"""augment's reader: a face PNG the machine cannot read stops the run (the error propagates out
of the dataset) instead of becoming a skipped face that a rerun would never redo."""

from __future__ import annotations

import builtins
import errno
import os
from pathlib import Path

import numpy as np
import pytest

from facectx.faces.io import write_png
from facectx.inference.predict import MaskedFaces


@pytest.fixture()
def faces(tmp_path: Path) -> MaskedFaces:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    write_png(tmp_path / "images" / "a.png", np.full((16, 16, 3), 90, np.uint8))
    write_png(tmp_path / "masks" / "a.png", np.full((16, 16), 255, np.uint8))
    rows = [{"id": "a", "image": "images/a.png", "mask": "masks/a.png"}]
    return MaskedFaces(tmp_path, rows, 16)


def test_a_readable_face_and_a_missing_one(faces):
    assert faces[0]["error"] == "" and int(faces[0]["image"][0, 0, 0]) == 90
    (faces.root / "masks" / "a.png").unlink()
    assert "missing or unreadable" in faces[0]["error"]  # the face's own problem: a skip


@pytest.mark.parametrize("code", [errno.EACCES, errno.EIO])
def test_the_machines_read_error_propagates(faces, monkeypatch, code):
    real = builtins.open
    target = faces.root / "images" / "a.png"

    def guarded(file, *a, **k):
        if isinstance(file, str | os.PathLike) and Path(file) == target:
            raise OSError(code, os.strerror(code), str(file))
        return real(file, *a, **k)

    monkeypatch.setattr(builtins, "open", guarded)
    with pytest.raises(OSError) as info:
        faces[0]
    assert info.value.errno == code
