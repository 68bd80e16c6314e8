"""The evaluation engine: score methods on one prepared folder (``facectx.evaluate`` runs it).

Every method sees the same faces and masks (and, with ``reference=cross|same``, the same
reference face per image: SwapInpaint's setting, where ``id_ref`` is the identity cosine of the
output to the reference). Its outputs are quantised to 8 bits (as if saved
to PNG) and pixels outside the source photo (``valid`` = 0) are set to the original's before
any metric. Per face: the registry's pixel metrics on the frame and on the context (mask 0 and
valid), LPIPS, identity Pearson (rho) and cosine, pose and expression errors. Per method: their
means, FID, and verification on the image pairs inside the set. The originals' side (identity
and Inception features, landmark boxes) is computed once per face and shared by all methods.
Formulas: ``docs/evaluation.md``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from facectx._conf import ConfigError
from facectx.evaluation.method import Method, Originals
from facectx.evaluation.retrieval import RETRIEVAL_COLUMNS, identity_retrieval, retrieval_note
from facectx.pixels import quantize, to_uint8

log = logging.getLogger("facectx.evaluate")

PER_IMAGE_COLUMNS = (
    "method",
    "id",
    "person",
    "reference",
    "problem",
    "note",
    "mse",
    "mse_ctx",
    "psnr",
    "psnr_ctx",
    "ssim",
    "ssim_ctx",
    "lpips",
    "rho",
    "id_cos",
    "id_ref",
    "same",
    "pose_err",
    "expr_err",
    "ctx_fraction",
)
MEAN_COLUMNS = PER_IMAGE_COLUMNS[PER_IMAGE_COLUMNS.index("mse") :]
REFERENCE_MODES = ("cross", "same")
RESULT_COLUMNS = (
    "method",
    "kind",
    "n",
    "n_problems",
    *MEAN_COLUMNS,
    "fid",
    "fid_n",
    "pairs",
    "tpr_at_fpr",
    "accuracy",
    *RETRIEVAL_COLUMNS,
    "n_landmark_failures",
    "source",
)


@dataclass
class Instruments:
    """The networks behind the metrics; None = that metric is not computed (status says why).

    Args:
        identity: (B,3,S,S) [-1,1] -> (B, D) network, or a ``DlibNativeDescriptor``.
        lpips: LPIPS module ``(a, b) -> (B,)``.
        fid: ``inception-fid`` feature module ``(B,3,S,S) -> (B, 2048)``.
        landmarks: ``facectx.metrics.landmarks.CanonicalLandmarks``.
        status: metric -> human-readable description (network name, or why it is off).
    """

    identity: Any = None
    lpips: Any = None
    fid: Any = None
    landmarks: Any = None
    status: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# the evaluation loop


@dataclass
class _Acc:
    """What one method accumulates over the set."""

    method: Method
    rows: list[dict] = field(default_factory=list)
    id_feats: dict[str, Tensor] = field(default_factory=dict)
    fid_feats: dict[str, Tensor] = field(default_factory=dict)
    problems: list[dict] = field(default_factory=list)
    landmark_failures: int = 0


@dataclass
class EvaluationResult:
    """Rows per method (``RESULT_COLUMNS``), per image, problems, notes and settings."""

    rows: list[dict]
    per_image: list[dict]
    problems: list[dict]
    notes: list[str]
    settings: dict[str, Any]


def _nanmean(values: Iterable[float]) -> float:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else float("nan")


class Evaluator:
    """Scores methods on one prepared folder.

    Args:
        root: prepared folder; None = the embedded sample.
        split: manifest split(s); None = every face.
        mask: mask callable ``(size, landmarks, generator)``; None = the stored hull.
        instruments: networks behind the metrics (``build_instruments``).
        pairs: verification pairs file (``image_a,image_b,same``); None = no verification.
        fpr: false-accept rate of the TPR column.
        batch_size: faces per batch.
        num_workers: DataLoader workers.
        device: torch device for methods and networks.
        limit: only the first N faces (manifest order); None = all.
        seed: seed of random masks.
        output_dir: where ``save_outputs`` writes ``outputs/<method>/<id>.png``.
        save_outputs: write every method's (scored) outputs as PNGs.
        num_samples: faces kept for the sample grid.
        progress: show a rich progress bar.
        reference: None, or pair every face with a reference face of the same set (SwapInpaint's
            evaluation): ``cross`` = a different person (the paper's cross-image pairs),
            ``same`` = another photo of the same person where there is one (else a different
            person; the ``same`` column says which). Drawn from ``(seed, face index)``.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str | Sequence[str] | None = "test",
        mask=None,
        instruments: Instruments | None = None,
        pairs: str | os.PathLike | None = None,
        fpr: float = 0.01,
        batch_size: int = 32,
        num_workers: int = 0,
        device: str | torch.device = "cpu",
        limit: int | None = None,
        seed: int = 0,
        output_dir: str | os.PathLike | None = None,
        save_outputs: bool = False,
        num_samples: int = 8,
        progress: bool = True,
        reference: str | None = None,
    ) -> None:
        from facectx.data.datasets import PreparedFaces
        from facectx.data.manifest import read_manifest

        if root is None:
            from facectx.assets import sample_root

            root = sample_root()
        self.root = Path(root).expanduser().resolve()
        self.split = split
        if split is not None:
            from facectx.data.datasets import splits_present

            if splits_present(self.root) == [""]:
                raise ConfigError(
                    f"{self.root} has no splits (it was prepared without splits=), so "
                    f"split={split} matches no face: pass split=null to evaluate all its faces"
                )
        ids = None
        if limit is not None:
            split_arg = list(split) if split is not None and not isinstance(split, str) else split
            ids = [r["id"] for r in read_manifest(self.root, split_arg)][: int(limit)]
        if reference is not None and reference not in REFERENCE_MODES:
            raise ConfigError(
                f"reference must be one of {REFERENCE_MODES} or null (no reference faces), got "
                f"{reference!r}"
            )
        self.reference = reference
        if reference is None:
            self.dataset = PreparedFaces(
                self.root, split=split, mask=mask, mirror=False, seed=seed, ids=ids
            )
        else:
            from facectx.data.pairs import PairedFaces

            self.dataset = PairedFaces(
                self.root,
                split=split,
                mask=mask,
                mirror=False,
                seed=seed,
                ids=ids,
                same_share=1.0 if reference == "same" else 0.0,
            )
        self.mask = mask
        self.size = int(self.dataset.size)
        self.ins = instruments or Instruments()
        self.pairs_path = Path(pairs).expanduser() if pairs else None
        self.fpr = float(fpr)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.device = torch.device(device)
        self.seed = int(seed)
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.save_outputs = bool(save_outputs)
        self.num_samples = int(num_samples)
        self.progress = bool(progress)
        self.samples: dict[str, list[Tensor]] = {}

    # -- per-batch helpers ----------------------------------------------------------------

    def _identity(self, x: Tensor, landmarks: Tensor) -> Tensor:
        net = self.ins.identity
        if hasattr(net, "forward"):
            return net(x).float().cpu()
        return net(to_uint8(x), landmarks.cpu().numpy())

    def _landmarks(self, u8: np.ndarray, boxes: list) -> np.ndarray:
        out = np.full((len(u8), 68, 2), np.nan)
        for k, box in enumerate(boxes):
            if box is not None:
                out[k] = self.ins.landmarks(u8[k], box)
        return out

    def _pairs(self) -> list[tuple[str, str, bool]]:
        from facectx.metrics.verification import pairs_in_set, read_pairs

        if self.pairs_path is None or self.ins.identity is None:
            self.pairs_status = (
                "off (" + ("pairs=null" if self.pairs_path is None else "identity=none") + ")"
            )
            return []
        if not self.pairs_path.is_file():
            self.pairs_status = f"off: pairs file {self.pairs_path} not found (set pairs=...)"
            return []
        self.pairs_status = f"no pair of {self.pairs_path} lies wholly in the evaluated set"
        image_to_id = {
            Path(r.get("source", "")).name: r["id"]
            for r in self.dataset.rows
            if r.get("source") and str(r.get("face_index", "0")) in ("0", "")
        }
        return pairs_in_set(read_pairs(self.pairs_path), image_to_id)

    # -- the loop ---------------------------------------------------------------------------

    @torch.inference_mode()
    def run(self, methods: Sequence[Method], reference_row: bool = True) -> EvaluationResult:
        from torch.utils.data import DataLoader

        from facectx.metrics.registry import list_metrics

        methods = list(methods)
        if reference_row:
            methods = [Originals(), *methods]
        if not methods:
            raise ConfigError(
                "nothing to evaluate: give ckpt=<checkpoint>, pred_dir=<folder> or "
                "method=[mask_only,...] (see docs/evaluation.md)"
            )
        needs = [m.name for m in methods if getattr(m, "needs_reference", False)]
        if needs and self.reference is None:
            raise ConfigError(
                f"method(s) {', '.join(needs)} fill the hole from a reference face: add "
                "reference=cross (a different person per face, SwapInpaint's Table I) or "
                "reference=same"
            )
        for m in methods:
            m.setup(self.size, self.device)
        accs = [_Acc(m) for m in methods]
        self._pixel_metrics = [(s.name, s.resolve()) for s in list_metrics("pixel")]
        orig_id: dict[str, Tensor] = {}
        orig_fid: dict[str, Tensor] = {}
        loader = DataLoader(
            self.dataset, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers
        )
        t0 = time.perf_counter()
        bar = _progress_bar(self.progress)
        # Counted in faces, but moved after each stage of a batch (the originals' features, then
        # each method): a set smaller than one batch would otherwise sit at 0 until the end.
        stages, done = 1 + len(accs), 0
        head = f"evaluating {len(methods)} method(s) on {len(self.dataset)} faces"
        with bar:
            task = bar.add_task(head, total=len(self.dataset))
            for batch in loader:
                b = {k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in batch.items()}
                b["id"] = list(batch["id"])
                b["person_name"] = [
                    self.dataset.rows[int(i)].get("person", "") for i in batch["index"]
                ]
                step = len(b["id"]) / stages
                bar.update(task, description=f"{head}: the originals' features")
                orig = self._originals(b)
                bar.advance(task, step)
                for k, face_id in enumerate(b["id"]):
                    if orig["id"] is not None:
                        orig_id[face_id] = orig["id"][k]
                    if orig["fid"] is not None:
                        orig_fid[face_id] = orig["fid"][k]
                self._keep_sample("masked", b["masked"])
                self._keep_sample("original", b["image"])
                if "reference" in b:
                    self._keep_sample("reference", b["reference"])
                for acc in accs:
                    bar.update(task, description=f"{head}: {acc.method.name}")
                    self._score(acc, b, orig)
                    bar.advance(task, step)
                done += len(b["id"])
                bar.update(task, completed=done)  # whole faces, whatever the rounding
            bar.update(task, description=head)
        seconds = time.perf_counter() - t0

        evaluated = {r["id"] for r in self.dataset.rows}
        notes: list[str] = []
        for acc in accs:
            notes += acc.method.finish(evaluated)
        pairs = self._pairs()
        self.threshold = self._reference_threshold(orig_id, pairs)
        results = [self._summarise(acc, orig_id, orig_fid, pairs) for acc in accs]
        notes += self._notes(results, pairs)
        settings = self.settings(methods, len(pairs), seconds)
        return EvaluationResult(
            rows=results,
            per_image=[r for acc in accs for r in acc.rows],
            problems=[p for acc in accs for p in acc.problems],
            notes=notes,
            settings=settings,
        )

    def _originals(self, b: dict) -> dict[str, Any]:
        """Identity and Inception features, landmark boxes and landmarks of the originals."""
        ins, image = self.ins, b["image"]
        out: dict[str, Any] = {
            "id": None,
            "ref_id": None,
            "fid": None,
            "boxes": None,
            "landmarks": None,
        }
        if ins.identity is not None:
            out["id"] = self._identity(image, b["landmarks"])
            if "reference" in b:
                out["ref_id"] = self._identity(b["reference"], b["reference_landmarks"])
        if ins.fid is not None:
            out["fid"] = ins.fid(image).double().cpu()
        if ins.landmarks is not None:
            u8 = to_uint8(image)
            prior = b["landmarks"].cpu().numpy()
            out["boxes"] = [ins.landmarks.box(u8[k], prior[k]) for k in range(len(u8))]
            out["landmarks"] = self._landmarks(u8, out["boxes"])
        return out

    def _score(self, acc: _Acc, b: dict, orig: dict[str, Any]) -> None:
        """Run one method on a batch and add its per-face rows and features to ``acc``."""
        from facectx.metrics.identity import cosine, pearson
        from facectx.metrics.landmarks import expression_error, pose_error

        ins, m, ids = self.ins, acc.method, b["id"]
        image, valid = b["image"], b["valid"]
        ctx = ((b["mask"] < 0.5) & (valid > 0.5)).float()
        ref = m.kind == "reference"
        pred = m.predict(b)
        if len(pred.images) != len(ids) or len(pred.problems) != len(ids):
            raise RuntimeError(
                f"method {m.name} returned {len(pred.images)} images / {len(pred.problems)} "
                f"problems for a batch of {len(ids)}"
            )
        out = quantize(pred.images.to(self.device).float())
        out = valid * out + (1.0 - valid) * image
        good = [p is None for p in pred.problems]
        vals: dict[str, Tensor | np.ndarray] = {"ctx_fraction": ctx.flatten(1).mean(1).cpu()}
        for name, fn in self._pixel_metrics:
            vals[name] = fn(out, image).cpu()
            vals[f"{name}_ctx"] = fn(out, image, ctx).cpu()
        if ins.lpips is not None:
            vals["lpips"] = ins.lpips(out, image).float().flatten().cpu()
        f_h = i_h = None
        if orig["id"] is not None:
            f_h = orig["id"] if ref else self._identity(out, b["landmarks"])
            vals["rho"], vals["id_cos"] = pearson(orig["id"], f_h), cosine(orig["id"], f_h)
            if orig["ref_id"] is not None:
                vals["id_ref"] = cosine(orig["ref_id"], f_h)
        if "same" in b:
            vals["same"] = b["same"].float().cpu()
        if orig["fid"] is not None:
            i_h = orig["fid"] if ref else ins.fid(out).double().cpu()
        if orig["landmarks"] is not None:
            lm_o = orig["landmarks"]
            lm_h = lm_o if ref else self._landmarks(to_uint8(out), orig["boxes"])
            vals["pose_err"] = pose_error(lm_o, lm_h, self.size)
            vals["expr_err"] = expression_error(lm_o, lm_h)
        if not ref:
            self._keep_sample(m.name, out)
            if self.save_outputs and self.output_dir is not None:
                self._save(m.name, ids, out, good)
        for k, face_id in enumerate(ids):
            row = {"method": m.name, "id": face_id, "person": b["person_name"][k]}
            if "reference_id" in b:
                row["reference"] = b["reference_id"][k]
            row["note"] = pred.notes[k] if k < len(pred.notes) else ""
            row["problem"] = pred.problems[k] or ""
            acc.rows.append(row)
            if not good[k]:
                acc.problems.append({"method": m.name, "id": face_id, "problem": row["problem"]})
                continue
            row.update({name: float(v[k]) for name, v in vals.items()})
            if "pose_err" in row and math.isnan(row["pose_err"]):
                acc.landmark_failures += 1
            if f_h is not None:
                acc.id_feats[face_id] = f_h[k]
            if i_h is not None:
                acc.fid_feats[face_id] = i_h[k]

    def _keep_sample(self, key: str, x: Tensor) -> None:
        have = self.samples.setdefault(key, [])
        n = sum(len(t) for t in have)
        if n < self.num_samples:
            have.append(x[: self.num_samples - n].detach().cpu())

    def _save(self, name: str, ids: list[str], out: Tensor, good: list[bool]) -> None:
        from PIL import Image

        folder = self.output_dir / "outputs" / _safe(name)
        folder.mkdir(parents=True, exist_ok=True)
        for face_id, img, g in zip(ids, to_uint8(out), good):
            if g:
                Image.fromarray(img).save(folder / f"{face_id}.png")

    # -- summaries --------------------------------------------------------------------------

    def _summarise(self, acc: _Acc, orig_id, orig_fid, pairs) -> dict:
        from facectx.metrics.fid import frechet_distance
        from facectx.metrics.identity import cosine
        from facectx.metrics.verification import accuracy, tpr_at_fpr

        m = acc.method
        scored = [r for r in acc.rows if not r.get("problem")]
        row: dict[str, Any] = {
            "method": m.name,
            "kind": m.kind,
            "n": len(scored),
            "n_problems": len(acc.problems),
            "source": m.describe(),
            "n_landmark_failures": acc.landmark_failures if self.ins.landmarks else None,
        }
        for col in MEAN_COLUMNS:
            row[col] = _nanmean(r.get(col) for r in scored) if scored else float("nan")
            if col == "lpips" and self.ins.lpips is None:
                row[col] = None
        row["fid"], row["fid_n"] = None, 0
        if self.ins.fid is not None:
            have = [i for i in acc.fid_feats if i in orig_fid]
            if len(have) >= 2:
                real = torch.stack([orig_fid[i] for i in have])
                fake = torch.stack([acc.fid_feats[i] for i in have])
                row["fid"], row["fid_n"] = frechet_distance(real, fake), len(have)
        row["pairs"], row["tpr_at_fpr"], row["accuracy"] = 0, None, None
        if pairs:
            use = [(a, b, s) for a, b, s in pairs if a in orig_id and b in acc.id_feats]
            if use:
                scores = cosine(
                    torch.stack([orig_id[a] for a, _, _ in use]),
                    torch.stack([acc.id_feats[b] for _, b, _ in use]),
                ).tolist()
                same = [s for _, _, s in use]
                row["pairs"] = len(use)
                row["tpr_at_fpr"], _ = tpr_at_fpr(scores, same, self.fpr)
                row["accuracy"] = accuracy(scores, same, self.threshold)
        row.update(dict.fromkeys(RETRIEVAL_COLUMNS))
        if self.ins.identity is not None:
            cross = self.reference == "cross"
            row.update(
                identity_retrieval(
                    scored, acc.id_feats, orig_id, self.dataset.rows, self.fpr, cross
                )
            )
        return row

    @staticmethod
    def _reference_threshold(orig_id: dict[str, Tensor], pairs) -> float:
        """The threshold that maximises verification accuracy on the originals."""
        from facectx.metrics.identity import cosine
        from facectx.metrics.verification import best_threshold

        ref = [(a, b, s) for a, b, s in pairs if a in orig_id and b in orig_id]
        if not ref:
            return float("nan")
        scores = cosine(
            torch.stack([orig_id[a] for a, _, _ in ref]),
            torch.stack([orig_id[b] for _, b, _ in ref]),
        ).tolist()
        return best_threshold(scores, [s for _, _, s in ref])[0]

    def _notes(self, results: list[dict], pairs) -> list[str]:
        notes = []
        fid_ns = {r["fid_n"] for r in results if r.get("fid") is not None}
        if fid_ns and min(fid_ns) < 2048:
            notes.append(
                f"FID from N = {', '.join(str(n) for n in sorted(fid_ns))} image pairs (< 2048, the "
                "feature size): biased upward and noisy; compare only at equal N and extractor."
            )
        if pairs:
            n_same = sum(s for _, _, s in pairs)
            notes.append(
                f"verification: {len(pairs)} pairs of {self.pairs_path} lie in the set "
                f"({n_same} same, {len(pairs) - n_same} different). Score = cosine of identity "
                f"features of original A and output B. TPR at FPR = {self.fpr:g} per method; "
                f"accuracy at threshold {self.threshold:.4f}, the one "
                "that maximises accuracy on the originals (so the originals' accuracy is "
                "optimistic)."
            )
        else:
            notes.append(f"verification: {self.pairs_status}.")
        if (note := retrieval_note(results, self.fpr, self.reference)) is not None:
            notes.append(note)
        if self.ins.landmarks is not None:
            bad = [
                (r["method"], r["n_landmark_failures"]) for r in results if r["n_landmark_failures"]
            ]
            if bad:
                notes.append(
                    "landmarks not found (pose/expression skipped): "
                    + ", ".join(f"{m}: {n}" for m, n in bad)
                )
        return notes

    def settings(self, methods: Sequence[Method], n_pairs: int, seconds: float) -> dict[str, Any]:
        from facectx._version import __version__

        return {
            "root": str(self.root),
            "split": self.split if isinstance(self.split, (str, type(None))) else list(self.split),
            "faces": len(self.dataset),
            "size": self.size,
            "mask": repr(self.mask) if self.mask is not None else "stored hull",
            "reference": self.reference,
            "seed": self.seed,
            "identity": self.ins.status.get("identity", "off"),
            "lpips": self.ins.status.get("lpips", "off"),
            "fid": self.ins.status.get("fid", "off"),
            "landmarks": self.ins.status.get("landmarks", "off"),
            "pairs": str(self.pairs_path) if self.pairs_path else None,
            "n_pairs": n_pairs,
            "fpr": self.fpr,
            "methods": [m.describe() for m in methods],
            "seconds": round(seconds, 1),
            "version": __version__,
        }


def _progress_bar(enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
