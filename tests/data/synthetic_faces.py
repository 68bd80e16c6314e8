"""Synthetic faces for tests: a fixed 68-point template and a tiny prepared folder.

Written exactly in the prepared-folder format of ``facectx.data.manifest`` so the data tests do
not depend on dlib, the preparation pipeline or the embedded sample.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from facectx.data.manifest import MANIFEST, MANIFEST_COLUMNS, META, CsvAppender
from facectx.masks import hull_mask

# Feature colours (RGB): the subject's right eye (image left in the template) is blue, the left
# eye green, so mirror tests can tell which eye a landmark sits on.
RIGHT_EYE_RGB = (40, 60, 230)
LEFT_EYE_RGB = (40, 210, 60)
SIZE = 64  # the default frame of the test folders: small and fast


def _ellipse(cx, cy, rx, ry, degrees):
    return [
        (cx + rx * math.cos(math.radians(a)), cy - ry * math.sin(math.radians(a))) for a in degrees
    ]


def template_unit() -> np.ndarray:
    """(68, 2) iBUG-ordered template in frame fractions, symmetric about x = 0.5."""
    jaw = [
        (
            0.5 + 0.30 * math.cos(math.pi - i * math.pi / 16),
            0.45 + 0.47 * math.sin(math.pi - i * math.pi / 16),
        )
        for i in range(17)
    ]
    right_brow = [(0.25 + 0.05 * i, 0.34 - 0.02 * math.sin(math.pi * i / 4)) for i in range(5)]
    left_brow = [(1.0 - x, y) for x, y in reversed(right_brow)]
    bridge = [(0.5, 0.45 + 0.045 * i) for i in range(4)]
    nostrils = [(0.44 + 0.03 * i, 0.62 + (0.01 if i == 2 else 0.0)) for i in range(5)]
    eye_angles = (180, 120, 60, 0, 300, 240)
    right_eye = _ellipse(0.365, 0.43, 0.05, 0.02, eye_angles)
    left_eye = _ellipse(0.635, 0.43, 0.05, 0.02, eye_angles)
    outer_lip = _ellipse(0.5, 0.75, 0.10, 0.04, range(180, -180, -30))
    inner_lip = _ellipse(0.5, 0.75, 0.07, 0.015, range(180, -180, -45))
    pts = (
        jaw
        + right_brow
        + left_brow
        + bridge
        + nostrils
        + right_eye
        + left_eye
        + outer_lip
        + inner_lip
    )
    return np.array(pts, dtype=np.float64)


def template_landmarks(size: int, shift=(0.0, 0.0), scale: float = 1.0) -> np.ndarray:
    """(68, 2) float32 template landmarks in pixels (pixel centres at integers) of a size frame."""
    u = (template_unit() - 0.5) * scale + 0.5
    return (u * size - 0.5 + np.asarray(shift)).astype(np.float32)


def draw_face(landmarks: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size, 3) uint8 RGB cartoon face with coloured parts at the landmarks."""
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = rng.integers(60, 200, 3)
    img[:, : size // 2] //= 2  # a two-tone background so flips are visible
    lm = np.round(landmarks * 16).astype(np.int32)

    def fill(idx, rgb):
        cv2.fillConvexPoly(img, cv2.convexHull(lm[list(idx)]), tuple(int(c) for c in rgb), shift=4)

    fill(range(68), (220, 180, 150))
    fill(range(36, 42), RIGHT_EYE_RGB)
    fill(range(42, 48), LEFT_EYE_RGB)
    fill(range(48, 60), (200, 40, 40))
    fill([27, 31, 33, 35], (180, 130, 110))
    noise = rng.integers(-6, 7, img.shape)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


# (person, split) per face: 4 train persons (with one unlabelled face), 1 val, 2 test persons.
FACES = (
    [("Ann", "train")] * 3
    + [("Bob", "train")] * 3
    + [("Cy", "train")] * 2
    + [("Di", "train")]
    + [("", "train")]
    + [("Ed", "val")] * 2
    + [("Flo", "test")] * 2
    + [("Gus", "test")]
)


def write_prepared(root: Path, size: int = SIZE, seed: int = 0) -> Path:
    """Write a prepared folder of len(FACES) synthetic faces at ``size`` px under ``root``."""
    rng = np.random.default_rng(seed)
    for sub in ("images", "masks", "valid", "landmarks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    meta = {
        "frame": {"size": size, "eye_distance": 0.27, "eye_y": 0.43},
        "detector": "synthetic",
        "landmarker": "synthetic",
        "version": 1,
    }
    (root / META).write_text(json.dumps(meta))
    with CsvAppender(root / MANIFEST, MANIFEST_COLUMNS) as out:
        for i, (person, split) in enumerate(FACES):
            fid = f"{person or 'anon'}_{i:04d}"
            shift = rng.uniform(-0.04, 0.04, 2) * size + np.array([0.03 * size, 0.0])  # asymmetric
            lm = template_landmarks(size, shift=shift, scale=rng.uniform(0.9, 1.05))
            rgb = draw_face(lm, size, rng)
            valid = np.full((size, size), 255, np.uint8)
            valid[:, : size // 16] = 0  # the left edge lies outside the "source photo"
            cv2.imwrite(str(root / "images" / f"{fid}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(root / "masks" / f"{fid}.png"), hull_mask(lm, size) * 255)
            cv2.imwrite(str(root / "valid" / f"{fid}.png"), valid)
            np.save(root / "landmarks" / f"{fid}.npy", lm)
            out.write(
                {
                    "id": fid,
                    "image": f"images/{fid}.png",
                    "mask": f"masks/{fid}.png",
                    "valid": f"valid/{fid}.png",
                    "landmarks": f"landmarks/{fid}.npy",
                    "source": f"{fid}.jpg",
                    "face_index": 0,
                    "person": person,
                    "split": split,
                    "score": 1.0,
                }
            )
    return root
