"""Photo in, aligned faces out: detection -> 68 landmarks -> canonical frame, as a library call.

``python -m facectx.prepare`` runs this over folders; inference on users' photos runs it on one
image and keeps :attr:`AlignedFace.matrix` to paste results back with
:func:`facectx.faces.align.warp_to_source`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
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
    # every face the detector found, largest first (also those too small or left out)
    detections: list[Detection] = field(default_factory=list)
    too_small: int = 0  # detections below ``min_face``
    # why the detector may have missed faces in this photo, in words ("" = no sign of it), and
    # the overrides that look harder (``upsample=2``, ``detector=mtcnn``, ``min_face=10``)
    missed: str = ""
    retry: tuple[str, ...] = ()

    @property
    def found(self) -> int:
        """Faces found large enough to use (kept or left out by the ``faces`` policy)."""
        return len(self.detections) - self.too_small


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
            return PrepareResult(
                reason="no_face",
                detail=f"{name} found no face",
                missed="no face found",
                retry=self._retry(small=True, too_small=False),
            )

        lms = self.landmarker(image, [d.box for d in dets])
        kept: list[tuple[Detection, np.ndarray, float]] = []
        widest = 0.0
        for det, lm in zip(dets, lms):
            eyes = eye_centres(lm)
            eye_dist = float(np.hypot(*(eyes[1] - eyes[0])))
            widest = max(widest, eye_dist)
            if min(eye_dist, det.width, det.height) >= self.min_face:
                kept.append((det, lm, eye_dist))
        info = self._doubts(image.shape, dets, kept)
        if not kept:
            return PrepareResult(
                reason="too_small",
                detail=f"all {len(dets)} face(s) below min_face={self.min_face:g} px "
                f"(widest eye distance {widest:.1f} px)",
                **info,
            )
        if self.faces == "one" and len(kept) > 1:
            return PrepareResult(
                reason="too_many_faces",
                detail=f"{len(kept)} faces >= min_face, faces=one",
                **info,
            )
        dropped = len(kept) - 1 if self.faces == "largest" else 0
        if self.faces in ("largest", "one"):
            kept = kept[:1]

        out = []
        for det, lm, _ in kept:
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
        return PrepareResult(faces=out, dropped=dropped, **info)

    def _doubts(self, shape: tuple[int, ...], dets: list[Detection], kept: list) -> dict:
        """What a photo's detections say about faces the detector may have missed, as
        PrepareResult fields: faces below min_face, a barely found face (low score, or near
        the smallest size the detector or ``min_face`` allows), or a group of three or more
        (a crowd's further faces are often turned, cut or small)."""
        too_small = len(dets) - len(kept)
        # A barely found face hints at others only where the photo has room for them: a tight
        # crop (LFW: the face box is a quarter of the frame) holds no second face to miss.
        weak = getattr(self.detector, "weak_score", None)
        roomy = shape[0] * shape[1] * ROOM_FOR_MORE
        weak = weak is not None and any(d.score < weak and d.area < roomy for d, _, _ in kept)
        smallest = getattr(self.detector, "smallest", None)
        limit = float(smallest(shape)) if callable(smallest) else 0.0
        small = any(min(d.width, d.height) < 1.5 * limit for d, _, _ in kept)
        near_min = any(e < 1.5 * self.min_face for _, _, e in kept)
        group = len(kept) >= 3
        why = []
        if too_small:
            why.append(f"{too_small} face(s) below min_face={self.min_face:g} px")
        if weak:
            why.append("a low-confidence detection")
        if small or near_min:
            why.append("a face near the smallest size found")
        if group:
            why.append(f"a group of {len(kept)}")
        info = {"detections": dets, "too_small": too_small}
        if not why:
            return info
        return {
            **info,
            "missed": ", ".join(why),
            "retry": self._retry(
                small=weak or small or group, too_small=bool(too_small) or near_min
            ),
        }

    def _retry(self, small: bool, too_small: bool) -> tuple[str, ...]:
        """Overrides that find more faces than this preparer: a finer HOG search, MTCNN (when
        installed) and, for faces dropped as too small, a lower ``min_face``."""
        import importlib.util

        name = getattr(self.detector, "name", "")
        upsample = getattr(self.detector, "upsample", None)
        out = []
        if small and name == "hog" and upsample is not None and upsample < 3:
            out.append(f"upsample={upsample + 1}")
        if small and name != "mtcnn" and importlib.util.find_spec("facenet_pytorch"):
            out.append("detector=mtcnn")
        if too_small:
            out.append(f"min_face={self.min_face / 2:g}")
        return tuple(out)


#: a face box under this share of the photo leaves room for other faces beside it
ROOM_FOR_MORE = 0.1


@dataclass
class FacesFound:
    """Faces found per photo over a folder run, and where the detector may have missed some:
    the lines a run's summary ends with (:meth:`lines`)."""

    per_photo: Counter = field(default_factory=Counter)  # faces found -> photos
    missed: dict[str, str] = field(default_factory=dict)  # source -> why (PrepareResult.missed)
    retry: dict[str, None] = field(default_factory=dict)  # overrides that look harder, in order

    def add(self, source: str, found: int, missed: str = "", retry: Sequence[str] = ()) -> None:
        """Count one photo (a PrepareResult's ``found``, ``missed``, ``retry``)."""
        self.per_photo[int(found)] += 1
        if missed:
            self.missed[source] = missed
            self.retry.update(dict.fromkeys(retry))

    def lines(
        self, rerun: str = "run again into a new output folder with", shown: int = 3
    ) -> list[str]:
        """One line of faces per photo and, when faces may have been missed, one naming the
        first ``shown`` such photos and the overrides to ``rerun`` with; [] for no photo."""
        if not self.per_photo:
            return []

        def photos(n: int) -> str:
            return f"{n} photo{'s' if n != 1 else ''}"

        counts = ", ".join(f"{k} in {photos(n)}" for k, n in sorted(self.per_photo.items()))
        out = [f"faces found per photo: {counts}"]
        if self.missed:
            named = [f"{src}: {why}" for src, why in list(self.missed.items())[:shown]]
            if len(self.missed) > shown:
                named.append(f"and {len(self.missed) - shown} more")
            line = f"the detector may have missed faces in {photos(len(self.missed))}"
            line += f" ({'; '.join(named)})"
            if self.retry:
                options = list(self.retry)
                tried = ", ".join(options[:-1]) + " or " if len(options) > 1 else ""
                line += f"; to look harder, {rerun} {tried}{options[-1]}"
            out.append(line)
        return out


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
