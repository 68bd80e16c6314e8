"""The canonical aligned frame every facectx model works in.

A face is aligned with a similarity transform (rotation, uniform scale, translation) that maps
its two eye centres onto fixed positions in a square frame of ``size`` pixels:

* eye centres on the row ``eye_y * size``;
* horizontally at ``(size - 1) / 2 -/+ eye_distance * size / 2`` (image-left eye first),
  i.e. symmetric about the frame's mirror axis, so a flipped face stays canonical.

The defaults (``eye_distance=0.27``, ``eye_y=0.43``) keep forehead, hair, ears, chin and the top
of the neck in frame, and were chosen against LFW's deep-funnelled 150 px crops (eye distance
41 px, eye midpoint at (75, 63.5)): at those values an LFW crop covers almost the whole 128 px
frame, so very few aligned pixels fall outside the source photo. Pixels that do are recorded in
a "valid" mask by the preparation pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# iBUG 68-point indices. "right"/"left" are the subject's; the subject's right eye is on the
# image left.
RIGHT_EYE = tuple(range(36, 42))
LEFT_EYE = tuple(range(42, 48))


@dataclass(frozen=True)
class CanonicalFrame:
    """Square target frame for aligned faces.

    Args:
        size: side length in pixels (128 for the cascaded GAN, 256 for SwapInpaint).
        eye_distance: distance between the eye centres as a fraction of ``size``.
        eye_y: row of the eye centres as a fraction of ``size``.
    """

    size: int = 128
    eye_distance: float = 0.27
    eye_y: float = 0.43

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"CanonicalFrame.size must be >= 8, got {self.size}")
        if not 0.0 < self.eye_distance < 1.0 or not 0.0 < self.eye_y < 1.0:
            raise ValueError("eye_distance and eye_y are fractions of the frame size in (0, 1)")

    @classmethod
    def from_record(cls, size: int, record: dict | None) -> CanonicalFrame:
        """The frame a checkpoint records (its ``facectx.frame`` dict) at ``size``; the
        defaults for whatever the record lacks (None: a checkpoint that records none)."""
        record = record or {}
        defaults = cls(int(size))
        return cls(
            int(size),
            float(record.get("eye_distance", defaults.eye_distance)),
            float(record.get("eye_y", defaults.eye_y)),
        )

    @property
    def eye_targets(self) -> np.ndarray:
        """(2, 2) float array: canonical (x, y) of the image-left and image-right eye centre."""
        # pixel centres sit at integer coordinates (OpenCV), so the mirror axis is (size-1)/2
        half = 0.5 * self.eye_distance * self.size
        cx, cy = 0.5 * (self.size - 1), self.eye_y * self.size
        return np.array([[cx - half, cy], [cx + half, cy]], dtype=np.float64)


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """(2, 2) eye centres (image-left first) from (68, 2) landmarks in (x, y) pixels."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got shape {lm.shape}")
    return np.stack([lm[list(RIGHT_EYE)].mean(0), lm[list(LEFT_EYE)].mean(0)])


def similarity_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Exact 2x3 similarity matrix mapping two source points onto two destination points."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    s = complex(*(src[1] - src[0]))
    d = complex(*(dst[1] - dst[0]))
    if abs(s) < 1e-9:
        raise ValueError("source points coincide; cannot align")
    a = d / s  # rotation and scale as one complex number
    t = complex(*dst[0]) - a * complex(*src[0])
    return np.array([[a.real, -a.imag, t.real], [a.imag, a.real, t.imag]], dtype=np.float64)


def alignment_matrix(landmarks: np.ndarray, frame: CanonicalFrame) -> np.ndarray:
    """2x3 matrix taking source-photo pixels to the canonical frame, from 68 landmarks."""
    return similarity_from_points(eye_centres(landmarks), frame.eye_targets)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]
