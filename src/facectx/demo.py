"""The web demo's logic: what ``python -m facectx.app`` computes, as plain functions on arrays
and files (:class:`Demo`), testable without a browser (docs/app.md).

Two tabs: **Hallucinate** (photo in; every face aligned and masked, given hallucinated context,
optionally put on a new background, and pasted back into the photo) and **Inpaint with a
reference** (SwapInpaint, when ``inpaint_ckpt=`` names a checkpoint).

The page layout is :mod:`facectx.app_ui` (gradio is imported only there) and the command line
is :mod:`facectx.app`; neither is imported here.

A user's mistake (no face, an unreadable file, a reference without a face) is an
:class:`AppError` whose message is shown in the page as written.
"""

from __future__ import annotations

import logging
import os
import threading
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("facectx.app")

#: ``progress(fraction, description)``, e.g. a ``gr.Progress`` wrapped by the page
ProgressFn = Callable[[float, str], None]

#: every detector of the registry; the page offers those that can run here (Demo.detectors)
DETECTORS = ("hog", "mtcnn", "fan")
FACE_CHOICES = ("all", "largest")
INPAINT_MASKS = ("facial", "ocular", "center", "irregular", "drawn")
#: faces of the embedded LFW sample offered as examples (the HOG detector finds each)
EXAMPLES = ("AJ_Lamas_0001_0.png", "Aaron_Peirsol_0001_0.png", "Abdullah_Gul_0006_0.png")
#: result folders kept on disk per app (older ones are deleted; the page shows the latest)
KEEP_RUNS = 20
#: most portraits per face the page asks of a model that gives several (the exemplar model)
MAX_SAMPLES = 8

#: what the Inpaint tab says when the app was started without a SwapInpaint checkpoint
NO_INPAINT = (
    "Inpainting needs a SwapInpaint model: the one shipped with facectx (lfw-swap-128) could "
    "not be loaded here (the server's log says why; `python -m facectx.weights list` shows "
    "whether it is installed) and no inpaint_ckpt= was given. Train one with "
    "`python -m facectx.train experiment=swapinpaint_quickstart`, then start the app with "
    "`inpaint_ckpt=RUN/checkpoints/last.ckpt`."
)


class AppError(ValueError):
    """A problem with what the user gave; the message is a sentence for the page."""


def _no_face_message(reason: str, detail: str, what: str) -> str:
    """A sentence for a ``FacePreparer`` skip reason (``facectx.faces.pipeline.SKIP_REASONS``)."""
    if reason == "no_face":
        return (
            f"No face found in {what} ({detail}). Use a photo with a clearly visible, roughly "
            "frontal face, or try another detector."
        )
    if reason == "too_small":
        return f"The face in {what} is too small to use ({detail}). Use a larger photo."
    if reason == "too_many_faces":
        return f"{what[0].upper()}{what[1:]} has several faces ({detail})."
    return f"No usable face in {what}: {reason} ({detail})."


def read_photo(photo: str | os.PathLike | np.ndarray | None, what: str = "the photo") -> np.ndarray:
    """An uploaded file (or array) as an upright (H, W, 3) uint8 RGB array, or an AppError."""
    from facectx.faces.io import ImageReadError, read_image

    if photo is None or (isinstance(photo, str) and not photo):
        raise AppError(f"Upload {what} first (or pick an example).")
    if isinstance(photo, np.ndarray):
        a = photo
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        if a.ndim != 3 or a.shape[2] not in (3, 4) or a.dtype != np.uint8:
            raise AppError(f"Could not use {what}: expected an RGB image, got {a.shape} {a.dtype}.")
        return np.ascontiguousarray(a[:, :, :3])
    try:
        return read_image(photo)
    except ImageReadError as e:
        raise AppError(f"Could not read {what} as an image: {e.reason}.") from e


def masked_face(image: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The aligned face as the generator sees it: black outside the kept pixels."""
    return np.where(np.asarray(keep)[..., None] > 0, image, 0).astype(np.uint8)


#: a face's area, in detector-box widths/heights: the ellipse around the head (forehead and hair
#: above the box, which runs from the brows to the chin) that no other face's context may cover
HEAD_CENTRE_Y, HEAD_AXES = 0.3, (0.62, 0.85)
#: the pasted context: an ellipse in the aligned frame (fractions of its size) fading to the
#: photo over FADE of it, so no square's edge or corner shows
CONTEXT_CENTRE, CONTEXT_AXES, CONTEXT_FADE = (0.5, 0.45), (0.47, 0.52), 0.12
#: aligned pixels over which the context fades in beside the face hull
HULL_FADE = 3.0
#: the status's sentence for a model without a pasted-back view (``pastes_back`` False)
NO_PASTE = (
    "No pasted-back view with this model: its context is another photo's whole head, and "
    "your photo's own hair beyond the portrait's frame would show beside it."
)


def _draw_heads(mask: np.ndarray, boxes: Sequence[Sequence[float]], offset=(0, 0)) -> None:
    """Fill the head ellipse of each detector box into ``mask`` (uint8), shifted by -offset."""
    import cv2

    for x0, y0, x1, y1 in boxes:
        w, h = x1 - x0, y1 - y0
        centre = ((x0 + x1) / 2 - offset[0], y0 + HEAD_CENTRE_Y * h - offset[1])
        axes = (HEAD_AXES[0] * w, HEAD_AXES[1] * h)
        s = 16  # cv2 draws on integers: 4 fractional bits
        cv2.ellipse(
            mask,
            (round(centre[0] * s), round(centre[1] * s)),
            (max(1, round(axes[0] * s)), max(1, round(axes[1] * s))),
            0,
            0,
            360,
            1,
            -1,
            cv2.LINE_8,
            4,
        )


def face_areas(boxes: Sequence[Sequence[float]], shape: tuple[int, int]) -> np.ndarray:
    """(N, H, W) bool: each detector box's head ellipse, the area another face's context never
    covers in :func:`paste_back`."""
    out = np.zeros((len(boxes), *shape[:2]), np.uint8)
    for area, box in zip(out, boxes):
        _draw_heads(area, [box])
    return out > 0


def _context_weight(size: int) -> np.ndarray:
    """(size, size) float32: 1 inside the context ellipse, fading to 0 at its edge."""
    yx = (np.arange(size, dtype=np.float32) + 0.5) / size
    dy = (yx[:, None] - CONTEXT_CENTRE[1]) / CONTEXT_AXES[1]
    dx = (yx[None, :] - CONTEXT_CENTRE[0]) / CONTEXT_AXES[0]
    r = np.sqrt(dx * dx + dy * dy)  # 1 on the ellipse
    fade = CONTEXT_FADE / min(CONTEXT_AXES)
    t = np.clip((1.0 - r) / fade, 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)  # smoothstep: no visible ring


def _square_roi(matrix: np.ndarray, size: int, shape: tuple[int, int], pad: float):
    """(x0, y0, x1, y1) of the photo that the aligned square maps onto, grown by ``pad``."""
    a = np.vstack([np.asarray(matrix, np.float64), [0, 0, 1]])
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64)
    xy = (np.linalg.inv(a) @ corners.T)[:2].T
    h, w = shape[:2]
    x0, y0 = np.floor(xy.min(0) - pad).astype(int)
    x1, y1 = np.ceil(xy.max(0) + pad).astype(int) + 1
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def paste_back(
    photo: np.ndarray,
    faces: Sequence[Any],
    portraits: Sequence[np.ndarray],
    feather: float = 8.0,
    protect: Sequence[Sequence[float]] = (),
) -> np.ndarray:
    """The photo with each face's hallucinated context pasted back where it came from.

    Only generated pixels go in, in a soft ellipse around each face (no tilted square), and never
    on another face: the head area of every other detected face (:func:`face_areas` of its
    box, the faces' own and ``protect``) keeps the photo's pixels, with a ``feather`` (aligned
    pixels) wide fade around it. The face hulls keep the photo's full-resolution pixels. Faces are
    pasted smallest first, so the largest is on top where two contexts meet. A face the detector
    did not find cannot be protected.

    Args:
        photo: (H, W, 3) uint8 RGB.
        faces: ``AlignedFace`` items (``matrix``, ``mask``, ``valid``, ``box``) of the photo.
        portraits: (S, S, 3) uint8 hallucinated portraits, one per face.
        feather: width of the fade around other faces' areas, in aligned pixels.
        protect: more detector boxes (x0, y0, x1, y1) whose faces were not pasted (e.g. left
            out by ``faces=largest``) but must not be covered either.
    """
    import cv2

    from facectx.faces.align import matrix_scale, warp_to_source

    shape = photo.shape[:2]
    boxes = list(
        dict.fromkeys(tuple(float(v) for v in b) for b in [f.box for f in faces] + list(protect))
    )
    out = photo.astype(np.float32)
    hulls = np.zeros(shape, bool)
    for face, portrait in reversed(list(zip(faces, portraits, strict=True))):
        size = portrait.shape[0]
        m = np.asarray(face.matrix, np.float64)
        px = 1.0 / matrix_scale(m)  # photo pixels per aligned pixel
        ramp = max(1.0, feather * px)
        x0, y0, x1, y1 = _square_roi(m, size, shape, ramp + 2)
        if x1 <= x0 or y1 <= y0:
            continue
        roi = (y1 - y0, x1 - x0)
        shifted = m.copy()
        shifted[:, 2] += m[:, :2] @ [x0, y0]  # the same map, for the ROI's pixels
        keep = (face.mask * face.valid) > 0
        # 0 on the hull, rising over HULL_FADE aligned px: the seam the portrait has there
        # (a sharp photo face beside soft generated context) is blended, not cut
        to_hull = cv2.distanceTransform((~keep).astype(np.uint8), cv2.DIST_L2, 5)
        weight = np.clip(to_hull / HULL_FADE, 0.0, 1.0) * _context_weight(size) * face.valid
        alpha = warp_to_source(weight.astype(np.float32), shifted, roi)
        own = tuple(float(v) for v in face.box)
        others = np.zeros(roi, np.uint8)
        _draw_heads(others, [b for b in boxes if b != own], offset=(x0, y0))
        if others.any():  # 0 on other faces, rising to 1 over `ramp` photo pixels
            dist = cv2.distanceTransform((others == 0).astype(np.uint8), cv2.DIST_L2, 5)
            alpha *= np.clip(dist / ramp, 0.0, 1.0)
        inside = alpha > 0
        if inside.any():
            filled = warp_to_source(portrait, shifted, roi).astype(np.float32)
            a = alpha[inside][:, None]
            view = out[y0:y1, x0:x1]
            view[inside] = (1.0 - a) * view[inside] + a * filled[inside]
        hull = warp_to_source(keep.astype(np.uint8) * 255, shifted, roi) >= 128
        hulls[y0:y1, x0:x1] |= hull
    pasted = np.clip(np.round(out), 0, 255).astype(np.uint8)
    pasted[hulls] = photo[hulls]  # a face is never covered by another face's context
    return pasted


def drawn_hole(editor: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """The hole a user painted (any non-transparent layer pixel) as an (H, W) bool array of the
    photo's ``shape``, from a ``gr.ImageEditor`` value (``{"layers": [RGBA arrays], ...}``) or
    a plain array; None when nothing was drawn."""
    import cv2

    if editor is None:
        return None
    layers = (editor.get("layers") or []) if isinstance(editor, dict) else [editor]
    hole = None
    for layer in layers:
        if layer is None:
            continue
        a = np.asarray(layer)
        painted = a[..., 3] > 0 if a.ndim == 3 and a.shape[2] == 4 else a.reshape(a.shape[:2]) > 0
        hole = painted if hole is None or hole.shape != painted.shape else hole | painted
    if hole is None or not hole.any():
        return None
    if hole.shape != tuple(shape[:2]):
        h, w = shape[:2]
        hole = cv2.resize(hole.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    return hole


@dataclass
class HallucinatedFace:
    """One face of a photo, in the model's aligned frame (all (S, S, 3) uint8 but ``keep``)."""

    aligned: np.ndarray  # the aligned photo crop
    keep: np.ndarray  # (S, S) uint8 {0, 1}: the face hull the generator kept
    masked: np.ndarray  # the generator's input: black outside ``keep``
    portrait: np.ndarray  # with hallucinated context; equal to ``aligned`` on ``keep``
    background: np.ndarray | None = None  # the portrait on the user's background
    # samples > 1: the K portraits the model gave (``portrait`` is the first); else empty
    candidates: list[np.ndarray] = field(default_factory=list)


@dataclass
class Hallucinated:
    """What the Hallucinate tab shows for one photo."""

    photo: np.ndarray  # (H, W, 3) uint8, as uploaded (upright)
    faces: list[HallucinatedFace]
    # (H, W, 3) uint8: the portraits' context pasted back into the photo; None for a model
    # that does not paste back (``PortraitModel.pastes_back``)
    pasted: np.ndarray | None
    dropped: int = 0  # faces found but left out by faces=largest
    found: int = 0  # faces found large enough to use (shown or left out)
    missed: str = ""  # why the detector may have missed faces ("" = no sign of it)
    retry: tuple[str, ...] = ()  # overrides that look harder (PrepareResult.retry)


@dataclass
class Inpainted:
    """What the Inpaint tab shows for one photo."""

    photo: np.ndarray  # (H, W, 3) uint8 input
    image: np.ndarray  # (H, W, 3) uint8 result at full resolution
    hole: np.ndarray  # (H, W) bool: the only pixels that changed
    panels: list[np.ndarray] = field(default_factory=list)  # per face: masked|X̂|ref|Y_sp|out


@dataclass
class SavedFiles:
    """Files of one result, for the page and the download: paths in its run folder."""

    folder: Path
    images: dict[str, Path]
    zip: Path


class Demo:
    """The models behind the page, and photo -> result functions (no gradio here).

    Args:
        hallucinator: a ``facectx.inference.Hallucinator`` (or any ``PortraitModel``: with
            the exemplar model the page offers several portraits per face).
        inpainter: a ``facectx.inference.Inpainter`` or None (the Inpaint tab then says how to
            get a checkpoint).
        detector, faces: the options the page starts with; ``detector`` must be able to run
            here (:func:`facectx.faces.detect.detector_problem`), ValueError otherwise.
        work_dir: where result files go (a new temporary folder when None).
        upsample: HOG detector doublings (finds faces down to ~40 px at 1).
    """

    def __init__(
        self,
        hallucinator,
        inpainter=None,
        detector: str = "hog",
        faces: str = "all",
        work_dir: str | os.PathLike | None = None,
        upsample: int = 1,
    ) -> None:
        import tempfile

        from facectx.faces.detect import detector_problem

        if detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {detector!r}")
        #: why each detector that cannot run here cannot (missing package or weights)
        self.unavailable = {n: p for n in DETECTORS if (p := detector_problem(n)) is not None}
        #: the detectors the page offers: those that can run here
        self.detectors = tuple(n for n in DETECTORS if n not in self.unavailable)
        if detector in self.unavailable:
            raise ValueError(f"detector={detector} cannot run here: {self.unavailable[detector]}")
        if faces not in FACE_CHOICES:
            raise ValueError(f"faces must be one of {FACE_CHOICES}, got {faces!r}")
        self.hallucinator = hallucinator
        self.inpainter = inpainter
        self.detector = detector
        self.faces = faces
        self.upsample = int(upsample)
        self._owns_work_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="facectx-app-")).resolve()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._preparers: dict[tuple, Any] = {}
        self._lock = threading.Lock()  # dlib and the models are used by one request at a time
        self._runs = 0

    def close(self) -> None:
        """Remove the result files (the work folder, when the demo created it)."""
        import shutil

        if self._owns_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    # ---- face preparation ---------------------------------------------------------------
    def preparer(self, size: int, frame: dict | None, detector: str, faces: str):
        """A cached ``FacePreparer`` into a model's frame; AppError if the detector is absent."""
        from facectx.faces import CanonicalFrame
        from facectx.faces.pipeline import FacePreparer

        if detector not in self.detectors:
            why = (
                f"cannot run here: {self.unavailable[detector]}"
                if detector in self.unavailable
                else "is unknown"
            )
            raise AppError(
                f"The detector {detector!r} {why}; choose {' or '.join(self.detectors)}."
            )
        if faces not in FACE_CHOICES:
            raise AppError(f"Unknown faces option {faces!r}: choose all or largest.")
        canonical = CanonicalFrame.from_record(size, frame)
        key = (canonical, detector, faces)
        if key not in self._preparers:
            try:
                self._preparers[key] = FacePreparer(
                    canonical,
                    detector=detector,
                    faces=faces,
                    upsample=self.upsample,
                )
            except (ImportError, FileNotFoundError, RuntimeError) as e:
                raise AppError(
                    f"The {detector} detector is not available here ({e}); use hog."
                ) from e
        return self._preparers[key]

    def find_faces(self, image: np.ndarray, preparer, what: str = "the photo"):
        """``preparer.run(image)``; AppError with the reason when no face qualifies."""
        result = preparer.run(image)
        if not result.faces:
            raise AppError(_no_face_message(result.reason, result.detail, what))
        return result

    # ---- hallucinate -----------------------------------------------------------------------
    def hallucinate(
        self,
        photo: str | os.PathLike | np.ndarray | None,
        faces: str | None = None,
        detector: str | None = None,
        background: str | os.PathLike | np.ndarray | None = None,
        progress: ProgressFn | None = None,
        samples: int = 1,
    ) -> Hallucinated:
        """Photo in: every face aligned and masked, with hallucinated context, optionally on a
        new ``background``, and the photo with the context pasted back (models whose
        ``pastes_back`` is True; else ``pasted`` is None). ``samples`` K > 1 (a model that
        gives several, at most :data:`MAX_SAMPLES`): K portraits per face, the first one shown
        on the background and pasted back."""
        from facectx.segment import replace_background

        model = self.hallucinator
        samples = int(samples)
        if not 1 <= samples <= MAX_SAMPLES or (samples > 1 and not model.sampling):
            most = MAX_SAMPLES if model.sampling else 1
            raise AppError(f"This model gives 1 to {most} portraits per face, not {samples}.")
        step = progress or (lambda fraction, desc: None)
        step(0.0, "Reading the photo")
        image = read_photo(photo, "the photo")
        bg = None if background is None else read_photo(background, "the background image")
        with self._lock:
            step(0.1, "Detecting faces and landmarks")
            preparer = self.preparer(
                model.size, model.frame, detector or self.detector, faces or self.faces
            )
            found = self.find_faces(image, preparer)
            step(0.5, f"Hallucinating context for {len(found.faces)} face(s)")
            keeps = [(f.mask * f.valid).astype(np.uint8) for f in found.faces]
            outs = model.hallucinate_uint8(
                [f.image for f in found.faces],
                keeps,
                landmarks=[f.landmarks for f in found.faces],
                valid=[f.valid for f in found.faces],
                samples=samples,
            )
        portraits = outs[:, 0] if samples > 1 else outs
        results = [
            HallucinatedFace(f.image, k, masked_face(f.image, k), p)
            for f, k, p in zip(found.faces, keeps, portraits, strict=True)
        ]
        if samples > 1:
            for r, several in zip(results, outs, strict=True):
                r.candidates = list(several)
        if bg is not None:
            step(0.7, "Replacing the background")
            for r in results:
                r.background = replace_background(r.portrait, r.keep, bg).image
        pasted = None
        if model.pastes_back:
            step(0.85, "Pasting the results back into the photo")
            boxes = [d.box for d in found.detections]  # no context covers another found face
            pasted = paste_back(image, found.faces, list(portraits), protect=boxes)
        return Hallucinated(
            image, results, pasted, found.dropped, found.found, found.missed, found.retry
        )

    def status(self, result: Hallucinated) -> str:
        """The line shown above a result: faces found, and when the detector may have missed
        some, what to try with this page's detectors and the app's options."""
        n = len(result.faces)
        if result.dropped:
            text = f"{result.found} faces found; the largest shown (faces=largest)."
        else:
            text = "1 face found." if n == 1 else f"{n} faces found, largest first."
        if result.missed:
            tries = []
            if "detector=mtcnn" in result.retry and "mtcnn" in self.detectors:
                tries.append("try the mtcnn detector")
            tries += [f"start the app with {r}" for r in result.retry if r.startswith("upsample")]
            text += f" The detector may have missed faces ({result.missed})"
            text += f"; {', or '.join(tries)}." if tries else "."
        h, w = result.photo.shape[:2]
        size = result.faces[0].portrait.shape[0]
        k = len(result.faces[0].candidates)
        text += f" Portraits are {size} px; the photo is {w}×{h}."
        if result.pasted is None:
            text += f" {k} portraits per face." if k > 1 else ""
            return text + " " + NO_PASTE
        return text + (f" {k} portraits per face (the first is pasted back)." if k > 1 else "")

    # ---- inpaint ---------------------------------------------------------------------------
    def inpaint(
        self,
        photo: str | os.PathLike | np.ndarray | None,
        reference: str | os.PathLike | np.ndarray | None,
        mask: str = "facial",
        drawn: Any = None,
        detector: str | None = None,
        faces: str = "largest",
        seed: int = 0,
        progress: ProgressFn | None = None,
    ) -> Inpainted:
        """Fill a hole in the photo's face(s) with the identity of the reference's largest face.

        ``mask``: facial | ocular | center | irregular | drawn (then ``drawn`` is the editor's
        value or an (H, W) array; its painted pixels are the hole).
        """
        from facectx.inference import InpaintError

        if self.inpainter is None:
            raise AppError(NO_INPAINT)
        if mask not in INPAINT_MASKS:
            raise AppError(f"Unknown mask {mask!r}: choose one of {', '.join(INPAINT_MASKS)}.")
        step = progress or (lambda fraction, desc: None)
        step(0.0, "Reading the photos")
        image = read_photo(photo, "the photo")
        ref = read_photo(reference, "the reference photo")
        spec: Any = mask
        if mask == "drawn":
            spec = drawn_hole(drawn, image.shape[:2])
            if spec is None:
                raise AppError(
                    "Mask 'drawn': paint the region to fill over the photo with the brush first."
                )
        elif mask == "irregular":
            from facectx.masks import IrregularMask

            spec = IrregularMask()
        model = self.inpainter
        with self._lock:
            step(0.1, "Detecting the faces")
            preparer = self.preparer(model.size, None, detector or self.detector, faces)
            # the reference first: its errors name it before the photo is processed
            res = preparer.run(ref)
            if not res.faces:
                raise AppError(_no_face_message(res.reason, res.detail, "the reference photo"))
            step(0.4, "Inpainting")
            try:
                out = model.inpaint_photo(
                    image,
                    res.faces[0].image,
                    spec,
                    preparer=preparer,
                    reference_aligned=True,
                    seed=seed,
                )
            except InpaintError as e:
                raise AppError(_no_face_message(e.reason, e.detail, "the photo")) from e
        return Inpainted(image, out.image, out.hole, [f.panel() for f in out.faces])

    # ---- files -----------------------------------------------------------------------------
    def _run_folder(self, kind: str) -> Path:
        """A new folder for one result; the oldest beyond :data:`KEEP_RUNS` are deleted."""
        import shutil

        self._runs += 1
        folder = self.work_dir / f"{self._runs:05d}-{kind}"
        folder.mkdir(parents=True)
        runs = sorted(p for p in self.work_dir.iterdir() if p.is_dir())
        for old in runs[:-KEEP_RUNS]:
            shutil.rmtree(old, ignore_errors=True)
        return folder

    def save_hallucinated(self, result: Hallucinated) -> SavedFiles:
        """PNG files of a result (face<i>_masked/portrait/mask/background.png, with several
        samples face<i>_sample<j>.png, pasted.png when the model pastes back) and a zip of
        them all."""
        images: dict[str, Path] = {}
        for i, f in enumerate(result.faces, 1):
            images[f"face{i}_aligned"] = f.aligned
            images[f"face{i}_masked"] = f.masked
            images[f"face{i}_mask"] = f.keep * 255
            images[f"face{i}_portrait"] = f.portrait
            for j, candidate in enumerate(f.candidates):
                images[f"face{i}_sample{j}"] = candidate
            if f.background is not None:
                images[f"face{i}_background"] = f.background
        if result.pasted is not None:
            images["pasted"] = result.pasted
        return _save(self._run_folder("hallucinate"), images, "facectx_hallucinated.zip")

    def save_inpainted(self, result: Inpainted) -> SavedFiles:
        """inpainted.png (full resolution), hole.png, face<i>_panel.png and a zip of them."""
        images: dict[str, Any] = {
            "inpainted": result.image,
            "hole": result.hole.astype(np.uint8) * 255,
        }
        for i, panel in enumerate(result.panels, 1):
            images[f"face{i}_panel"] = panel
        return _save(self._run_folder("inpaint"), images, "facectx_inpainted.zip")


def _save(folder: Path, images: dict[str, np.ndarray], zip_name: str) -> SavedFiles:
    from facectx.faces.io import encode_png

    paths: dict[str, Path] = {}
    with zipfile.ZipFile(folder / zip_name, "w", zipfile.ZIP_STORED) as z:
        for name, image in images.items():
            data = encode_png(np.ascontiguousarray(image, dtype=np.uint8), compression=1)
            paths[name] = folder / f"{name}.png"
            paths[name].write_bytes(data)
            z.writestr(f"{name}.png", data)
    return SavedFiles(folder, paths, folder / zip_name)


def example_photos() -> list[Path]:
    """The example photos offered on the page: faces of the embedded LFW sample."""
    from facectx.assets import sample_root

    root = sample_root() / "images"
    return [root / name for name in EXAMPLES if (root / name).is_file()]
