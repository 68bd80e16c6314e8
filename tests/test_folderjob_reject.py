"""FolderJob.reject: input entries that are no items (a GIF, a symlink loop) are listed in
skipped.csv once, and count as done on a rerun."""

from __future__ import annotations

from facectx.data.manifest import read_rows
from facectx.folderjob import FolderJob

ENTRIES = [("anim.gif", "unsupported_format", "GIF is not read"), ("x.jpg", "not_a_file", "")]


def _run(folder, retry_skipped: bool = False) -> FolderJob:
    job = FolderJob(
        folder,
        results="outputs.csv",
        columns=("id", "source"),
        key="source",
        retry_skipped=retry_skipped,
    )
    with job:
        job.reject(ENTRIES)
        for item in job.todo(["a.jpg"]):
            job.done({"id": "a_0", "source": item})
    return job


def test_rejected_entries_are_listed_once_and_done_on_a_rerun(tmp_path):
    first = _run(tmp_path)
    assert dict(first.skipped) == {"unsupported_format": 1, "not_a_file": 1}
    assert [(r["source"], r["reason"]) for r in read_rows(tmp_path / "skipped.csv")] == [
        ("anim.gif", "unsupported_format"),
        ("x.jpg", "not_a_file"),
    ]
    again = _run(tmp_path)
    assert again.already_done == 3 and not again.skipped
    assert len(read_rows(tmp_path / "skipped.csv")) == 2


def test_with_retry_skipped_they_count_as_skipped_again_without_a_second_row(tmp_path):
    _run(tmp_path, retry_skipped=True)
    again = _run(tmp_path, retry_skipped=True)
    assert again.already_done == 1  # a.jpg
    assert dict(again.skipped) == {"unsupported_format": 1, "not_a_file": 1}
    assert len(read_rows(tmp_path / "skipped.csv")) == 2
