"""FolderJob: the resumable bookkeeping prepare, hallucinate, background, inpaint and augment
share (done set, skips, stale temporary files, machine errors, the folder's record, parts)."""

from __future__ import annotations

import errno

import pytest

from facectx.data.manifest import read_rows
from facectx.folderjob import FolderJob, JobStoppedError, OutputFolderError, item_error

COLUMNS = ("id", "output", "source")


def _job(folder, **kw) -> FolderJob:
    kw = {"results": "outputs.csv", "columns": COLUMNS, "key": "source", **kw}
    return FolderJob(folder, **kw)


def _run(folder, items, fail_on=(), **kw) -> FolderJob:
    """Each item is done, except those in ``fail_on`` (skipped with reason ``bad``)."""
    with _job(folder, **kw) as job:
        for item in job.todo(items):
            if item in fail_on:
                job.skip(item, "bad", f"{item} is bad")
            else:
                job.done({"id": item + "_0", "output": f"{item}.png", "source": item})
            job.advance()
    return job


def test_the_done_set_comes_from_both_csvs_and_a_rerun_does_the_rest(tmp_path):
    first = _run(tmp_path, ["a", "b", "c"], fail_on={"b"})
    assert first.already_done == 0 and dict(first.skipped) == {"bad": 1}
    assert [r["source"] for r in read_rows(tmp_path / "outputs.csv")] == ["a", "c"]
    assert read_rows(tmp_path / "skipped.csv") == [
        {"source": "b", "reason": "bad", "detail": "b is bad"}
    ]
    again = _run(tmp_path, ["a", "b", "c", "d"])
    assert again.already_done == 3 and not again.skipped  # b's skip row counts as done
    assert [r["source"] for r in read_rows(tmp_path / "outputs.csv")] == ["a", "c", "d"]


def test_retry_skipped_tries_skipped_items_again(tmp_path):
    _run(tmp_path, ["a", "b"], fail_on={"b"}, retry_skipped=True)
    again = _run(tmp_path, ["a", "b"], retry_skipped=True)
    assert again.already_done == 1
    assert [r["source"] for r in read_rows(tmp_path / "outputs.csv")] == ["a", "b"]


def test_skips_are_counted_per_reason_and_limit_leaves_the_rest(tmp_path):
    with _job(tmp_path) as job:
        todo = job.todo(["a", "b", "c", "d", "e"], limit=3)
        assert todo == ["a", "b", "c"] and job.remaining == 2
        job.skip("a", "no_face")
        job.skip("b", "no_face", "none found")
        job.skip("c", "unreadable", "truncated")
    assert dict(job.skipped) == {"no_face": 2, "unreadable": 1}
    assert _run(tmp_path, ["a", "b", "c", "d", "e"]).already_done == 3


def test_keys_from_items_and_the_skipped_csvs_own_first_column(tmp_path):
    columns = ("image", "reason", "detail")
    items = [("x.jpg", 1), ("y.jpg", 2)]
    with _job(tmp_path, key="image", columns=("image",), skipped_columns=columns) as job:
        for name, _ in job.todo(items, key=lambda it: it[0]):
            job.skip(name, "no_face")
    assert [r["image"] for r in read_rows(tmp_path / "skipped.csv")] == ["x.jpg", "y.jpg"]


def test_a_killed_runs_temporary_files_are_removed_and_its_half_row_cut(tmp_path):
    (tmp_path / "masks").mkdir(parents=True)
    stale = [tmp_path / ".a.png.123.tmp", tmp_path / "masks" / ".a.png.123.tmp"]
    for p in stale:
        p.write_bytes(b"partial")
    kept = tmp_path / "a.png"
    kept.write_bytes(b"png")
    # a kill in the middle of b's write: its row lacks the newline, so it is not complete
    (tmp_path / "outputs.csv").write_text("id,output,source\na_0,a.png,a\nb_0,b.png,b")
    job = _run(tmp_path, ["a", "b"], clean=(".", "masks", "previews"))
    assert not any(p.exists() for p in stale) and kept.exists()
    assert (tmp_path / "previews").is_dir()
    assert job.already_done == 1  # the cut-off row of b is not done: b is redone
    assert [r["source"] for r in read_rows(tmp_path / "outputs.csv")] == ["a", "b"]


def test_a_glob_clean_pattern_only_clears_existing_folders(tmp_path):
    (tmp_path / "shard_00000").mkdir(parents=True)
    (tmp_path / "shard_00000" / ".x.png.1.tmp").write_bytes(b"")
    job = _job(tmp_path, clean=("shard_*",))
    assert job.tidy() == 1 and not (tmp_path / "shard_*").exists()


def test_a_machine_error_stops_the_job_and_keeps_what_was_finished(tmp_path):
    disk_full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "b.png"))
    with pytest.raises(JobStoppedError, match=r"stopped at b: No space left on device.*rerun"):
        with _job(tmp_path) as job:
            for item in job.todo(["a", "b", "c"]):
                if item == "b":
                    try:
                        raise disk_full
                    except Exception as e:
                        job.fail(item, e)
                job.done({"id": item + "_0", "output": f"{item}.png", "source": item})
    assert [r["source"] for r in read_rows(tmp_path / "outputs.csv")] == ["a"]
    assert read_rows(tmp_path / "skipped.csv") == []  # never a skip
    again = _run(tmp_path, ["a", "b", "c"])
    assert again.already_done == 1
    assert [r["source"] for r in read_rows(tmp_path / "outputs.csv")] == ["a", "b", "c"]


def test_an_items_own_error_is_a_skip_with_its_type(tmp_path):
    with _job(tmp_path) as job:
        job.todo(["a"])
        job.fail("a", ValueError("odd header"))
    assert read_rows(tmp_path / "skipped.csv") == [
        {"source": "a", "reason": "error", "detail": "ValueError: odd header"}
    ]
    assert item_error(KeyError("k"), "a", tmp_path) == "KeyError: 'k'"
    with pytest.raises(JobStoppedError):
        item_error(MemoryError(), "a", tmp_path)


def test_a_rerun_with_other_settings_is_refused_before_anything_is_written(tmp_path):
    _run(tmp_path, ["a"], record={"job": "t", "weights": "1", "seed": 0})
    before = (tmp_path / "outputs.csv").read_bytes()
    with pytest.raises(OutputFolderError, match=r"seed 0 -> 1.*new output= folder"):
        _run(tmp_path, ["a", "b"], record={"job": "t", "weights": "1", "seed": 1})
    assert (tmp_path / "outputs.csv").read_bytes() == before
    assert _run(tmp_path, ["a", "b"], record={"job": "t", "weights": "1", "seed": 0}).already_done


def test_parts_of_several_processes_count_as_done_and_merge_in_order(tmp_path):
    jobs = [_job(tmp_path, key="id") for _ in range(2)]
    for rank, job in enumerate(jobs):
        job.open_csvs(rank=rank)
    jobs[1].done([{"id": "c", "output": "c.png"}, {"id": "a", "output": "a.png"}])
    jobs[0].done({"id": "b", "output": "b.png"})
    jobs[0].skip("d", "unreadable", "truncated")
    for job in jobs:
        job.close()
    assert jobs[0].read_done() == {"a", "b", "c", "d"}
    assert jobs[0].merge(order="abcd".index) == 3
    assert [r["id"] for r in read_rows(tmp_path / "outputs.csv")] == ["a", "b", "c"]
    assert [r["source"] for r in read_rows(tmp_path / "skipped.csv")] == ["d"]
    assert not (tmp_path / "parts").exists()
    assert jobs[0].read_done() == {"a", "b", "c", "d"}
