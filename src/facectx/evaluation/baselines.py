"""Non-learned baselines for context hallucination; every one keeps the known pixels exactly.

| name | fills the hole (mask = 0) with |
|---|---|
| ``mask_only`` | black (-1): the masked input itself, the floor every method must beat |
| ``mean_context`` | the mean training image over context pixels (mask 0 and valid) |
| ``telea`` | ``cv2.inpaint(..., INPAINT_TELEA)``: fast marching (Telea 2004) |
| ``navier_stokes`` | ``cv2.inpaint(..., INPAINT_NS)``: Navier-Stokes (Bertalmio et al. 2001) |
| ``nearest_neighbour`` | the context of the training face whose identity features (of its masked face) are closest (cosine) to the test input's |

Training faces come from a prepared folder (``train_root``, default: the embedded sample) and
its stored hull masks. Statistics and features are cached in ``cache_dir`` (the evaluation run
folder), keyed by the folder, split and face ids, so a rerun pointed at the same folder reuses
them.
"""

from __future__ import annotations

import logging
import os
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from facectx._conf import ConfigError
from facectx.evaluation.method import (
    Method,
    Prediction,
    cache_path,
    ok,
    paste_face,
)
from facectx.pixels import from_uint8, to_uint8

log = logging.getLogger(__name__)


def _train_faces(
    train_root: str | os.PathLike | None, train_split: str | None, size: int, who: str
):
    """The prepared training faces a baseline draws on (None = the embedded sample), refused
    in one line when their size is not the evaluated faces' ``size`` (``who``: the row)."""
    from facectx.data.datasets import PreparedFaces

    if train_root is None:
        from facectx.assets import sample_root

        train_root = sample_root()
    faces = PreparedFaces(train_root, split=train_split, mask=None, mirror=False)
    if faces.size != size:
        raise ConfigError(
            f"{who}: training faces in {faces.root} are {faces.size} px but the evaluated "
            f"faces are {size} px; prepare them with size={size}."
        )
    return faces


def _cache_key(faces, extra: str = "") -> str:
    ids = ",".join(r["id"] for r in faces.rows)
    return f"{faces.root}|{faces.size}|{ids}|{extra}"


def _progress(description: str, total: int):
    from rich.progress import Progress

    bar = Progress(transient=True)
    return bar, bar.add_task(description, total=total)


class MaskOnly(Method):
    """The masked input unchanged: hole black (-1).

    Args:
        name: row label.
    """

    def __init__(self, name: str = "mask_only") -> None:
        self.name = name

    def predict(self, batch: dict) -> Prediction:
        return ok(batch["masked"])


class MeanContext(Method):
    """Fill the hole with the mean training image outside the face hull.

    mean[p] = sum_i image_i[p] c_i[p] / sum_i c_i[p] with c_i = (1 - hull_i) * valid_i: the
    average of each pixel over the training faces where it is context. Pixels that are never
    context (inside every hull) take the mean over the faces where they are valid, and pixels
    never valid are black.

    Args:
        train_root: prepared folder of training faces; None = the embedded sample.
        train_split: manifest split to average; None = every row.
        cache_dir: folder for the cached mean (``mean_context-<hash>.pt`` and a PNG to look
            at); None = no cache.
        batch_size: faces read at a time while averaging.
        name: row label.
    """

    def __init__(
        self,
        train_root: str | None = None,
        train_split: str | None = "train",
        cache_dir: str | None = None,
        batch_size: int = 64,
        name: str = "mean_context",
    ) -> None:
        self.name = name
        self.train_root = train_root
        self.train_split = train_split
        self.cache_dir = cache_dir
        self.batch_size = int(batch_size)
        self.mean: Tensor | None = None
        self.count = 0

    def setup(self, size: int, device: torch.device) -> None:
        faces = _train_faces(self.train_root, self.train_split, size, "mean_context")
        path = cache_path(self.cache_dir, "mean_context", _cache_key(faces))
        if path is not None and path.is_file():
            self.mean = torch.load(path, map_location="cpu", weights_only=True)
            log.info("mean_context: cached mean image %s", path)
        else:
            self.mean = self.compute(faces)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.save(self.mean, path)
                from PIL import Image

                Image.fromarray(to_uint8(self.mean)).save(path.with_suffix(".png"))
                log.info("mean_context: mean of %d faces saved to %s", len(faces), path)
        self.count = len(faces)
        self.mean = self.mean.to(device)

    def compute(self, faces) -> Tensor:
        """(3, S, S) mean context image of a ``PreparedFaces`` set."""
        from torch.utils.data import DataLoader

        s = faces.size
        ctx_sum, ctx_n = torch.zeros(3, s, s, dtype=torch.float64), torch.zeros(1, s, s)
        all_sum, all_n = torch.zeros(3, s, s, dtype=torch.float64), torch.zeros(1, s, s)
        bar, task = _progress(f"mean_context: averaging {len(faces)} training faces", len(faces))
        with bar:
            for b in DataLoader(faces, batch_size=self.batch_size, shuffle=False):
                ctx = (1.0 - b["mask"]) * b["valid"]
                ctx_sum += (b["image"] * ctx).sum(0).double()
                ctx_n += ctx.sum(0)
                all_sum += (b["image"] * b["valid"]).sum(0).double()
                all_n += b["valid"].sum(0)
                bar.advance(task, len(b["id"]))
        ctx_mean = ctx_sum / ctx_n.clamp_min(1).double()
        all_mean = all_sum / all_n.clamp_min(1).double()
        mean = torch.where(ctx_n > 0, ctx_mean, torch.where(all_n > 0, all_mean, -1.0))
        return mean.float()

    def predict(self, batch: dict) -> Prediction:
        assert self.mean is not None, "call setup() first"
        fill = self.mean.expand_as(batch["masked"])
        return ok(paste_face(batch["masked"], batch["mask"], fill))

    def describe(self) -> str:
        root = self.train_root or "embedded sample"
        return (
            f"{self.name}: mean context of {self.count} faces of {root} (split {self.train_split})"
        )


class CvInpaint(Method):
    """OpenCV inpainting of the whole hole from the known pixels.

    ``cv2.inpaint`` on the 8-bit masked input with the hole (mask < 0.5) as its inpainting
    mask; the known pixels are then pasted back from the float input.

    Args:
        algorithm: ``"telea"`` (``INPAINT_TELEA``, fast marching, Telea 2004) or ``"ns"``
            (``INPAINT_NS``, Navier-Stokes, Bertalmio et al. 2001).
        radius: px, the neighbourhood of each inpainted pixel that the algorithm considers
            (OpenCV's ``inpaintRadius``).
        name: row label.
    """

    FLAGS: ClassVar[dict[str, str]] = {"telea": "INPAINT_TELEA", "ns": "INPAINT_NS"}

    def __init__(self, algorithm: str = "telea", radius: float = 5.0, name: str | None = None):
        if algorithm not in self.FLAGS:
            raise ConfigError(f"algorithm must be one of {sorted(self.FLAGS)}, got {algorithm!r}")
        if radius <= 0:
            raise ConfigError(f"radius must be > 0 px, got {radius}")
        self.algorithm = algorithm
        self.radius = float(radius)
        self.name = name or {"telea": "telea", "ns": "navier_stokes"}[algorithm]

    def predict(self, batch: dict) -> Prediction:
        import cv2

        flag = getattr(cv2, self.FLAGS[self.algorithm])
        masked, mask = batch["masked"], batch["mask"]
        rgb = to_uint8(masked)
        holes = (mask[:, 0] < 0.5).cpu().numpy().astype(np.uint8) * 255
        filled = np.stack(
            [
                cv2.inpaint(np.ascontiguousarray(im), h, self.radius, flag)
                for im, h in zip(rgb, holes)
            ]
        )
        fill = from_uint8(filled).to(masked.device)
        return ok(paste_face(masked, mask, fill))

    def describe(self) -> str:
        return f"{self.name}: cv2.inpaint {self.FLAGS[self.algorithm]}, radius {self.radius:g} px"


class NearestNeighbour(Method):
    """Paste the context of the training face most similar in identity features.

    Features of every training face's masked image (stored hull) and of each test input are
    computed with the identity network ``feature``; the training face with the highest cosine
    similarity gives its whole image outside the test mask. Faces with the same id, and with
    ``exclude_same_person`` the same person label, are never chosen (so a training set that
    contains the test faces does not hand back their own context).

    Args:
        train_root: prepared folder of training faces; None = the embedded sample.
        train_split: manifest split to search; None = every row.
        feature: ``facectx.pretrained`` identity entry (``dlib-resnet`` works offline).
        feature_path: explicit weight file for ``feature``; None = the registry rule.
        exclude_same_person: also skip training faces with the test face's person label.
        cache_dir: folder for the cached training features; None = no cache.
        batch_size: faces embedded at a time.
        name: row label.
    """

    kind = "baseline"

    def __init__(
        self,
        train_root: str | None = None,
        train_split: str | None = "train",
        feature: str = "dlib-resnet",
        feature_path: str | None = None,
        exclude_same_person: bool = True,
        cache_dir: str | None = None,
        batch_size: int = 64,
        name: str = "nearest_neighbour",
    ) -> None:
        self.name = name
        self.train_root = train_root
        self.train_split = train_split
        self.feature = feature
        self.feature_path = feature_path
        self.exclude_same_person = bool(exclude_same_person)
        self.cache_dir = cache_dir
        self.batch_size = int(batch_size)
        self.faces = None
        self.net = None
        self.features: Tensor | None = None

    def setup(self, size: int, device: torch.device) -> None:
        from facectx.pretrained import load

        self.faces = _train_faces(self.train_root, self.train_split, size, "nearest_neighbour")
        self.device = device
        self.net = load(self.feature, path=self.feature_path).to(device)
        key = _cache_key(self.faces, f"{self.feature}|{self.feature_path}")
        path = cache_path(self.cache_dir, "nn_features", key)
        if path is not None and path.is_file():
            self.features = torch.load(path, map_location="cpu", weights_only=True)
            log.info("nearest_neighbour: cached training features %s", path)
        else:
            self.features = self._embed_training_faces()
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.save(self.features, path)
        self.features = torch.nn.functional.normalize(self.features.float(), dim=1).to(device)
        self._ids = [r["id"] for r in self.faces.rows]
        self._persons = [r.get("person", "") for r in self.faces.rows]

    @torch.inference_mode()
    def _embed_training_faces(self) -> Tensor:
        from torch.utils.data import DataLoader

        feats = []
        n = len(self.faces)
        bar, task = _progress(f"nearest_neighbour: embedding {n} training faces", n)
        with bar:
            for b in DataLoader(self.faces, batch_size=self.batch_size, shuffle=False):
                feats.append(self.net(b["masked"].to(self.device)).float().cpu())
                bar.advance(task, len(b["id"]))
        return torch.cat(feats)

    @torch.inference_mode()
    def predict(self, batch: dict) -> Prediction:
        assert self.features is not None and self.faces is not None, "call setup() first"
        masked, mask = batch["masked"], batch["mask"]
        query = torch.nn.functional.normalize(self.net(masked).float(), dim=1)
        sims = query @ self.features.T  # (B, N)
        persons = batch.get("person_name") or [""] * len(masked)
        fills, notes = [], []
        for k, face_id in enumerate(batch["id"]):
            banned = [j for j, i in enumerate(self._ids) if i == face_id]
            if self.exclude_same_person and persons[k]:
                banned += [j for j, p in enumerate(self._persons) if p == persons[k]]
            row = sims[k].clone()
            if banned:
                row[banned] = -float("inf")
            j = int(row.argmax())
            fills.append(self.faces[j]["image"])
            notes.append(f"neighbour={self._ids[j]} cos={float(sims[k, j]):.3f}")
        fill = torch.stack(fills).to(masked.device)
        return ok(paste_face(masked, mask, fill), notes)

    def describe(self) -> str:
        root = self.train_root or "embedded sample"
        n = len(self.faces) if self.faces is not None else "?"
        return (
            f"{self.name}: context of the closest of {n} faces of {root} (split "
            f"{self.train_split}) by {self.feature} cosine"
        )


__all__ = [
    "CvInpaint",
    "MaskOnly",
    "MeanContext",
    "NearestNeighbour",
]
