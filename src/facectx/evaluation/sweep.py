"""The table of an ablation sweep (the paper's Table 8 layout), behind ``facectx.report``.

Every job folder of the sweep (a folder with ``.hydra/overrides.yaml``) becomes a row, named by
the overrides that differ between jobs (``ablation=no_adv``). A job whose ``<job>/evaluation/``
holds results computed with the current settings (same data, split, mask, networks, checkpoint
file; :func:`facectx.evaluation.from_config.settings_key`) is read as is; a finished job with a
checkpoint but no such results is evaluated first; a job without a checkpoint, or one still
training (no ``summary.json`` yet; ``unfinished=true`` scores it anyway), is listed as such.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from facectx.evaluation.tables import TABLE_PAPER

log = logging.getLogger("facectx.report")

EVAL_DIR = "evaluation"
EXTRA_DIR = "evaluation_extra"
#: status of a job without summary.json, left out of the tables unless ``unfinished=true``
UNFINISHED = (
    "unfinished (no summary.json: still training, or stopped before the end; unfinished=true "
    "scores its checkpoint anyway)"
)
REPORT_COLUMNS = (
    "job",
    "overrides",
    "status",
    "method",
    "kind",
    "n",
    "rho",
    "ssim",
    "fid",
    "fid_n",
    "lpips",
    "ssim_ctx",
    "psnr",
    "psnr_ctx",
    "mse",
    "mse_ctx",
    "id_cos",
    "tpr_at_fpr",
    "accuracy",
    "pairs",
    "pose_err",
    "expr_err",
    "iterations",
    "seconds",
    "checkpoint",
)
TABLE_EXTRA = (
    ("ssim_ctx", "SSIM ctx ↑", "{:.3f}"),
    ("psnr_ctx", "PSNR ctx ↑", "{:.2f}"),
    ("mse_ctx", "MSE ctx ↓", "{:.4f}"),
    ("id_cos", "Identity ↑", "{:.3f}"),
    ("tpr_at_fpr", "TPR@FPR={fpr} ↑", "{:.3f}"),
    ("accuracy", "Acc. ↑", "{:.3f}"),
    ("pose_err", "Pose ↓", "{:.2f}"),
    ("expr_err", "Exp. ↓", "{:.4f}"),
)


def find_jobs(sweep_dir: str | Path) -> list[Path]:
    """Job folders of a Hydra sweep (those with ``.hydra/overrides.yaml``), in job order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(
            f"sweep_dir {sweep_dir} does not exist; pass the folder a `python -m facectx.train -m "
            "...` run printed, e.g. sweep_dir=logs/quickstart/multiruns/<date-time>"
        )
    jobs = [p for p in sweep_dir.iterdir() if (p / ".hydra" / "overrides.yaml").is_file()]
    if not jobs:
        raise FileNotFoundError(
            f"{sweep_dir} holds no job folders (<job>/.hydra/overrides.yaml); is it a sweep "
            "folder of `python -m facectx.train -m ...`?"
        )
    return sorted(
        jobs, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name)
    )


def read_overrides(job: Path) -> list[str]:
    """The job's command-line overrides (``.hydra/overrides.yaml``)."""
    import yaml

    data = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text(encoding="utf-8"))
    return [str(x) for x in (data or [])]


def job_names(overrides: dict[Path, list[str]]) -> dict[Path, str]:
    """Per job, the overrides that are not shared by every job (all of them if none differ)."""
    common = set.intersection(*(set(o) for o in overrides.values())) if overrides else set()
    names = {}
    for job, ovs in overrides.items():
        own = [o for o in ovs if o not in common] if len(overrides) > 1 else ovs
        names[job] = " ".join(own) or (" ".join(ovs) if ovs else f"job {job.name}")
    return names


def job_checkpoint(job: Path, checkpoint: str = "last.ckpt") -> Path | None:
    """``<job>/checkpoints/<checkpoint>``; ``best`` = the newest ``best-*.ckpt``; None if absent."""
    folder = job / "checkpoints"
    if checkpoint == "best":
        found = sorted(folder.glob("best-*.ckpt"), key=lambda p: p.stat().st_mtime)
        return found[-1] if found else None
    path = folder / checkpoint
    return path if path.is_file() else None


def job_budget(job: Path) -> dict[str, Any]:
    """Iterations trained and wall-clock seconds, from the job's ``summary.json`` (empty if the
    job wrote none: killed before the end)."""
    try:
        summary = json.loads((job / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: summary[k] for k in ("iterations", "seconds", "stop_reason") if k in summary}


def _job_iterations(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Iterations per sweep job (extra rows such as baselines have no overrides: left out)."""
    return {r["job"]: r.get("iterations") for r in rows if r.get("overrides") is not None}


def budget_warning(rows: list[dict[str, Any]]) -> str | None:
    """A sentence when the sweep's jobs trained different numbers of iterations, else None."""
    its = _job_iterations(rows)
    if len(set(its.values())) <= 1:
        return None
    listed = ", ".join(f"{job}: {n if n is not None else 'unknown'}" for job, n in its.items())
    return (
        f"Jobs trained unequal budgets ({listed} iterations): rows are not comparable as an "
        "ablation. Rerun with one `trainer.max_steps=N` (iterations) for every job."
    )


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def read_results(folder: Path) -> list[dict[str, str]]:
    with (folder / "results.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def up_to_date(folder: Path, key: dict[str, Any]) -> bool:
    """Whether ``folder`` holds results computed with exactly these settings."""
    settings = folder / "settings.json"
    if not (folder / "results.csv").is_file() or not settings.is_file():
        return False
    try:
        old = json.loads(settings.read_text(encoding="utf-8")).get("key")
    except ValueError:
        return False
    return _same(old, key)


def _eval_cfg(cfg: DictConfig, output_dir: Path, ckpt: Path | None):
    """A copy of the report config that evaluates one job's checkpoint, or (``ckpt`` None) the
    extra rows the report config asks for (``method``, ``ckpt``, ``pred_dir``)."""
    job_cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    OmegaConf.set_struct(job_cfg, False)
    if OmegaConf.select(cfg, "paths.root_dir", throw_on_missing=False) is not None:
        job_cfg.paths.root_dir = str(cfg.paths.root_dir)  # resolve ${hydra:...} now
    job_cfg.paths.output_dir = str(output_dir)
    job_cfg.logger = None
    if ckpt is not None:
        job_cfg.ckpt = str(ckpt)
        job_cfg.pred_dir = None
        job_cfg.method = None
    return job_cfg


def has_extras(cfg: DictConfig) -> bool:
    """Whether the report config names rows beyond the sweep's jobs."""
    return bool(cfg.get("method") or cfg.get("ckpt") or cfg.get("pred_dir"))


def evaluate_if_needed(cfg: DictConfig, folder: Path, ckpt: Path | None):
    """Results rows of ``folder``, evaluating first when they are missing or stale."""
    from facectx.evaluation.from_config import evaluate_config, settings_key

    job_cfg = _eval_cfg(cfg, folder, ckpt)
    key = settings_key(job_cfg)
    if not cfg.get("reevaluate", False) and up_to_date(folder, key):
        log.info("up to date: %s", folder)
        return read_results(folder), "reused"
    log.info("evaluating %s", ckpt if ckpt is not None else "the extra rows")
    evaluate_config(job_cfg)
    return read_results(folder), "evaluated"


def _number(v: Any) -> Any:
    if v in (None, ""):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return int(f) if f.is_integer() and abs(f) < 1e15 and "." not in str(v) else f


def build_report(cfg: DictConfig) -> list[dict[str, Any]]:
    """One row per job (its checkpoint's results), the extra rows (baselines, other checkpoints
    or output folders named in ``cfg``) and the originals' reference row."""
    sweep_dir = Path(cfg.sweep_dir).expanduser().resolve()
    jobs = find_jobs(sweep_dir)
    overrides = {job: read_overrides(job) for job in jobs}
    names = job_names(overrides)
    rows: list[dict[str, Any]] = []
    reference: dict[str, Any] | None = None
    for job in jobs:
        base = {"job": names[job], "overrides": " ".join(overrides[job]), **job_budget(job)}
        ckpt = job_checkpoint(job, cfg.get("checkpoint", "last.ckpt"))
        if ckpt is None:
            rows.append({**base, "status": f"no checkpoints/{cfg.get('checkpoint')} (failed?)"})
            log.warning("%s: no checkpoint in %s", names[job], job / "checkpoints")
            continue
        if not (job / "summary.json").is_file() and not cfg.get("unfinished", False):
            # no summary.json: the job is still training (its last.ckpt changes every epoch)
            # or was stopped before the end; its row would not be the ablation's
            rows.append({**base, "status": UNFINISHED})
            log.warning("%s: not finished (no %s); left out", names[job], job / "summary.json")
            continue
        results, status = evaluate_if_needed(cfg, job / EVAL_DIR, ckpt)
        for r in results:
            if r.get("kind") == "checkpoint":
                rows.append({**base, **r, "status": status, "checkpoint": str(ckpt)})
            elif r.get("kind") == "reference" and reference is None:
                reference = {**r, "job": "originals (reference)", "status": status}
    if has_extras(cfg):
        results, status = evaluate_if_needed(cfg, sweep_dir / EXTRA_DIR, None)
        rows += [
            {**r, "job": r["method"], "status": status}
            for r in results
            if r.get("kind") != "reference"
        ]
    if reference is not None:
        rows.append(reference)
    return [
        {k: _number(v) if k not in ("job", "overrides", "method") else v for k, v in r.items()}
        for r in rows
    ]


def _budget_text(row: dict[str, Any]) -> str:
    if row.get("iterations") is None:
        return "no summary.json (iterations unknown)"
    secs = row.get("seconds")
    return f"{row['iterations']} iterations" + (f" in {secs:.0f} s" if secs is not None else "")


def report_markdown(cfg: DictConfig, rows: list[dict[str, Any]]) -> str:
    """The text of ``report.md``."""
    from facectx.evaluation.tables import markdown_table

    fpr = cfg.get("fpr", 0.01)
    sweep_dir = Path(cfg.sweep_dir).expanduser().resolve()
    scored = [r for r in rows if r.get("n") is not None]
    missing = [r for r in rows if r.get("n") is None]
    settings = None
    for job in find_jobs(sweep_dir):
        if (job / EVAL_DIR / "settings.json").is_file():
            settings = json.loads((job / EVAL_DIR / "settings.json").read_text(encoding="utf-8"))
            break
    lines = [f"# Ablation report: {sweep_dir}", ""]
    if settings:
        split = settings.get("split") if settings.get("split") is not None else "all"
        lines += [
            f"Evaluated on {settings['root']} (split {split}, {settings['faces']} faces), "
            f"mask {settings['mask']}; identity {settings['identity']}; FID {settings['fid']}; "
            f"LPIPS {settings['lpips']}. Checkpoint: `{cfg.get('checkpoint')}` of each job.",
            "",
        ]
    lines += [
        "## Table 8 layout (Banerjee et al. 2020, supplement)",
        "",
        "Perceptual error is LPIPS (PieAPP has no offline weights); `–` = not available.",
        "",
        markdown_table(scored, TABLE_PAPER, key="job"),  # Table 8 has Table 1's columns
        "",
        "## More metrics",
        "",
        markdown_table(scored, TABLE_EXTRA, key="job", fpr=fpr),
        "",
        "## Jobs",
        "",
        *[
            f"- {r['job']}: `{r.get('overrides', '')}` — {r.get('status', '')}; {_budget_text(r)}"
            for r in rows
            if r.get("overrides") is not None
        ],
        "",
    ]
    warning = budget_warning(scored)  # jobs in the tables only: not failed or unfinished ones
    its = set(_job_iterations(scored).values())
    if warning:
        lines += [f"**Warning:** {warning}", ""]
    elif its and None not in its:
        lines += [f"Every job trained {its.pop()} iterations.", ""]
    if missing:
        lines += [
            "Not in the tables: " + ", ".join(f"{r['job']} ({r['status']})" for r in missing),
            "",
        ]
    fid_ns = sorted(
        {r["fid_n"] for r in scored if isinstance(r.get("fid_n"), int) and r.get("fid") is not None}
    )
    if fid_ns and fid_ns[0] < 2048:
        lines += [
            f"FID from N = {', '.join(map(str, fid_ns))} images is biased upward; compare rows only "
            "at equal N.",
            "",
        ]
    return "\n".join(lines)


def write_report(cfg: DictConfig) -> list[dict[str, Any]]:
    """Evaluate what is missing, then write ``report.md`` and ``report.csv`` into the sweep."""
    from facectx.evaluation.tables import write_csv

    sweep_dir = Path(cfg.sweep_dir).expanduser().resolve()
    rows = build_report(cfg)
    write_csv(sweep_dir / "report.csv", rows, REPORT_COLUMNS)
    (sweep_dir / "report.md").write_text(report_markdown(cfg, rows), encoding="utf-8")
    return rows
