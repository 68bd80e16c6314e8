"""Background replacement of one portrait (paper supplement §4): the new background scaled to
cover the portrait, the portrait composited over it under a person alpha, a Laplacian-pyramid
blend (Burt & Adelson, 1983) of that composite and the background under the same alpha, and
the face-hull pixels pasted back exactly. ``python -m facectx.background`` runs it over folders.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from facectx.segment.base import Segmenter, check_inputs
from facectx.segment.grabcut import GrabCutSegmenter


def fit_background(background: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Scale ``background`` (H, W, 3) uint8 to cover ``shape`` (h, w), then centre-crop it."""
    import cv2

    bh, bw = background.shape[:2]
    h, w = shape
    scale = max(h / bh, w / bw)
    nh, nw = max(h, round(bh * scale)), max(w, round(bw * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(background, (nw, nh), interpolation=interp)
    y, x = (nh - h) // 2, (nw - w) // 2
    return np.ascontiguousarray(resized[y : y + h, x : x + w])


def laplacian_pyramid(x: np.ndarray, levels: int) -> list[np.ndarray]:
    """[L_0, ..., L_{levels-2}, G_{levels-1}] of a float32 image, ``L_i = G_i - up(G_{i+1})``
    (OpenCV ``pyrDown``/``pyrUp``: 5×5 binomial kernel, reflect-101 borders). Collapsing it
    (``x = up(x) + L_i`` from the top) gives ``x`` back up to float rounding."""
    import cv2

    gauss = [x]
    for _ in range(levels - 1):
        gauss.append(cv2.pyrDown(gauss[-1]))
    laps = [
        g - cv2.pyrUp(n, dstsize=(g.shape[1], g.shape[0])) for g, n in itertools.pairwise(gauss)
    ]
    return [*laps, gauss[-1]]


def laplacian_blend(
    foreground: np.ndarray, background: np.ndarray, alpha: np.ndarray, levels: int = 3
) -> np.ndarray:
    """Multi-band blend (Burt & Adelson, 1983): ``alpha`` selects ``foreground`` (1) or
    ``background`` (0).

    Laplacian pyramids of both images are mixed level by level with the Gaussian pyramid of
    ``alpha`` and collapsed: high frequencies switch sharply at the mask edge, low frequencies
    over a wide band, so the seam does not show. The pyramids are OpenCV's ``pyrDown`` /
    ``pyrUp`` (the same 5×5 binomial filter as kornia's ``pyrdown``/``pyrup``) on float32
    arrays: 0.7 ms for a 128 px portrait (measured). A torch version cost a multi-second import
    (kornia's) and, with two threads on the busy shared machine, 16× more CPU per portrait in
    OpenMP spin-waits (measured: 1.15 s vs 0.07 s for segmentation + three blends).

    Args:
        foreground, background: (H, W, 3) uint8 RGB of the same size (any H, W).
        alpha: (H, W) float in [0, 1].
        levels: pyramid levels (1 = plain alpha compositing).
    """
    import cv2

    if foreground.shape != background.shape or foreground.shape[:2] != alpha.shape:
        raise ValueError(
            f"shapes differ: foreground {foreground.shape}, background {background.shape}, "
            f"alpha {alpha.shape}"
        )
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    fg = foreground.astype(np.float32)
    bg = background.astype(np.float32)
    a = np.ascontiguousarray(alpha, dtype=np.float32)
    if levels == 1:
        out = a[:, :, None] * fg + (1 - a[:, :, None]) * bg
    else:
        ga = [a]
        for _ in range(levels - 1):
            ga.append(cv2.pyrDown(ga[-1]))
        lf, lb = laplacian_pyramid(fg, levels), laplacian_pyramid(bg, levels)
        mixed = [g[:, :, None] * x + (1 - g[:, :, None]) * y for g, x, y in zip(ga, lf, lb)]
        out = mixed[-1]
        for lev in reversed(mixed[:-1]):
            out = cv2.pyrUp(out, dstsize=(lev.shape[1], lev.shape[0])) + lev
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


@dataclass
class Replaced:
    """A portrait on a new background and the foreground alpha used."""

    image: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray  # (H, W) float32 in [0, 1]


def replace_background(
    portrait: np.ndarray,
    face_mask: np.ndarray,
    background: np.ndarray,
    segmenter: Segmenter | None = None,
    levels: int = 3,
    alpha: np.ndarray | None = None,
) -> Replaced:
    """Put a portrait on a new background; face-hull pixels stay exactly the portrait's.

    ``alpha`` (the segmenter's person mask, forced to 1 on the face) first composites the
    portrait over the background; that image and the background are then Laplacian-blended
    under ``alpha`` (:func:`laplacian_blend`) so the seam is smooth at every scale; finally the
    face-hull pixels are pasted back.

    Args:
        portrait: (H, W, 3) uint8 RGB (e.g. a hallucinated portrait).
        face_mask: (H, W) {0,1} or {0,255} face hull (the generator's keep-mask).
        background: (h, w, 3) uint8 RGB of any size; scaled to cover and centre-cropped.
        segmenter: person segmenter; None = :class:`GrabCutSegmenter` defaults.
        levels: Laplacian pyramid levels of the blend.
        alpha: a precomputed foreground alpha (H, W) (skips the segmenter).
    """
    portrait, face = check_inputs(portrait, face_mask)
    if alpha is None:
        alpha = (segmenter or GrabCutSegmenter())(portrait, face.astype(np.uint8))
    alpha = np.maximum(np.asarray(alpha, np.float32), face.astype(np.float32))
    bg = fit_background(np.asarray(background), portrait.shape[:2])
    # Pre-fill: the portrait's own background goes first, so the pyramid's low frequencies
    # near the person come from the new background (no halo of the old one, less colour bleed).
    a3 = alpha[:, :, None]
    prefilled = np.round(a3 * portrait + (1.0 - a3) * bg).astype(np.uint8)
    out = laplacian_blend(prefilled, bg, alpha, levels)
    out[face] = portrait[face]
    return Replaced(out, alpha)


__all__ = [
    "Replaced",
    "fit_background",
    "laplacian_blend",
    "laplacian_pyramid",
    "replace_background",
]
