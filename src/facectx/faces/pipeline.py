"""Photo in, aligned faces out: detection -> 68 landmarks -> canonical frame, as a library call.

``python -m facectx.prepare`` runs this over folders; inference on users' photos runs it on one
image and keeps :attr:`AlignedFace.matrix` to paste results back with
:func:`facectx.faces.align.warp_to_source`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facectx.faces.align import align_face
from facectx.faces.detect import Box, Detection, FaceDetector, build_detector
from facectx.faces.landmarks import Landmarker, build_landmarker
from facectx.geometry.frame import CanonicalFrame, eye_centres

# Why an input produced no face; the fixed vocabulary of skipped.csv's "reason" column.
SKIP_REASONS = ("unreadable", "no_face", "too_small", "too_many_faces", "error")
FACE_POLICIES = ("largest", "all", "one")


@dataclass
class AlignedFace:
    """One face in the canonical frame, with what is needed to map it back to its photo.

    Attributes:
        image: (S, S, 3) uint8 RGB aligned face.
        mask: (S, S) uint8 {0,1} convex hull of the aligned landmarks.
        valid: (S, S) uint8 {0,1}, 1 where the aligned pixel lies inside the source photo.
        landmarks: (68, 2) float32 landmarks in aligned (x, y) pixels.
        source_landmarks: (68, 2) float32 landmarks in source-photo pixels.
        matrix: (2, 3) float64 similarity taking source pixels to aligned pixels.
        box: detector box (x0, y0, x1, y1) in source pixels.
        score: detector confidence.
    """

    image: np.ndarray
    mask: np.ndarray
    valid: np.ndarray
    landmarks: np.ndarray
    source_landmarks: np.ndarray
    matrix: np.ndarray
    box: Box
    score: float

    @property
    def source_eye_distance(self) -> float:
        """Distance between the eye centres in source pixels (the face's resolution)."""
        a, b = eye_centres(self.source_landmarks)
        return float(np.hypot(*(b - a)))


@dataclass
class PrepareResult:
    """Faces found in one photo, or why there are none (``reason`` in :data:`SKIP_REASONS`)."""

    faces: list[AlignedFace] = field(default_factory=list)
    reason: str = ""
    detail: str = ""
    dropped: int = 0  # faces large enough but left out by ``faces=largest``


class FacePreparer:
    """Detect, landmark and align the faces of one photo into a canonical frame.

    Args:
        frame: target frame (size and eye placement).
        detector: a registry name (``hog``, ``mtcnn``, ``fan``) or a built detector.
        landmarker: a registry name (``dlib``, ``fan``) or a built landmarker.
        upsample: image doublings for the ``hog`` detector when built by name.
        faces: ``largest`` keeps the biggest face, ``all`` keeps every face (biggest first),
            ``one`` requires exactly one face and skips the photo otherwise.
        min_face: faces whose eye-centre distance (or box side) in the source is below this many
            pixels are dropped as too small to upscale into the frame.
    """

    def __init__(
        self,
        frame: CanonicalFrame | None = None,
        detector: str | FaceDetector = "hog",
        landmarker: str | Landmarker = "dlib",
        upsample: int = 1,
        faces: str = "largest",
        min_face: float = 20.0,
    ):
        if faces not in FACE_POLICIES:
            raise ValueError(f"faces must be one of {FACE_POLICIES}, got {faces!r}")
        self.frame = frame if frame is not None else CanonicalFrame()
        self.detector = (
            build_detector(detector, upsample) if isinstance(detector, str) else detector
        )
        self.landmarker = (
            build_landmarker(landmarker) if isinstance(landmarker, str) else landmarker
        )
        self.faces = faces
        self.min_face = float(min_face)

    def prepare(self, image: np.ndarray) -> list[AlignedFace]:
        """Aligned faces of an (H, W, 3) uint8 RGB photo, largest first; empty when none qualify."""
        return self.run(image).faces

    def run(self, image: np.ndarray) -> PrepareResult:
        """Like :meth:`prepare` but says why a photo gave no face."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
        image = np.ascontiguousarray(image)
        h, w = image.shape[:2]
        if min(h, w) < self.min_face:
            return PrepareResult(
                reason="too_small",
                detail=f"image {w}x{h} px is smaller than min_face={self.min_face:g}",
            )

        dets: list[Detection] = sorted(self.detector(image), key=lambda d: -d.area)
        if not dets:
            name = getattr(self.detector, "name", type(self.detector).__name__)
            return PrepareResult(reason="no_face", detail=f"{name} found no face")

        lms = self.landmarker(image, [d.box for d in dets])
        kept: list[tuple[Detection, np.ndarray]] = []
        widest = 0.0
        for det, lm in zip(dets, lms):
            eyes = eye_centres(lm)
            eye_dist = float(np.hypot(*(eyes[1] - eyes[0])))
            widest = max(widest, eye_dist)
            if min(eye_dist, det.width, det.height) >= self.min_face:
                kept.append((det, lm))
        if not kept:
            return PrepareResult(
                reason="too_small",
                detail=f"all {len(dets)} face(s) below min_face={self.min_face:g} px "
                f"(widest eye distance {widest:.1f} px)",
            )
        if self.faces == "one" and len(kept) > 1:
            return PrepareResult(
                reason="too_many_faces", detail=f"{len(kept)} faces >= min_face, faces=one"
            )
        dropped = len(kept) - 1 if self.faces == "largest" else 0
        if self.faces in ("largest", "one"):
            kept = kept[:1]

        out = []
        for det, lm in kept:
            aligned, mask, valid, lm_aligned, m = align_face(image, lm, self.frame)
            out.append(
                AlignedFace(
                    image=aligned,
                    mask=mask,
                    valid=valid,
                    landmarks=lm_aligned,
                    source_landmarks=np.asarray(lm, np.float32),
                    matrix=m,
                    box=det.box,
                    score=det.score,
                )
            )
        return PrepareResult(faces=out, dropped=dropped)


@dataclass(frozen=True)
class PreparerSpec:
    """Picklable recipe for a FacePreparer, so each worker process builds its own models.

    Args:
        size, eye_distance, eye_y: the canonical frame (see ``CanonicalFrame``).
        detector: registry name (``hog``/``mtcnn``/``fan``) or a Hydra ``_target_`` dict.
        landmarker: registry name (``dlib``/``fan``) or a Hydra ``_target_`` dict.
        upsample: HOG doublings when ``detector`` is a name.
        faces: ``largest`` (a dataset's main subject; the default here), ``all`` (every face,
            largest first; ``hallucinate``'s default) or ``one`` (skip photos with several).
        min_face: minimum eye distance / box side in source pixels.
    """

    size: int = 128
    eye_distance: float = 0.27
    eye_y: float = 0.43
    detector: str | dict = "hog"
    landmarker: str | dict = "dlib"
    upsample: int = 1
    faces: str = "largest"
    min_face: float = 20.0

    def build(self) -> FacePreparer:
        return FacePreparer(
            CanonicalFrame(self.size, self.eye_distance, self.eye_y),
            detector=_build(self.detector),
            landmarker=_build(self.landmarker),
            upsample=self.upsample,
            faces=self.faces,
            min_face=self.min_face,
        )

    def describe(self, part: str) -> str | dict:
        """Short description of the detector or landmarker for meta.json."""
        spec = getattr(self, part)
        return spec if isinstance(spec, str) else dict(spec)


def _build(spec: str | dict):
    if isinstance(spec, str):
        return spec
    from hydra.utils import instantiate

    return instantiate(dict(spec))
