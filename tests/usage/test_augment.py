"""Dataset augmentation through Lightning's predict loop: shards, manifest, kill + resume, DDP."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facectx.faces.io import read_png

from .conftest import needs_sample, replicate_sample

pytestmark = needs_sample


def _manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def _cli(*args: str, root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "facectx.augment", *args, f"paths.root_dir={root}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _check_complete(out: Path, prepared: Path, n: int, shard_size: int) -> list[dict[str, str]]:
    """Exactly n outputs, each listed once, each file present, nothing else on disk."""
    from facectx.assets import sample_root

    rows = _manifest(out)
    assert len(rows) == n and len({r["id"] for r in rows}) == n
    files = sorted(p.relative_to(out).as_posix() for p in out.glob("shard_*/*"))
    assert files == sorted(r["output"] for r in rows)  # no orphans, no tmp files
    assert not list(out.glob("shard_*/.*"))
    assert not (out / "parts").exists()
    with open(prepared / "manifest.csv", newline="") as f:
        src = {r["id"]: (i, r) for i, r in enumerate(csv.DictReader(f))}
    for r in rows:
        i, s = src[r["id"]]
        assert int(r["shard"]) == i // shard_size
        assert r["output"] == f"shard_{i // shard_size:05d}/{r['id']}.png"
        assert (r["source"], r["person"]) == (s["source"], s["person"])
    for r in rows[:: max(1, n // 7)]:  # face pixels are the input's exactly
        base = r["id"].split("~")[0]
        image = read_png(Path(sample_root()) / "images" / f"{base}.png")
        keep = read_png(Path(sample_root()) / "masks" / f"{base}.png") > 0
        out_img = read_png(out / r["output"])
        np.testing.assert_array_equal(out_img[keep], image[keep])
        assert not np.array_equal(out_img[~keep], image[~keep])
    return rows


def test_killed_run_resumes_to_exactly_300_outputs(tmp_path, tiny_ckpt):
    from facectx.inference.predict import KILLED_EXIT, augment

    prepared = replicate_sample(tmp_path / "prep300", 300)
    out = tmp_path / "aug"
    args = [
        f"ckpt={tiny_ckpt}",
        f"data.root={prepared}",
        f"output={out}",
        "data.batch_size=32",
        "data.num_workers=0",
        "shard_size=64",
        "trainer.enable_progress_bar=false",
        "fail_after_batches=3",
    ]
    proc = _cli(*args, root=tmp_path)
    assert proc.returncode == KILLED_EXIT, proc.stderr[-3000:]
    # the kill left 3 listed batches, a 4th batch of images nobody lists, and a temp file
    with open(out / "parts" / "rank0.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 96
    assert len(list(out.glob("shard_*/*.png"))) == 128
    assert list(out.glob("shard_*/.*.tmp"))
    assert not (out / "manifest.csv").exists()

    result = augment(
        str(tiny_ckpt), str(prepared), str(out), batch_size=48, num_workers=0, shard_size=64
    )
    assert result["written"] == 204 and result["already_done"] == 96
    assert result["img_per_s"] > 0
    _check_complete(out, prepared, 300, 64)
    # a third run has nothing to do and changes nothing
    again = augment(str(tiny_ckpt), str(prepared), str(out), shard_size=64, num_workers=0)
    assert again["written"] == 0 and again["already_done"] == 300
    assert len(_manifest(out)) == 300


def test_bf16_predict_keeps_face_pixels_exact_and_skips_unreadable(tmp_path, tiny_ckpt):
    """The GPU path's precision (bf16-mixed autocast), run on the CPU; a face whose files are
    missing goes to skipped.csv and the run goes on."""
    import pytorch_lightning as pl

    from facectx.inference.predict import augment

    prepared = replicate_sample(tmp_path / "prep", 12)
    with open(prepared / "manifest.csv", "a", newline="") as f:
        f.write("ghost,images/ghost.png,masks/ghost.png,,,ghost.jpg,0,,,\n")
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        precision="bf16-mixed",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    out = tmp_path / "aug"
    res = augment(
        str(tiny_ckpt),
        str(prepared),
        str(out),
        trainer=trainer,
        batch_size=5,
        num_workers=0,
        shard_size=5,
        channels_last=True,
    )
    assert res["written"] == 12 and res["skipped"] == 1
    _check_complete(out, prepared, 12, 5)
    with open(out / "skipped.csv", newline="") as f:
        assert [(r["source"], r["reason"]) for r in csv.DictReader(f)] == [("ghost", "unreadable")]
    again = augment(str(tiny_ckpt), str(prepared), str(out), shard_size=5, num_workers=0)
    assert again["written"] == 0 and again["already_done"] == 13


def test_refuses_a_different_shard_size_on_resume(tmp_path, tiny_ckpt):
    from facectx.inference.predict import augment

    prepared = replicate_sample(tmp_path / "prep", 4)
    out = tmp_path / "aug"
    augment(str(tiny_ckpt), str(prepared), str(out), shard_size=2, num_workers=0)
    with pytest.raises(ValueError, match="shard_size"):
        augment(str(tiny_ckpt), str(prepared), str(out), shard_size=3, num_workers=0)


@pytest.mark.slow
def test_ddp_cpu_two_processes_write_each_face_once(tmp_path, tiny_ckpt):
    prepared = replicate_sample(tmp_path / "prep", 70)
    out = tmp_path / "aug"
    proc = _cli(
        f"ckpt={tiny_ckpt}",
        f"data.root={prepared}",
        f"output={out}",
        "trainer=ddp_cpu",
        "data.batch_size=8",
        "data.num_workers=0",
        "shard_size=16",
        "trainer.enable_progress_bar=false",
        root=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "2 process(es)" in proc.stdout + proc.stderr
    _check_complete(out, prepared, 70, 16)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_sigkill_then_rerun_gives_exactly_the_full_set_and_no_orphan(tmp_path, tiny_ckpt):
    """A real SIGKILL in the middle of `python -m facectx.augment` (loader worker running):
    the worker dies with it, and a rerun of the same command completes exactly 300 outputs."""
    import signal
    import time

    from _procs import alive, children

    prepared = replicate_sample(tmp_path / "prep300", 300)
    out = tmp_path / "aug"
    args = [
        f"ckpt={tiny_ckpt}",
        f"data.root={prepared}",
        f"output={out}",
        "data.batch_size=16",
        "data.num_workers=1",
        "shard_size=64",
        "trainer.enable_progress_bar=false",
        f"paths.root_dir={tmp_path}",
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "facectx.augment", *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        part = out / "parts" / "rank0.csv"
        deadline = time.monotonic() + 300
        while not (part.is_file() and len(part.read_text().splitlines()) > 33):
            assert proc.poll() is None, "augment ended before it could be killed"
            assert time.monotonic() < deadline, "no batch written within 300 s"
            time.sleep(0.05)
        workers = children(proc.pid)
        assert workers, "augment runs no loader worker with data.num_workers=1"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert not (out / "manifest.csv").exists()  # it died before finishing
        time.sleep(8)  # the loader worker notices its parent is gone within ~5 s
        assert [w for w in workers if alive(w)] == []
    finally:
        proc.kill()
    rerun = _cli(*args[:-1], root=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    _check_complete(out, prepared, 300, 64)
