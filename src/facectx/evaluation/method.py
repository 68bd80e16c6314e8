"""What ``facectx.evaluate`` runs: a method maps a batch of masked faces to completed faces.

A method gets the batch dict of ``facectx.data.datasets.PreparedFaces`` plus ``person_name``
(list of the manifest's person labels, "" when unknown). ``image`` is there for the metrics: a
method must only read ``masked``, ``mask``, ``valid``, ``landmarks``, ``id`` and ``person_name``,
and returns a ``Prediction``: (B, 3, S, S) images in [-1, 1] and, per item, ``None`` or the
reason it has no usable output (a missing file, ...), which the evaluation reports and skips.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor


@dataclass
class Prediction:
    """One batch of outputs.

    Args:
        images: (B, 3, S, S) float in [-1, 1]; rows with a problem may hold anything.
        problems: per item, None when the output is usable, else a short reason.
        notes: per item, optional free text for ``per_image.csv`` (e.g. the neighbour used).
    """

    images: Tensor
    problems: list[str | None]
    notes: list[str] = field(default_factory=list)


class Method:
    """Base class. Subclasses set ``name`` and implement ``predict``.

    ``setup`` is called once before the first batch (load a model, precompute statistics);
    ``finish`` once after the last, with the ids that were evaluated, and returns notes for the
    results (e.g. files nobody asked for).
    """

    name: str = "method"
    kind: str = "baseline"

    def setup(self, size: int, device: torch.device) -> None:
        """Prepare for faces of ``size`` px on ``device``."""

    def predict(self, batch: dict) -> Prediction:
        raise NotImplementedError

    def finish(self, evaluated_ids: set[str]) -> list[str]:
        return []

    def describe(self) -> str:
        """One line for the results' settings section."""
        return f"{self.name} ({self.kind})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Originals(Method):
    """The reference row: every face is its own output (features are reused, not recomputed)."""

    kind = "reference"

    def __init__(self, name: str = "originals") -> None:
        self.name = name

    def predict(self, batch: dict) -> Prediction:
        return Prediction(batch["image"], [None] * len(batch["image"]))

    def describe(self) -> str:
        return f"{self.name}: the originals themselves (reference for verification)"


def ok(images: Tensor, notes: list[str] | None = None) -> Prediction:
    """A prediction with no problems."""
    return Prediction(images, [None] * len(images), notes or [])


def paste_face(masked: Tensor, mask: Tensor, fill: Tensor) -> Tensor:
    """Known pixels from ``masked`` where ``mask`` is 1, ``fill`` elsewhere (mask may be soft)."""
    return mask * masked + (1.0 - mask) * fill


def cache_path(cache_dir: str | Path | None, stem: str, key: str) -> Path | None:
    """``cache_dir/<stem>-<hash of key>.pt`` or None when caching is off."""
    if cache_dir is None:
        return None
    import hashlib

    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path(cache_dir).expanduser().resolve() / f"{stem}-{digest}.pt"


__all__ = [
    "Method",
    "Originals",
    "Prediction",
    "cache_path",
    "ok",
    "paste_face",
]
