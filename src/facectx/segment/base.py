"""The segmenter interface: which pixels of a portrait belong to the person."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class SegmenterNotAvailableError(RuntimeError):
    """A segmenter cannot run here (weights or a package missing); the message says what to do."""


def check_inputs(image: np.ndarray, face_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a portrait and its face mask; returns (image, face mask as bool)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    face = np.asarray(face_mask)
    if face.shape != image.shape[:2]:
        raise ValueError(f"face_mask must be {image.shape[:2]} (H, W), got {face.shape}")
    face = face > (127 if face.dtype == np.uint8 and face.max(initial=0) > 1 else 0.5)
    if not face.any():
        raise ValueError("face_mask is empty: the segmenter needs the face hull as foreground")
    return np.ascontiguousarray(image), face


class Segmenter(ABC):
    """Foreground (person) probability of a portrait.

    ``segmenter(image, face_mask) -> alpha``: ``image`` (H, W, 3) uint8 RGB, ``face_mask``
    (H, W) {0,1} or {0,255}, the face hull that is certainly person; ``alpha`` (H, W) float32
    in [0, 1], 1 = person (face, hair, neck, clothes), 0 = background. Implementations must
    return 1 on the whole face mask.
    """

    @abstractmethod
    def __call__(self, image: np.ndarray, face_mask: np.ndarray) -> np.ndarray: ...
