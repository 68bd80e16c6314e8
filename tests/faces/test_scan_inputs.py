"""Every entry of an input folder is accounted for, and reading a photo tells the file's fault
(a skip) from the machine's (the job must stop)."""

from __future__ import annotations

import builtins
import errno
import os
from pathlib import Path

import pytest

from _inputs import IGNORED, PHOTOS, REJECTED, messy_folder, photo
from facectx._jobrecord import is_environmental
from facectx.faces.io import ImageReadError, list_images, read_image, read_png, scan_inputs


@pytest.fixture()
def messy(tmp_path: Path) -> Path:
    return messy_folder(tmp_path / "in")


def test_every_entry_is_a_photo_a_rejected_entry_or_an_ignored_one(messy):
    scan = scan_inputs(messy)
    assert [s for s, _ in scan.images] == list(PHOTOS)
    assert {r.source: r.reason for r in scan.rejected} == REJECTED
    assert all(r.detail for r in scan.rejected)
    assert {r.source: r.reason for r in scan.ignored} == IGNORED
    # every entry once: 14 names under in/, plus sub/b.PNG and x.jpg/inside.jpg; `sub` is searched
    assert scan.folders == 1
    assert scan.entries == len(scan.images) + len(scan.rejected) + len(scan.ignored) + 1 == 16
    line = scan.summary()
    assert "\n" not in line
    assert "16 entries: 4 photos, 1 folder searched, 7 rejected" in line
    assert "symlink_loop 2" in line and "4 ignored" in line and "notes.txt" in line


def test_list_images_keeps_its_behaviour(messy):
    """Callers that want only images still get list_images' answer (files in hidden folders
    included, as before); loops, the FIFO and the folder named x.jpg never reach them."""
    got = [p.relative_to(messy).as_posix() for p in list_images(messy)]
    assert got == [".thumbs/t.jpg", "a.jpg", "linked.png", "sub/b.PNG", "x.jpg/inside.jpg"]


def test_the_output_folder_inside_the_input_is_not_searched(messy):
    photo(messy / "out" / "images" / "o.png")
    scan = scan_inputs(messy, exclude=messy / "out")
    assert not any(s.startswith("out/") for s, _ in scan.images)
    assert ("out", "output_folder") in {(r.source, r.reason) for r in scan.ignored}


def test_a_single_file_is_the_one_input(messy):
    scan = scan_inputs(messy / "notes.txt")  # named by the user: read (and skipped) as a photo
    base = messy.resolve()
    assert scan.base == base and scan.images == [("notes.txt", base / "notes.txt")]
    assert scan.entries == 1 and not scan.rejected and not scan.ignored
    with pytest.raises(FileNotFoundError):
        scan_inputs(messy / "missing")


def test_an_unreadable_subfolder_is_the_machines_error_not_an_empty_one(messy, monkeypatch):
    real = os.scandir

    def denied(path="."):
        if Path(path).name == "sub":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", denied)
    with pytest.raises(PermissionError):
        scan_inputs(messy)


def _guard_open(monkeypatch, target: Path, error: OSError, on_read: bool = False) -> None:
    """``open`` of ``target`` fails with ``error`` (root ignores chmod 000, so the test injects
    the error the kernel would give a normal user); ``on_read``: the open works, reads fail."""
    real = builtins.open

    class FailingReads:
        def __init__(self, f):
            self._f = f

        def read(self, *a):
            raise error

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    def guarded(file, *a, **k):
        if isinstance(file, str | os.PathLike) and Path(file).resolve() == target.resolve():
            if not on_read:
                raise error
            return FailingReads(real(file, *a, **k))
        return real(file, *a, **k)

    monkeypatch.setattr(builtins, "open", guarded)


@pytest.mark.parametrize(
    "error, on_read",
    [
        (PermissionError(errno.EACCES, "Permission denied"), False),
        (OSError(errno.EPERM, "Operation not permitted"), False),
        (OSError(errno.EIO, "Input/output error"), True),
        (OSError(errno.ESTALE, "Stale file handle"), False),
        (OSError(errno.ENOTCONN, "Transport endpoint is not connected"), False),
        (OSError(errno.ENXIO, "No such device or address"), False),
        (OSError(errno.ENODEV, "No such device"), True),
    ],
    ids=["EACCES", "EPERM", "EIO-on-read", "ESTALE", "ENOTCONN", "ENXIO", "ENODEV-on-read"],
)
def test_the_machines_errors_are_not_a_photos_fault(tmp_path, monkeypatch, error, on_read):
    """Permissions, I/O errors and lost mounts raise the OSError (naming the file), which
    FolderJob stops on, instead of an ImageReadError the jobs would record as a skip."""
    path = photo(tmp_path / "p.png")
    _guard_open(monkeypatch, path, error, on_read)
    for read in (read_image, read_png):
        with pytest.raises(OSError) as info:
            read(path)
        assert not isinstance(info.value, ImageReadError)
        assert info.value.errno == error.errno and info.value.filename == str(path)
        assert is_environmental(info.value)


def test_a_photos_own_faults_are_still_image_read_errors(tmp_path):
    (tmp_path / "text.jpg").write_text("not a jpeg")
    (tmp_path / "folder.jpg").mkdir()
    for name, reason in [("text.jpg", "not a recognised"), ("missing.jpg", "not found")]:
        with pytest.raises(ImageReadError, match=reason):
            read_image(tmp_path / name)
    with pytest.raises(ImageReadError):
        read_image(tmp_path / "folder.jpg")
    for name in ("text.jpg", "missing.jpg", "folder.jpg"):
        with pytest.raises(ImageReadError):
            read_png(tmp_path / name)
