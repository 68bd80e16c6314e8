"""Writing evaluation results: markdown tables in the papers' layouts, CSVs, a sample grid."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from facectx.evaluation.harness import (
    PER_IMAGE_COLUMNS,
    RESULT_COLUMNS,
    EvaluationResult,
)
from facectx.pixels import to_uint8

# (column, header, format) of the three tables in results.md; "{fpr}" is filled in
TABLE_PAPER = (
    ("rho", "Mean Match Score ρ ↑", "{:.3f}"),
    ("ssim", "Mean SSIM ↑", "{:.3f}"),
    ("fid", "FID ↓", "{:.2f}"),
    ("lpips", "Mean Perceptual Error (LPIPS) ↓", "{:.3f}"),
    ("n", "N", "{}"),
)
TABLE_SWAPINPAINT = (
    ("mse", "MSE ↓", "{:.4f}"),
    ("ssim", "SSIM ↑", "{:.3f}"),
    ("psnr", "PSNR ↑", "{:.2f}"),
    ("fid", "FID ↓", "{:.2f}"),
    ("id_cos", "Identity ↑", "{:.3f}"),
    ("pose_err", "Pose ↓", "{:.2f}"),
    ("expr_err", "Exp. ↓", "{:.4f}"),
    ("n", "N", "{}"),
)
TABLE_CONTEXT = (
    ("mse_ctx", "MSE ctx ↓", "{:.4f}"),
    ("psnr_ctx", "PSNR ctx ↑", "{:.2f}"),
    ("ssim_ctx", "SSIM ctx ↑", "{:.3f}"),
    ("tpr_at_fpr", "TPR@FPR={fpr} ↑", "{:.3f}"),
    ("accuracy", "Acc. ↑", "{:.3f}"),
    ("pairs", "pairs", "{}"),
    ("n_problems", "not scored", "{}"),
)


#: identity retrieval beside Table I's cosine (``facectx.evaluation.retrieval``): the cosine
#: hardly separates faces that carry the person from faces that do not, a gallery ranking does
RETRIEVAL_TABLE = (
    ("id_top1", "Top-1 ↑", "{:.3f}"),
    ("id_tpr", "TPR@FPR={fpr} ↑", "{:.3f}"),
)


def swapinpaint_columns(settings: dict) -> tuple:
    """Table I's columns; with references, Identity is the cosine to the reference, followed by
    identity retrieval (and, with cross references, retrieval of the reference's person)."""
    if not settings.get("reference"):
        return TABLE_SWAPINPAINT
    cols = []
    for c, h, f in TABLE_SWAPINPAINT:
        if c != "id_cos":
            cols.append((c, h, f))
            continue
        cols += [("id_ref", h, f), *RETRIEVAL_TABLE]
        if settings["reference"] == "cross":
            cols.append(("ref_top1", "Top-1 ref.", "{:.3f}"))
            cols.append(("ref_top5", "Top-5 ref.", "{:.3f}"))
            cols.append(("ref_rank", "Rank ref.", "{:.0f}"))
    return (*cols, ("ret_n", "N ret.", "{}"))


def format_cell(row: dict, col: str, fmt: str, status: dict[str, str] | None = None) -> str:
    """One table cell: ``fmt`` of the value; "–" when missing, "∞", or why a metric is off."""
    v = row.get(col)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        if col == "lpips" and status and status.get("lpips", "").startswith("n/a"):
            return status["lpips"]
        if col == "fid" and status and not str(status.get("fid", "")).startswith("inception"):
            return "n/a"
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    if isinstance(v, str):
        return v
    return fmt.format(v)


def markdown_table(
    rows: Sequence[dict],
    columns,
    status: dict | None = None,
    label: str = "Model",
    key: str = "method",
    fpr: float = 0.01,
) -> str:
    """A markdown table: one line per row (named by ``row[key]``), ``columns`` as above."""
    head = [label] + [h.format(fpr=f"{fpr:g}") for _, h, _ in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r[key])] + [format_cell(r, c, f, status) for c, _, f in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_markdown(result: EvaluationResult, title: str | None = None) -> str:
    """The text of ``results.md``."""
    s = result.settings
    split = s["split"] if s["split"] is not None else "all"
    lines = [
        title or f"# Evaluation: {s['root']} (split {split}, {s['faces']} faces, {s['size']} px)",
        "",
        f"Mask: {s['mask']}. Reference faces: {s.get('reference') or 'none'}. "
        f"Identity: {s['identity']}. FID: {s['fid']}. LPIPS: {s['lpips']}. "
        f"Landmarks: {s['landmarks']}.",
        "",
        "## Table 1 layout (Banerjee et al. 2020)",
        "",
        "Perceptual error is LPIPS, not the paper's PieAPP (no offline PieAPP weights).",
        "",
        markdown_table(result.rows, TABLE_PAPER, s),
        "",
        "## SwapInpaint Table I layout",
        "",
        "MSE in [0, 1] units (× 65025 for the paper's 8-bit units); PSNR in dB; "
        + (
            f"Identity = cosine of the output's identity features to the reference face's "
            f"({s['reference']} pairs; the originals row: the ground truth's cosine to it); "
            "Top-1 / TPR = retrieval of the face's own person from a gallery of other photos "
            "(N ret. faces; see Notes)"
            + (
                "; Top-1 ref. = retrieval of the reference's person"
                if s["reference"] == "cross"
                else ""
            )
            if s.get("reference")
            else "Identity = cosine of the output's identity features to the original's "
            "(no reference faces: reference=cross for SwapInpaint's setting)"
        )
        + "; Pose = mean |yaw, pitch, roll| difference in degrees; Exp. = landmark distance / "
        "eye distance.",
        "",
        markdown_table(
            result.rows, swapinpaint_columns(s), s, label="Method", fpr=s.get("fpr", 0.01)
        ),
        "",
        "## Generated region only (mask 0 and valid: the context, or the hole) and verification",
        "",
        markdown_table(result.rows, TABLE_CONTEXT, s, label="Method", fpr=s.get("fpr", 0.01)),
        "",
        "## Methods",
        "",
        *[f"- {d}" for d in s["methods"]],
        "",
    ]
    if result.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in result.notes], ""]
    return "\n".join(lines)


def csv_value(v) -> Any:
    """CSV text of a value: "" for None/NaN, 6 significant digits for floats."""
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


def write_csv(path: Path, rows: Iterable[dict], columns: Sequence[str]) -> None:
    """Write ``rows`` (only ``columns``) atomically: a temporary file renamed into place."""
    import csv

    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: csv_value(r.get(c)) for c in columns})
    os.replace(tmp, path)


def write_results(out_dir: Path, result: EvaluationResult, samples=None) -> dict[str, Path]:
    """results.md/.csv, per_image.csv, problems.csv (if any), settings.json, samples.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "results_md": out_dir / "results.md",
        "results_csv": out_dir / "results.csv",
        "per_image": out_dir / "per_image.csv",
        "settings": out_dir / "settings.json",
    }
    write_csv(paths["results_csv"], result.rows, RESULT_COLUMNS)
    write_csv(paths["per_image"], result.per_image, PER_IMAGE_COLUMNS)
    paths["results_md"].write_text(results_markdown(result), encoding="utf-8")
    paths["settings"].write_text(json.dumps(result.settings, indent=2) + "\n", encoding="utf-8")
    if result.problems:
        paths["problems"] = out_dir / "problems.csv"
        write_csv(paths["problems"], result.problems, ("method", "id", "problem"))
    if samples:
        paths["samples"] = out_dir / "samples.png"
        _write_grid(paths["samples"], samples)
    return paths


#: header of a sample-grid column for the batch entries that are not methods (a method's column
#: is headed by its row label in results.md)
GRID_NAMES = {"masked": "input", "original": "original", "reference": "reference"}


def grid_labels(keys: Sequence[str]) -> list[str]:
    """Column headers of ``samples.png`` for its sample keys (``masked`` reads ``input``)."""
    return [GRID_NAMES.get(k, k) for k in keys]


def _label_strip(labels: Sequence[str], size: int, pad: int) -> np.ndarray:
    """A white strip with each label centred above its ``size``-px column (cut to fit)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=12)
    height = 16
    strip = Image.new("RGB", (len(labels) * (size + pad) + pad, height), "white")
    draw = ImageDraw.Draw(strip)
    for j, label in enumerate(labels):
        text = label
        while len(text) > 1 and draw.textlength(text, font=font) > size - 4:
            text = text[:-1]
        if text != label:
            text = text[:-1] + "…"
        x = pad + j * (size + pad) + (size - draw.textlength(text, font=font)) / 2
        draw.text((x, height / 2), text, fill="black", font=font, anchor="lm")
    return np.asarray(strip)


def _write_grid(path: Path, samples: dict[str, list[Tensor]], pad: int = 2) -> None:
    """Columns: input (masked) | each method | original, headed by their names; one row per face."""
    from PIL import Image

    order = ["masked"] + [k for k in samples if k not in ("masked", "original")] + ["original"]
    keys = [k for k in order if samples.get(k)]
    cols = [torch.cat(samples[k]) for k in keys]
    if not cols:
        return
    n = min(len(c) for c in cols)
    s = cols[0].shape[-1]
    canvas = np.full((n * (s + pad) + pad, len(cols) * (s + pad) + pad, 3), 255, np.uint8)
    for j, col in enumerate(cols):
        imgs = to_uint8(col[:n])
        for i in range(n):
            y, x = pad + i * (s + pad), pad + j * (s + pad)
            canvas[y : y + s, x : x + s] = imgs[i]
    header = _label_strip(grid_labels(keys), s, pad)
    Image.fromarray(np.concatenate([header, canvas])).save(path)


def print_results(result: EvaluationResult) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="evaluation (details in results.md)")
    cols = [
        ("n", "N", "{}"),
        ("rho", "rho", "{:.3f}"),
        ("ssim", "SSIM", "{:.3f}"),
        ("fid", "FID", "{:.1f}"),
        ("lpips", "LPIPS", "{:.3f}"),
        ("ssim_ctx", "SSIMctx", "{:.3f}"),
        ("tpr_at_fpr", "TPR", "{:.3f}"),
        ("pose_err", "pose", "{:.2f}"),
    ]
    if result.settings.get("reference"):
        cols.insert(2, ("id_ref", "id→ref", "{:.3f}"))
        cols.insert(3, ("id_top1", "top-1", "{:.3f}"))
    table.add_column("method", overflow="fold")
    for _, h, _ in cols:
        table.add_column(h, justify="right")
    for r in result.rows:
        table.add_row(str(r["method"]), *[format_cell(r, c, f) for c, _, f in cols])
    Console().print(table)
