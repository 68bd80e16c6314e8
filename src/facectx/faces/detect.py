"""Face detectors behind one call signature: ``detector(image) -> list[Detection]``.

* ``hog``: dlib's HOG + linear SVM frontal detector. Fast on CPU, no extra weights, and the box
  dlib's 68-point shape predictor was trained on, so it is the default.
* ``mtcnn``: facenet-pytorch's MTCNN (weights ship in its wheel). Finds more profile and small
  faces; slower on CPU.
* ``fan``: S3FD, the detector face-alignment pairs with FAN. Its weights are not in any wheel
  and must be placed by hand (see :func:`facectx.pretrained.registry.torch_hub_checkpoint`).

Models load in the constructor, never at import, so worker processes build their own.
:func:`available_detectors` says which can run on this machine without loading any.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in source pixels


@dataclass(frozen=True)
class Detection:
    """One detected face: its box in source pixels and the detector's confidence."""

    box: Box
    score: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)


class FaceDetector(Protocol):
    """Anything that maps an (H, W, 3) uint8 RGB image to detections."""

    name: str

    def __call__(self, image: np.ndarray) -> list[Detection]: ...


def _detection_scale(shape: tuple[int, ...], max_side: int | None) -> float:
    """The factor a photo of ``shape`` is shrunk by for detection (1 when it is not)."""
    h, w = shape[:2]
    return 1.0 if max_side is None or max(h, w) <= max_side else max_side / max(h, w)


def _shrink_for_detection(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Downscale very large photos before detection; returns the image and its scale factor."""
    h, w = image.shape[:2]
    s = _detection_scale(image.shape, max_side)
    if s == 1.0:
        return image, 1.0
    import cv2

    small = cv2.resize(
        image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA
    )
    return small, s


class DlibHogDetector:
    """dlib's frontal HOG detector.

    Args:
        upsample: times the image is doubled before detection; each doubling halves the smallest
            findable face (about 80 px box at 0, 40 px at 1) and roughly quadruples the cost.
        max_side: photos whose long side exceeds this many pixels are shrunk to it for detection
            (boxes are mapped back), bounding time and memory on 12+ MP photos; None disables.
        threshold: SVM score threshold passed to ``run``; 0 is dlib's default operating point.
    """

    name = "hog"
    #: below this SVM score a face was barely found: faces like it nearby may have been missed
    weak_score = 1.0

    def __init__(self, upsample: int = 1, max_side: int | None = 2048, threshold: float = 0.0):
        import dlib

        if upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        self.upsample = int(upsample)
        self.max_side = max_side
        self.threshold = float(threshold)
        self._detector = dlib.get_frontal_face_detector()

    def __call__(self, image: np.ndarray) -> list[Detection]:
        small, s = _shrink_for_detection(image, self.max_side)
        rects, scores, _ = self._detector.run(small, self.upsample, self.threshold)
        return [
            Detection(
                box=(r.left() / s, r.top() / s, (r.right() + 1) / s, (r.bottom() + 1) / s),
                score=float(sc),
            )
            for r, sc in zip(rects, scores)
        ]

    def smallest(self, shape: tuple[int, ...]) -> float:
        """Side in source pixels of the smallest box it finds in a photo of ``shape``."""
        return 80.0 / 2**self.upsample / _detection_scale(shape, self.max_side)


# Median MTCNN box relative to dlib's HOG box on 156 LFW val crops: (x0 shift, y0 shift) in HOG
# box widths/heights, and (width, height) ratios. MTCNN boxes are narrower and reach higher.
_MTCNN_VS_HOG = (0.086, -0.148, 0.880, 1.153)


def mtcnn_to_dlib_box(box: Box) -> Box:
    """Reshape an MTCNN box into the box dlib's HOG detector would draw around the same face.

    dlib's shape predictor was trained on HOG boxes; fed this box instead of MTCNN's own, its
    landmarks move half as far from the HOG-box landmarks (median 1.5 % vs 3 % of the eye
    distance on LFW val).
    """
    x0, y0, x1, y1 = box
    dx, dy, sw, sh = _MTCNN_VS_HOG
    w, h = (x1 - x0) / sw, (y1 - y0) / sh
    nx0, ny0 = x0 - dx * w, y0 - dy * h
    return (nx0, ny0, nx0 + w, ny0 + h)


class MtcnnDetector:
    """facenet-pytorch's MTCNN on CPU.

    Args:
        min_face_size: smallest face box searched for, in pixels.
        thresholds: the three stage thresholds (P-Net, R-Net, O-Net).
        min_score: detections below this final probability are dropped.
        max_side: as for :class:`DlibHogDetector`.
        dlib_boxes: return boxes reshaped to dlib's HOG geometry (:func:`mtcnn_to_dlib_box`),
            which suits ``landmarks=dlib``; False returns MTCNN's own boxes.
        device: torch device string.
    """

    name = "mtcnn"
    weak_score = 0.97  # as DlibHogDetector.weak_score, for MTCNN's probability

    def __init__(
        self,
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        min_score: float = 0.9,
        max_side: int | None = 2048,
        dlib_boxes: bool = True,
        device: str = "cpu",
    ):
        try:
            from facenet_pytorch import MTCNN
        except ImportError as e:  # optional extra
            raise ImportError(
                "detector=mtcnn needs facenet-pytorch: `pip install --no-deps facenet-pytorch`"
            ) from e
        self.min_face_size = int(min_face_size)
        self.min_score = float(min_score)
        self.max_side = max_side
        self.dlib_boxes = bool(dlib_boxes)
        self._mtcnn = MTCNN(
            keep_all=True,
            min_face_size=self.min_face_size,
            thresholds=list(thresholds),
            post_process=False,
            device=device,
        )

    def __call__(self, image: np.ndarray) -> list[Detection]:
        small, s = _shrink_for_detection(image, self.max_side)
        # MTCNN's pyramid is empty (and it crashes) when the image is below its smallest scale.
        if min(small.shape[:2]) < max(self.min_face_size, 12):
            return []
        boxes, probs = self._mtcnn.detect(small)
        if boxes is None:
            return []
        boxes = np.asarray(boxes, dtype=np.float64) / s
        probs = np.asarray(probs, dtype=np.float64)
        out = []
        for b, p in zip(boxes, probs):
            if p < self.min_score:
                continue
            box = tuple(float(v) for v in b)
            out.append(Detection(mtcnn_to_dlib_box(box) if self.dlib_boxes else box, float(p)))
        return out

    def smallest(self, shape: tuple[int, ...]) -> float:
        """Side in source pixels of the smallest box it searches for in a photo of ``shape``."""
        return self.min_face_size / _detection_scale(shape, self.max_side)


class S3fdDetector:
    """S3FD through face-alignment (``detector=fan``); needs its weights on disk, never downloads.

    Args:
        min_score: detections below this confidence are dropped.
        max_side: as for :class:`DlibHogDetector`.
        device: torch device string.
    """

    name = "fan"
    weak_score = 0.8  # as DlibHogDetector.weak_score, for S3FD's confidence
    WEIGHTS = "s3fd-619a316812.pth"
    URL = "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth"

    def __init__(self, min_score: float = 0.5, max_side: int | None = 2048, device: str = "cpu"):
        from facectx.pretrained.registry import torch_hub_checkpoint

        weights = torch_hub_checkpoint(
            self.WEIGHTS, self.URL, what="S3FD face detector (detector=fan)"
        )
        from face_alignment.detection.sfd.sfd_detector import SFDDetector

        self.max_side = max_side
        self._sfd = SFDDetector(
            device=device, path_to_detector=str(weights), filter_threshold=min_score
        )

    def __call__(self, image: np.ndarray) -> list[Detection]:
        small, s = _shrink_for_detection(image, self.max_side)
        # RGB, as face-alignment's own pipeline passes it (S3FD flips to BGR internally).
        found = self._sfd.detect_from_image(np.ascontiguousarray(small))
        out = []
        for d in found:
            d = np.asarray(d, dtype=np.float64)
            out.append(Detection(box=tuple(float(v) / s for v in d[:4]), score=float(d[4])))
        return out


DETECTORS: dict[str, type] = {"hog": DlibHogDetector, "mtcnn": MtcnnDetector, "fan": S3fdDetector}
#: the package each detector imports, and how to get it
_PACKAGES = {
    "hog": ("dlib", "dlib"),
    "mtcnn": ("facenet_pytorch", "facenet-pytorch (`pip install --no-deps facenet-pytorch`)"),
    "fan": ("face_alignment", "face-alignment"),
}


def detector_problem(name: str) -> str | None:
    """Why detector ``name`` cannot run on this machine (a phrase), or None when it can.

    Decided without loading a model: its package is importable and, for ``fan``, its weights
    file is where :func:`facectx.pretrained.registry.torch_hub_checkpoint` looks (facectx never
    downloads it)."""
    import importlib.util

    if name not in DETECTORS:
        return f"unknown detector {name!r}; choose one of {sorted(DETECTORS)}"
    module, package = _PACKAGES[name]
    if importlib.util.find_spec(module) is None:
        return f"it needs {package}, which is not installed"
    if name == "fan":
        from facectx.pretrained.registry import MissingWeightsError, torch_hub_checkpoint

        try:
            torch_hub_checkpoint(S3fdDetector.WEIGHTS, S3fdDetector.URL, what="detector=fan")
        except MissingWeightsError:
            import torch

            where = Path(torch.hub.get_dir()) / "checkpoints"
            weights = S3fdDetector.WEIGHTS
            return f"its weights {weights} are not in {where} (facectx never downloads them)"
    return None


def available_detectors() -> tuple[str, ...]:
    """The registry names of the detectors that can run here (:func:`detector_problem`)."""
    return tuple(name for name in DETECTORS if detector_problem(name) is None)


def build_detector(name: str, upsample: int = 1) -> FaceDetector:
    """Detector by registry name; ``upsample`` applies to ``hog`` only."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose one of {sorted(DETECTORS)}")
    if name == "hog":
        return DlibHogDetector(upsample=upsample)
    return DETECTORS[name]()
