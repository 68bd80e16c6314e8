"""The paper's "face mask": the convex hull of the 68 aligned landmarks."""

from __future__ import annotations

import cv2
import numpy as np


def hull_mask(landmarks: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Binary (H, W) uint8 mask, 1 inside the convex hull of ``landmarks`` ((N, 2) x, y pixels).

    Rasterised with 1/16-pixel sub-pixel precision so the mask does not jitter with rounding.
    """
    h, w = (size, size) if isinstance(size, int) else size
    pts = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3 or not np.isfinite(pts).all():
        raise ValueError("hull_mask needs at least 3 finite landmark points")
    hull = cv2.convexHull(np.round(pts * 16).astype(np.int32))
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=4)
    return mask
