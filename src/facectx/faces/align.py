"""Warping between a source photo and the canonical frame, in both directions.

The forward matrix (source -> canonical) comes from :func:`facectx.geometry.frame.alignment_matrix`;
everything here is plain OpenCV affine warping around it. Pixels of the frame that fall outside
the source photo are filled black and marked 0 in a "valid" mask, because they are not real
context and must stay out of losses and metrics.
"""

from __future__ import annotations

import cv2
import numpy as np

from facectx.geometry.frame import CanonicalFrame, alignment_matrix, transform_points
from facectx.geometry.hull import hull_mask


def matrix_scale(matrix: np.ndarray) -> float:
    """Uniform scale factor of a 2x3 similarity matrix (canonical px per source px)."""
    m = np.asarray(matrix, dtype=np.float64)
    return float(np.sqrt(abs(np.linalg.det(m[:, :2]))))


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix, e.g. canonical -> source for pasting results back."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def warp_to_frame(
    image: np.ndarray, matrix: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Warp a source image into a ``size`` x ``size`` frame; returns (aligned, valid {0,1}).

    Bilinear sampling; pixels outside the photo are black and 0 in ``valid``. When the face is shrunk by more than 2x the source is
    first reduced with area averaging, since bilinear warping alone aliases strongly.
    """
    m = np.asarray(matrix, dtype=np.float64)
    h, w = image.shape[:2]
    src, m_src = image, m
    scale = matrix_scale(m)
    if scale < 0.5:
        f = 2.0 * scale  # pre-shrink so the remaining warp scales by about 0.5
        sw, sh = max(1, round(w * f)), max(1, round(h * f))
        src = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        # Map shrunk-image pixels back to source pixels (pixel-centre convention), then apply m.
        fx, fy = sw / w, sh / h
        back = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])
        m_src = m @ back
    # Replicate, then blank what lies outside: valid pixels at the photo's edge keep their colour
    # instead of blending with black, and invalid pixels are exactly black.
    aligned = cv2.warpAffine(
        src, m_src, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    ones = np.full((h, w), 255, np.uint8)
    valid = cv2.warpAffine(
        ones,
        m,
        (size, size),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    valid = (valid > 0).astype(np.uint8)
    aligned[valid == 0] = 0
    return aligned, valid


def warp_to_source(
    aligned: np.ndarray,
    matrix: np.ndarray,
    shape: tuple[int, int],
    interpolation: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    """Warp a canonical-frame array back onto a source photo of ``shape`` (H, W); zeros elsewhere."""
    h, w = shape[:2]
    return cv2.warpAffine(
        aligned,
        np.asarray(matrix, dtype=np.float64),
        (w, h),
        flags=interpolation | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def align_face(
    image: np.ndarray, landmarks: np.ndarray, frame: CanonicalFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Align one face given its 68 source landmarks.

    Returns (aligned image, hull mask {0,1}, valid mask {0,1}, aligned (68, 2) float32 landmarks,
    2x3 source->aligned matrix).
    """
    m = alignment_matrix(landmarks, frame)
    aligned, valid = warp_to_frame(image, m, frame.size)
    lm = transform_points(landmarks, m).astype(np.float32)
    mask = hull_mask(lm, frame.size)
    return aligned, mask, valid, lm, m
