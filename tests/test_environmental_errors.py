"""The machine's errors (full disk, read-only folder, I/O, memory) stop a job with one line;
an item's own problems do not count as such."""

from __future__ import annotations

import errno
import logging

import pytest

from facectx._conf import cli_errors
from facectx._jobrecord import JobStoppedError, is_environmental, job_stopped


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device", "/out/a.png"),
        OSError(errno.EROFS, "Read-only file system", "/out/a.png"),
        OSError(errno.EIO, "Input/output error"),
        PermissionError(errno.EACCES, "Permission denied", "/out"),
        MemoryError(),
    ],
)
def test_environmental_errors_stop_the_cli_in_one_line(exc, caplog):
    assert is_environmental(exc)
    with pytest.raises(SystemExit) as info, cli_errors(logging.getLogger("t")):
        raise exc
    assert info.value.code == 2
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "\n" not in line and "rerun the same command" in line


@pytest.mark.parametrize(
    "exc",
    [
        FileNotFoundError(errno.ENOENT, "No such file", "photo.jpg"),
        ValueError("not an image"),
        OSError("cannot identify image file"),
    ],
)
def test_an_items_own_problems_are_not_environmental(exc):
    assert not is_environmental(exc)


def test_the_message_names_the_item_the_cause_and_the_file():
    e = job_stopped(OSError(errno.EROFS, "Read-only file system", "/out/x.png"), "a.jpg", "/out")
    assert isinstance(e, JobStoppedError)
    assert str(e).startswith("stopped at a.jpg: Read-only file system (/out/x.png).")
