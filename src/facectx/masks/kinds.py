"""Mask kinds: callables ``(size, landmarks, generator) -> (1, H, W)`` float keep masks.

Every mask is a *keep* mask: 1 = pixel given to the model, 0 = pixel the model must generate.
``FaceHullMask`` keeps the face (the paper's face mask: generate the context); every other kind
cuts a hole (``CenterMask``, ``IrregularMask``, ``FacialMask``, ``OcularMask``: generate inside).
Landmarks are (68, 2) (x, y) pixels of the requested size, pixel centres at integers (iBUG 68).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from facectx.geometry.frame import LEFT_EYE, RIGHT_EYE
from facectx.geometry.hull import hull_mask
from facectx.masks.ops import as_generator, dilate_hole, feather, size_hw

# iBUG 68 parts; "right"/"left" are the subject's (the subject's right is on the image left).
JAW = tuple(range(0, 17))
RIGHT_BROW = tuple(range(17, 22))
LEFT_BROW = tuple(range(22, 27))
NOSE = tuple(range(27, 36))
MOUTH = tuple(range(48, 68))


def landmarks_array(
    landmarks: Tensor | np.ndarray | None, who: str, n: int | None = 68
) -> np.ndarray:
    """(N, 2) float64 numpy landmarks from a tensor or array, with a clear error if missing."""
    if landmarks is None:
        raise ValueError(f"{who} is drawn from landmarks: pass (68, 2) landmarks in (x, y) pixels")
    if isinstance(landmarks, Tensor):
        landmarks = landmarks.detach().cpu().numpy()
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] != 2 or (n is not None and lm.shape[0] != n):
        want = f"({n}, 2)" if n is not None else "(N, 2)"
        raise ValueError(f"{who}: expected {want} landmarks, got shape {tuple(lm.shape)}")
    return lm


def face_hull(landmarks: Tensor | np.ndarray, size: int | tuple[int, int]) -> Tensor:
    """Torch face-hull keep mask (1, H, W): 1 inside the convex hull of ``landmarks``."""
    lm = landmarks_array(landmarks, "face_hull", n=None)
    return torch.from_numpy(hull_mask(lm, size_hw(size)).astype(np.float32))[None]


class MaskKind:
    """Base of the mask kinds: draws a binary keep mask, then optional dilation and feathering.

    Subclasses implement ``draw(h, w, landmarks, generator) -> (H, W) numpy {0, 1}`` and set
    ``random`` when they consume the generator.

    Args:
        dilate: grow the hole by this many pixels (a disc); 0 = off. Result stays binary.
        feather: soften the hole's edge over this many known pixels; 0 = off. Feathered masks are
            not binary (see ``facectx.masks.ops.feather``).
    """

    random = False

    def __init__(self, dilate: int = 0, feather: int = 0):
        if dilate < 0 or feather < 0:
            raise ValueError(f"dilate and feather are pixel counts >= 0, got {dilate}, {feather}")
        self.dilate = int(dilate)
        self.feather = int(feather)

    def draw(
        self, h: int, w: int, landmarks: Tensor | None, generator: torch.Generator | None
    ) -> np.ndarray:
        raise NotImplementedError

    def __call__(
        self,
        size: int | tuple[int, int],
        landmarks: Tensor | None = None,
        generator: torch.Generator | int | None = None,
    ) -> Tensor:
        """(1, H, W) float keep mask for an image of ``size`` (int side or (H, W))."""
        h, w = size_hw(size)
        if self.random:
            generator = as_generator(generator, type(self).__name__)
        keep = self.draw(h, w, landmarks, generator)
        mask = torch.from_numpy(np.ascontiguousarray(keep, dtype=np.float32))[None]
        if self.dilate:
            mask = dilate_hole(mask, self.dilate)
        if self.feather:
            mask = feather(mask, self.feather)
        return mask

    def __repr__(self) -> str:
        args = ", ".join(
            f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_") and k != "random"
        )
        return f"{type(self).__name__}({args})"


class FaceHullMask(MaskKind):
    """The paper's face mask: keep the convex hull of the 68 landmarks, generate the context.

    Args:
        dilate: grow the hole (the context) by this many pixels, i.e. shrink the kept face.
        feather: see ``MaskKind``.
    """

    def draw(self, h, w, landmarks, generator):
        return hull_mask(landmarks_array(landmarks, "FaceHullMask", n=None), (h, w))


class CenterMask(MaskKind):
    """A centred rectangular hole, as in SwapInpaint: side ``fraction`` of each image side.

    At ``fraction = 0.6`` (3/5) a square image loses 0.36 of its area (rounded to whole pixels).

    Args:
        fraction: hole side as a fraction of the image side (height and width separately).
        jitter: max random offset of the hole centre, as a fraction of the image side; the hole
            is kept inside the image. 0 (default) = always centred, no generator needed.
        dilate, feather: see ``MaskKind``.
    """

    def __init__(
        self, fraction: float = 0.6, jitter: float = 0.0, dilate: int = 0, feather: int = 0
    ):
        super().__init__(dilate, feather)
        if not 0.0 < fraction <= 1.0 or jitter < 0.0:
            raise ValueError(
                f"CenterMask: need 0 < fraction <= 1 and jitter >= 0, got {fraction}, {jitter}"
            )
        self.fraction = float(fraction)
        self.jitter = float(jitter)
        self.random = self.jitter > 0

    def draw(self, h, w, landmarks, generator):
        hh, hw = max(1, round(self.fraction * h)), max(1, round(self.fraction * w))
        top, left = (h - hh) // 2, (w - hw) // 2
        if self.random:
            u = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
            top += round((2 * u[0] - 1) * self.jitter * h)
            left += round((2 * u[1] - 1) * self.jitter * w)
            top, left = min(max(top, 0), h - hh), min(max(left, 0), w - hw)
        keep = np.ones((h, w), np.uint8)
        keep[top : top + hh, left : left + hw] = 0
        return keep


class _PartsMask(MaskKind):
    """Hole = union of convex hulls of landmark groups, grown by ``grow * min(H, W)`` pixels."""

    groups: tuple[tuple[int, ...], ...] = ()

    def __init__(self, grow: float = 0.04, brows: bool = False, dilate: int = 0, feather: int = 0):
        super().__init__(dilate, feather)
        if grow < 0:
            raise ValueError(f"{type(self).__name__}: grow must be >= 0, got {grow}")
        self.grow = float(grow)
        self.brows = bool(brows)

    def _groups(self) -> list[tuple[int, ...]]:
        right, left = RIGHT_EYE, LEFT_EYE
        if self.brows:  # one hull per side covers the skin between eye and brow
            right, left = RIGHT_BROW + RIGHT_EYE, LEFT_BROW + LEFT_EYE
        return [right, left, *self.groups]

    def draw(self, h, w, landmarks, generator):
        lm = landmarks_array(landmarks, type(self).__name__)
        hole = np.zeros((h, w), np.uint8)
        for idx in self._groups():
            hole |= hull_mask(lm[list(idx)], (h, w))
        r = round(self.grow * min(h, w))
        if r > 0:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
            hole = cv2.dilate(hole, kernel)
        return 1 - hole


class FacialMask(_PartsMask):
    """Hole over the facial components: both eyes, the nose and the mouth (SwapInpaint-style
    identity-bearing parts), each the convex hull of its landmarks, grown and united.

    Args:
        grow: growth of each part as a fraction of the shorter image side (0.04 = 5 px at 128).
        brows: also cover the eyebrows (each eye's hull then includes its brow).
        dilate, feather: see ``MaskKind``.
    """

    groups = (NOSE, MOUTH)


class OcularMask(_PartsMask):
    """Hole over both eyes (optionally with the brows): the periocular region only.

    With the same ``grow`` and ``brows`` its hole is a subset of ``FacialMask``'s.

    Args:
        grow: growth of each eye as a fraction of the shorter image side.
        brows: also cover the eyebrows.
        dilate, feather: see ``MaskKind``.
    """

    groups = ()
