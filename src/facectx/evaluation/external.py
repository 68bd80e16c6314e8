"""Methods whose outputs come from elsewhere: a trained facectx checkpoint, or a folder of images.

* ``CheckpointMethod``: a ``facectx.train`` checkpoint, a packed generator or a model shipped
  with facectx (``pretrained:NAME``) run through ``facectx.inference.Hallucinator`` (EMA weights
  when the run kept them).
* ``PredDirMethod``: any method's outputs, one ``<id>.png`` per face (``id`` = the manifest id
  of the prepared original), e.g. written by ``python -m facectx.hallucinate`` or by another
  project's code on the prepared images. Missing, unreadable or wrongly sized files are
  reported per face and skipped; files matching no evaluated face are listed in the results.
* ``saved_output_batches``: what an evaluation wrote with ``save_outputs=true``, read back
  method by method beside the prepared originals (``scripts/colour_noise.py``,
  ``scripts/seam_step.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from facectx._conf import ConfigError
from facectx.evaluation.method import Method, Prediction
from facectx.pixels import from_uint8

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def _run_label(path: Path) -> str:
    """``<run folder>/<checkpoint stem>`` for ``<run>/checkpoints/<name>.ckpt``, else the stem."""
    if path.parent.name == "checkpoints":
        return f"{path.parent.parent.name}/{path.stem}"
    return path.stem


class CheckpointMethod(Method):
    """A trained generator: a ``facectx.train`` checkpoint, a packed file or a shipped model.

    Args:
        ckpt: checkpoint path (``<run>/checkpoints/last.ckpt``), or None / ``pretrained`` /
            ``pretrained:NAME`` for a model shipped with facectx (None = the default one).
        name: row label; None = ``<run folder>/<checkpoint stem>``, or ``pretrained:NAME``.
        use_ema: use the EMA generator when the checkpoint has one.
    """

    kind = "checkpoint"

    def __init__(
        self, ckpt: str | os.PathLike | None, name: str | None = None, use_ema: bool = True
    ):
        from facectx.inference.hallucinator import pretrained_name

        self.pretrained = pretrained_name(ckpt)
        if self.pretrained is not None:
            self.ckpt: Path | str = f"pretrained:{self.pretrained}"
            self.name = name or self.ckpt
        else:
            self.ckpt = Path(ckpt).expanduser().resolve()
            self.name = name or _run_label(self.ckpt)
        self.use_ema = bool(use_ema)
        self.model = None

    def setup(self, size: int, device: torch.device) -> None:
        from facectx.inference.hallucinator import load_hallucinator

        self.model = load_hallucinator(self.ckpt, device=device, use_ema=self.use_ema)
        if self.model.size != size:
            raise ConfigError(
                f"{self.ckpt} makes {self.model.size} px faces but the evaluated faces are "
                f"{size} px; evaluate on a folder prepared with size={self.model.size}."
            )

    def predict(self, batch: dict) -> Prediction:
        assert self.model is not None, "call setup() first"
        out = self.model(batch["masked"], batch["mask"]).to(batch["masked"].device)
        return Prediction(out, [None] * len(out))

    def describe(self) -> str:
        ema = self.model.ema if self.model is not None else self.use_ema
        weights = f"({'EMA' if ema else 'raw'} weights)"
        if self.pretrained is not None:
            source = self.model.source if self.model is not None else self.ckpt
            return f"{self.name}: model shipped with facectx, {source} {weights}"
        return f"{self.name}: checkpoint {self.ckpt} {weights}"


class PredDirMethod(Method):
    """Outputs read from ``pred_dir/<id><suffix>`` (RGB, the prepared frame's size).

    Args:
        pred_dir: folder of outputs.
        name: row label; None = the folder's name.
        suffix: file name after the id.
    """

    kind = "pred_dir"

    def __init__(self, pred_dir: str | os.PathLike, name: str | None = None, suffix: str = ".png"):
        self.pred_dir = Path(pred_dir).expanduser().resolve()
        self.name = name or self.pred_dir.name
        self.suffix = suffix
        self.size = 0
        self.n_missing = 0
        self.n_bad = 0

    def setup(self, size: int, device: torch.device) -> None:
        if not self.pred_dir.is_dir():
            raise FileNotFoundError(
                f"pred_dir {self.pred_dir} does not exist: point it at a folder of <id>.png "
                f"outputs (e.g. written by `python -m facectx.hallucinate output=...`)."
            )
        self.size = size

    def _read(self, face_id: str) -> tuple[np.ndarray | None, str | None]:
        import cv2

        path = self.pred_dir / f"{face_id}{self.suffix}"
        if not path.is_file():
            return None, f"missing {path.name}"
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            return None, f"unreadable {path.name}"
        if bgr.shape[:2] != (self.size, self.size):
            return (
                None,
                f"{path.name} is {bgr.shape[1]}x{bgr.shape[0]}, not {self.size}x{self.size}",
            )
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None

    def predict(self, batch: dict) -> Prediction:
        images, problems = [], []
        for face_id in batch["id"]:
            rgb, problem = self._read(face_id)
            if problem is not None:
                self.n_missing += problem.startswith("missing")
                self.n_bad += not problem.startswith("missing")
                rgb = np.zeros((self.size, self.size, 3), np.uint8)
            images.append(rgb)
            problems.append(problem)
        out = from_uint8(np.stack(images)).to(batch["masked"].device)
        return Prediction(out, problems)

    def finish(self, evaluated_ids: set[str]) -> list[str]:
        notes = []
        if self.n_missing or self.n_bad:
            notes.append(
                f"{self.name}: {self.n_missing} evaluated face(s) have no file in "
                f"{self.pred_dir}, {self.n_bad} file(s) unreadable or of the wrong size "
                "(listed in problems.csv; not scored)"
            )
        extra = sorted(
            p.name
            for p in self.pred_dir.iterdir()
            if p.is_file()
            and p.suffix.lower() in IMAGE_SUFFIXES
            and not p.stem.endswith("_preview")
            and p.name[: -len(self.suffix)] not in evaluated_ids
        )
        if extra:
            shown = ", ".join(extra[:5]) + (" ..." if len(extra) > 5 else "")
            notes.append(
                f"{self.name}: {len(extra)} file(s) in {self.pred_dir} match no evaluated face "
                f"(other split, or ids that are not in the prepared folder): {shown}"
            )
        return notes

    def describe(self) -> str:
        return f"{self.name}: outputs from {self.pred_dir}/<id>{self.suffix}"


def saved_output_batches(
    eval_dir: str | os.PathLike, root: str | os.PathLike | None = None, batch_size: int = 32
) -> Iterator[tuple[str, dict, torch.Tensor, torch.Tensor]]:
    """``(method, batch, outputs, good)`` for each folder of ``eval_dir/outputs`` (written by
    ``facectx.evaluate ... save_outputs=true``), in batches of the faces it holds.

    ``batch`` is a ``PreparedFaces`` batch of the originals (stored face masks), ``outputs`` the
    saved (B, 3, S, S) images in [-1, 1] read as ``PredDirMethod`` reads them, and ``good`` (B,)
    bool marks those that could be read at the frame's size. ``root`` is the prepared folder;
    None = the one ``eval_dir/settings.json`` names.
    """
    from torch.utils.data import DataLoader

    from facectx.data.datasets import PreparedFaces
    from facectx.folderjob import progress_bar

    eval_dir = Path(eval_dir)
    outputs = eval_dir / "outputs"
    if not outputs.is_dir():
        raise FileNotFoundError(
            f"{outputs} does not exist: run facectx.evaluate with save_outputs=true"
        )
    if root is None:
        settings = eval_dir / "settings.json"
        if not settings.is_file():
            raise FileNotFoundError(f"{settings} is missing: pass the prepared folder as root")
        root = json.loads(settings.read_text(encoding="utf-8"))["root"]
    for folder in sorted(p for p in outputs.iterdir() if p.is_dir()):
        ids = [p.stem for p in folder.glob("*.png")]
        if not ids:
            continue
        faces = PreparedFaces(root, ids=ids)
        method = PredDirMethod(folder)
        size = faces.size or int(faces[0]["image"].shape[-1])
        method.setup(size, torch.device("cpu"))
        bar = progress_bar(True, f"{folder.name}: saved outputs")
        task = bar.add_task("read", total=len(faces))
        with bar:
            for batch in DataLoader(faces, batch_size=batch_size, shuffle=False):
                pred = method.predict(batch)
                good = torch.tensor([p is None for p in pred.problems])
                yield folder.name, batch, pred.images, good
                bar.advance(task, len(good))


__all__ = ["CheckpointMethod", "PredDirMethod", "saved_output_batches"]
