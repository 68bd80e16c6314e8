"""``python -m facectx.evaluate``: a tiny checkpoint, a folder of outputs, baselines, pairs."""

from __future__ import annotations

import csv
import itertools
import shutil

import pytest
import torch

from facectx.evaluate import run
from metrics.helpers import compose_eval, prepared_lfw_test, tiny_checkpoint

FAST = ["fid.enabled=false", "num_samples=4"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="session")
def lfw_test20(tmp_path_factory, lfw_split_images):
    return prepared_lfw_test(tmp_path_factory, lfw_split_images, 20)


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _rows(result):
    return {r["method"]: r for r in result.rows}


def test_checkpoint_on_the_prepared_test_split(tmp_path, tmp_path_factory, lfw_test20):
    ckpt = tiny_checkpoint(tmp_path_factory)
    cfg = compose_eval(tmp_path, [f"ckpt={ckpt}", f"data.root={lfw_test20}", "split=test", *FAST])
    result = run(cfg)
    rows = _rows(result)
    n = len(result.per_image) // 2
    assert set(rows) == {"originals", "run/last"} and n >= 18
    model = rows["run/last"]
    assert model["kind"] == "checkpoint" and model["n"] == n and model["n_problems"] == 0
    # an untrained generator keeps the face, so the frame is neither perfect nor unrelated
    assert 0.0 < model["ssim"] < 1.0 and model["mse_ctx"] > model["mse"] > 0.0
    assert 0.5 < model["rho"] <= 1.0 and model["pose_err"] >= 0.0
    assert rows["originals"]["ssim"] == pytest.approx(1.0) and rows["originals"]["mse"] == 0.0
    out = tmp_path / "eval"
    for name in ("results.md", "results.csv", "per_image.csv", "settings.json", "samples.png"):
        assert (out / name).is_file(), name
    assert not (out / "problems.csv").exists()
    md = (out / "results.md").read_text()
    assert "Mean Match Score" in md and "SwapInpaint" in md and "run/last" in md
    assert len(_read(out / "results.csv")) == 2
    per_image = _read(out / "per_image.csv")
    assert len(per_image) == 2 * n and {r["method"] for r in per_image} == {"originals", "run/last"}


def test_pred_dir_of_copies_is_a_perfect_method_and_bad_files_are_reported(tmp_path, lfw_test20):
    from facectx.data.manifest import read_manifest

    pred = tmp_path / "copies"
    pred.mkdir()
    rows = read_manifest(lfw_test20, "test")
    for r in rows:
        shutil.copy(lfw_test20 / r["image"], pred / f"{r['id']}.png")
    (pred / f"{rows[0]['id']}.png").unlink()  # missing
    (pred / f"{rows[1]['id']}.png").write_bytes(b"not a png")  # unreadable
    shutil.copy(lfw_test20 / rows[2]["image"], pred / "Someone_Else_0001_0.png")  # extra
    cfg = compose_eval(
        tmp_path,
        [f"pred_dir={pred}", f"ref_dir={lfw_test20}", "method=[mask_only]", *FAST],
    )
    result = run(cfg)
    copies = _rows(result)["copies"]
    assert copies["kind"] == "pred_dir"
    assert copies["n"] == len(rows) - 2 and copies["n_problems"] == 2
    assert copies["ssim"] == pytest.approx(1.0) and copies["ssim_ctx"] == pytest.approx(1.0)
    assert copies["mse"] == 0.0 and copies["mse_ctx"] == 0.0
    assert copies["rho"] == pytest.approx(1.0) and copies["id_cos"] == pytest.approx(1.0)
    assert copies["pose_err"] == pytest.approx(0.0) and copies["expr_err"] == pytest.approx(0.0)
    assert _rows(result)["mask_only"]["ssim"] < 0.6  # a second row, a different method
    problems = _read(tmp_path / "eval" / "problems.csv")
    assert {(p["id"], p["problem"].split()[0]) for p in problems} == {
        (rows[0]["id"], "missing"),
        (rows[1]["id"], "unreadable"),
    }
    notes = " ".join(result.notes)
    assert "1 file(s)" in notes and "Someone_Else_0001_0.png" in notes
    assert "Someone_Else" in (tmp_path / "eval" / "results.md").read_text()


def test_verification_on_pairs_inside_the_set(tmp_path, lfw_test20):
    from facectx.data.manifest import read_manifest

    rows = read_manifest(lfw_test20, "test")
    by_person: dict[str, list[str]] = {}
    for r in rows:
        by_person.setdefault(r["person"], []).append(r["source"])
    same = [(v[0], v[1]) for v in by_person.values() if len(v) > 1]
    singles = [v[0] for v in by_person.values()]
    diff = list(itertools.pairwise(singles))
    pairs = tmp_path / "pairs.csv"
    lines = ["image_a,image_b,same"] + [f"{a},{b},1" for a, b in same]
    lines += [f"{a},{b},0" for a, b in diff] + ["Not_There_0001.jpg,Not_There_0002.jpg,1"]
    pairs.write_text("\n".join(lines) + "\n")
    cfg = compose_eval(
        tmp_path,
        [
            f"data.root={lfw_test20}",
            "method=[mask_only]",
            f"pairs={pairs}",
            "landmarks.enabled=false",
            *FAST,
        ],
    )
    result = run(cfg)
    for r in result.rows:
        assert r["pairs"] == len(same) + len(diff)  # the pair outside the set is dropped
        assert 0.0 <= r["tpr_at_fpr"] <= 1.0 and 0.0 <= r["accuracy"] <= 1.0
    assert _rows(result)["originals"]["accuracy"] >= _rows(result)["mask_only"]["accuracy"] - 0.2
    assert any("verification" in n for n in result.notes)


def test_nothing_to_evaluate_is_an_error():
    # the command evaluates the shipped model when given nothing (tests/test_evaluate_shipped.py)
    from facectx.evaluation import Evaluator

    with pytest.raises(ValueError, match="nothing to evaluate"):
        Evaluator(split="train", limit=2).run([], reference_row=False)


def test_missing_pred_dir_is_explained(tmp_path):
    cfg = compose_eval(tmp_path, [f"pred_dir={tmp_path / 'nope'}", "split=train", "limit=2", *FAST])
    with pytest.raises(FileNotFoundError, match="pred_dir"):
        run(cfg)


@pytest.mark.slow
def test_cli_writes_the_run_folder(tmp_path):
    """``python -m facectx.evaluate`` end to end on the embedded sample (train split)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "FACECTX_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "facectx.evaluate", "split=train", "limit=4"]
    cmd += ["method=[mask_only,telea]", "progress=false", "num_samples=2"]
    subprocess.run(cmd, env=env, cwd=tmp_path, check=True)
    (run_dir,) = (tmp_path / "logs" / "evaluate").iterdir()
    rows = _read(run_dir / "results.csv")
    assert [r["method"] for r in rows] == ["originals", "mask_only", "telea"]
    assert all(r["n"] == "4" for r in rows) and float(rows[2]["fid"]) > 0
    assert (run_dir / "samples.png").is_file() and (run_dir / ".hydra" / "config.yaml").is_file()


def test_saved_outputs_read_back_beside_their_originals(tmp_path, lfw_test20):
    """``saved_output_batches``: what ``save_outputs=true`` wrote, per method, with the prepared
    originals of the same faces (what scripts/colour_noise.py and seam_step.py measure)."""
    from facectx.evaluation.external import saved_output_batches

    with pytest.raises(FileNotFoundError, match="save_outputs=true"):
        next(saved_output_batches(tmp_path))
    cfg = compose_eval(
        tmp_path,
        [f"data.root={lfw_test20}", "split=test", "method=[mask_only]", "save_outputs=true", *FAST],
    )
    n = run(cfg).rows[0]["n"]
    seen = 0
    for method, batch, out, good in saved_output_batches(tmp_path / "eval"):
        assert method == "mask_only" and bool(good.all())
        kept = (batch["mask"] > 0.5) & (batch["valid"] > 0.5)
        # mask_only keeps the face exactly and blacks out the context
        assert torch.equal(out[kept.expand_as(out)], batch["image"][kept.expand_as(out)])
        context = (batch["mask"] < 0.5) & (batch["valid"] > 0.5)
        assert (out[context.expand_as(out)] == -1).all()
        seen += len(out)
    assert seen == n
