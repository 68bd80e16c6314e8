"""Free-form irregular holes: random brush strokes, in the style of DeepFill v2 / partial conv.

Algorithm (``irregular_strokes``), all randomness from one ``torch.Generator``:

1. Draw a target hole fraction ``t ~ U(area_range)``.
2. Start a stroke at a uniform random point, with a random heading, a brush width
   ``~ U(width) * min(H, W)`` and ``~ U{vertices}`` vertices.
3. Each segment turns the heading by ``~ U(-max_turn, max_turn)`` radians and advances
   ``~ U(length) * min(H, W)`` pixels; a segment that would leave the image is reflected off the
   border. Segments are drawn as thick lines with round joints.
4. After every segment the hole fraction is measured. Reaching ``t`` ends the mask. A segment
   that pushes it above ``area_range[1]`` is undone: if the fraction is then inside the range
   the mask is done, else the stroke ends and a new one starts (step 2).

Because the mask grows one segment at a time, the result lies inside ``area_range`` whenever one
segment covers less than the width of the range (true for the defaults at any resolution: a
segment is at most ~4% of the image). A configuration that cannot reach the range within
``max_strokes`` strokes raises, rather than silently returning a mask outside it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from facectx.masks.kinds import MaskKind


def _pair(name: str, value, lo: float, hi: float | None = None) -> tuple[float, float]:
    a, b = (float(value[0]), float(value[1]))
    if not (lo <= a <= b) or (hi is not None and b > hi):
        bound = f" and <= {hi}" if hi is not None else ""
        raise ValueError(f"{name} must be an ordered pair >= {lo}{bound}, got {value!r}")
    return a, b


def irregular_strokes(
    h: int,
    w: int,
    generator: torch.Generator,
    area_range: tuple[float, float] = (0.1, 0.5),
    vertices: tuple[int, int] = (4, 12),
    width: tuple[float, float] = (0.04, 0.12),
    length: tuple[float, float] = (0.05, 0.2),
    max_turn: float = 1.2,
    max_strokes: int = 500,
) -> np.ndarray:
    """(H, W) uint8 keep mask (0 in the strokes) whose hole fraction lies in ``area_range``.

    See the module docstring for the algorithm and the meaning of each range.
    """

    def rand() -> float:
        return float(torch.rand((), generator=generator, dtype=torch.float64))

    def uniform(pair) -> float:
        return pair[0] + (pair[1] - pair[0]) * rand()

    side = min(h, w)
    total = float(h * w)
    lo, hi = area_range
    target = uniform(area_range)
    hole = np.zeros((h, w), np.uint8)
    area = 0.0
    for _ in range(max_strokes):
        n = int(torch.randint(vertices[0], vertices[1] + 1, (), generator=generator))
        brush = max(1, round(uniform(width) * side))
        x, y = rand() * (w - 1), rand() * (h - 1)
        heading = rand() * 2 * math.pi
        for _ in range(n):
            heading += (2 * rand() - 1) * max_turn
            step = uniform(length) * side
            nx, ny = x + step * math.cos(heading), y + step * math.sin(heading)
            if nx < 0 or nx > w - 1:  # reflect off the left/right border
                nx = -nx if nx < 0 else 2 * (w - 1) - nx
                heading = math.pi - heading
            if ny < 0 or ny > h - 1:
                ny = -ny if ny < 0 else 2 * (h - 1) - ny
                heading = -heading
            nx, ny = min(max(nx, 0.0), w - 1.0), min(max(ny, 0.0), h - 1.0)
            before = hole.copy()
            p, q = (round(x), round(y)), (round(nx), round(ny))
            cv2.line(hole, p, q, 1, thickness=brush)
            cv2.circle(hole, q, brush // 2, 1, thickness=-1)
            new_area = np.count_nonzero(hole) / total
            if new_area > hi:
                hole = before
                if area >= lo:
                    return 1 - hole
                break  # end this stroke, start another
            area = new_area
            if area >= target:
                return 1 - hole
            x, y = nx, ny
    raise RuntimeError(
        f"irregular_strokes: {max_strokes} strokes did not reach a hole fraction in {area_range} "
        f"at {h}x{w} (reached {area:.3f}); widen area_range or use thinner/shorter brushes"
    )


class IrregularMask(MaskKind):
    """Random free-form brush-stroke holes (DeepFill v2 style); see the module docstring.

    Args:
        area_range: (min, max) hole fraction of the image, 0 <= min <= max < 1.
        vertices: (min, max) number of segments per stroke.
        width: (min, max) brush width as a fraction of the shorter image side.
        length: (min, max) segment length as a fraction of the shorter image side.
        max_turn: largest change of heading between segments, radians.
        max_strokes: strokes tried before giving up with an error.
        dilate, feather: see ``MaskKind`` (dilation grows the hole past ``area_range``).
    """

    random = True

    def __init__(
        self,
        area_range: tuple[float, float] = (0.1, 0.5),
        vertices: tuple[int, int] = (4, 12),
        width: tuple[float, float] = (0.04, 0.12),
        length: tuple[float, float] = (0.05, 0.2),
        max_turn: float = 1.2,
        max_strokes: int = 500,
        dilate: int = 0,
        feather: int = 0,
    ):
        super().__init__(dilate, feather)
        self.area_range = _pair("area_range", area_range, 0.0, 0.99)
        lo_v, hi_v = _pair("vertices", vertices, 1.0)
        self.vertices = (int(lo_v), int(hi_v))
        self.width = _pair("width", width, 0.0, 1.0)
        self.length = _pair("length", length, 0.0)
        self.max_turn = float(max_turn)
        self.max_strokes = int(max_strokes)

    def draw(self, h, w, landmarks, generator):
        return irregular_strokes(
            h,
            w,
            generator,
            area_range=self.area_range,
            vertices=self.vertices,
            width=self.width,
            length=self.length,
            max_turn=self.max_turn,
            max_strokes=self.max_strokes,
        )
