"""Landmark-based structure metrics: head-pose error and expression error between two faces.

Both take iBUG-68 landmarks ((68, 2) or (N, 68, 2), (x, y) pixels) of two images of the same
face (e.g. the original and a method's output) and compare their geometry. They stand in for
SwapInpaint's HopeNet pose and FAN expression comparisons, with networks that work offline.

**Head pose** (``head_pose``): yaw, pitch and roll in degrees from ``cv2.solvePnP`` (iterative
Levenberg-Marquardt, started from a frontal, upright face) fitting ``GENERIC_FACE_3D`` (ten
points of a generic face, millimetres, our own approximate anthropometric averages) to the
matching 2-D landmarks, with a pinhole camera of focal length ``image_size`` px and principal
point at the image centre ((S - 1) / 2), no distortion. With R the fitted rotation in OpenCV
camera axes (x right, y down, z forward), R = Rz(roll) Ry(yaw) Rx(pitch), i.e.
pitch = atan2(R21, R22), yaw = asin(-R20), roll = atan2(R10, R00); (0, 0, 0) is a frontal,
upright face. Absolute angles carry the generic model's bias; differences between two
estimates of the same face largely cancel it.

**Pose error** (``pose_error``): the mean over (yaw, pitch, roll) of the absolute angle
difference in degrees (wrapped to [-180, 180)).

**Expression error** (``expression_error``): the second face's landmarks are mapped onto the
first's by the least-squares similarity (rotation, one scale, translation; Umeyama) fitted on
the rigid ``ANCHOR_POINTS`` (nose bridge and base, the four eye corners); then the mean
Euclidean distance over ``EXPRESSION_POINTS`` (brows, eyes, mouth), divided by the first
face's inter-ocular distance (between the two eye centres, means of 36-41 and 42-47). So 0.05
means the expression points moved 5 % of the eye distance on average.

``CanonicalLandmarks`` finds the 68 landmarks on canonical aligned frames (dlib HOG box, dlib
shape predictor), with one box per face used for both images being compared.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# iBUG-68 index -> (x, y, z) mm; x to the image right, y up, z towards the camera; origin at the
# nose tip. Image-left points (the subject's right side, e.g. 36) have x < 0.
GENERIC_FACE_3D: dict[int, tuple[float, float, float]] = {
    8: (0.0, -72.0, -26.0),  # chin (gnathion)
    27: (0.0, 38.0, -22.0),  # top of the nose bridge (nasion)
    30: (0.0, 0.0, 0.0),  # nose tip (pronasale)
    33: (0.0, -12.0, -16.0),  # nose base (subnasale)
    36: (-44.0, 34.0, -34.0),  # outer corner, image-left eye
    39: (-15.0, 33.0, -28.0),  # inner corner, image-left eye
    42: (15.0, 33.0, -28.0),  # inner corner, image-right eye
    45: (44.0, 34.0, -34.0),  # outer corner, image-right eye
    48: (-25.0, -32.0, -30.0),  # mouth corner, image left
    54: (25.0, -32.0, -30.0),  # mouth corner, image right
}
ANCHOR_POINTS: tuple[int, ...] = (27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45)
EXPRESSION_POINTS: tuple[int, ...] = (
    tuple(range(17, 27)) + tuple(range(36, 48)) + tuple(range(48, 68))
)


def _batch(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim == 2:
        lm = lm[None]
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ValueError(f"expected (68, 2) or (N, 68, 2) landmarks, got {lm.shape}")
    return lm


def _euler(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) degrees of R = Rz(roll) Ry(yaw) Rx(pitch)."""
    pitch = np.arctan2(rot[2, 1], rot[2, 2])
    yaw = np.arcsin(np.clip(-rot[2, 0], -1.0, 1.0))
    roll = np.arctan2(rot[1, 0], rot[0, 0])
    return tuple(float(np.degrees(a)) for a in (yaw, pitch, roll))


def head_pose(landmarks: np.ndarray, image_size: float) -> np.ndarray:
    """(N, 3) yaw, pitch, roll in degrees (NaN where the fit fails); see the module docstring."""
    import cv2

    lm = _batch(landmarks)
    idx = list(GENERIC_FACE_3D)
    model = np.array([GENERIC_FACE_3D[i] for i in idx], dtype=np.float64)
    model_cam = model * np.array([1.0, -1.0, -1.0])  # y up / z to camera -> OpenCV camera axes
    f, c = float(image_size), (float(image_size) - 1.0) / 2.0
    camera = np.array([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]])
    eye_width_mm = float(np.linalg.norm(model[idx.index(45)] - model[idx.index(36)]))
    out = np.full((len(lm), 3), np.nan)
    for n, pts in enumerate(lm):
        image_pts = pts[idx]
        if not np.isfinite(image_pts).all():
            continue
        eye_px = float(np.linalg.norm(pts[45] - pts[36]))
        if eye_px < 1e-6:
            continue
        rvec = np.zeros((3, 1))
        tvec = np.array([[0.0], [0.0], [f * eye_width_mm / eye_px]])
        ok, rvec, tvec = cv2.solvePnP(
            model_cam,
            image_pts,
            camera,
            None,
            rvec=rvec,
            tvec=tvec,
            useExtrinsicGuess=True,
            flags=cv2.SOLVEPNP_ITERATIVE,
        )
        if ok:
            out[n] = _euler(cv2.Rodrigues(rvec)[0])
    return out


def _wrap(deg: np.ndarray) -> np.ndarray:
    return (deg + 180.0) % 360.0 - 180.0


def pose_difference(a: np.ndarray, b: np.ndarray, image_size: float) -> np.ndarray:
    """(N, 3) absolute yaw, pitch, roll differences in degrees between two landmark sets."""
    return np.abs(_wrap(head_pose(a, image_size) - head_pose(b, image_size)))


def pose_error(a: np.ndarray, b: np.ndarray, image_size: float) -> np.ndarray:
    """(N,) mean absolute yaw/pitch/roll difference in degrees (NaN where a fit failed)."""
    return pose_difference(a, b, image_size).mean(1)


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (no reflection) taking (K, 2) ``src`` onto ``dst`` (Umeyama)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    flip = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ flip @ vt
    var = (s**2).sum() / len(src)
    scale = float((sig * np.diag(flip)).sum() / var) if var > 0 else 1.0
    return np.hstack([scale * rot, (md - scale * rot @ ms)[:, None]])


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """(N,) distance between the eye centres (means of 36-41 and 42-47)."""
    lm = _batch(landmarks)
    return np.linalg.norm(lm[:, 36:42].mean(1) - lm[:, 42:48].mean(1), axis=1)


def expression_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) mean distance of brow/eye/mouth points of ``b`` aligned onto ``a``, / a's eye distance."""
    la, lb = _batch(a), _batch(b)
    if la.shape != lb.shape:
        raise ValueError(f"landmark batches differ in shape: {la.shape} vs {lb.shape}")
    iod = inter_ocular(la)
    out = np.full(len(la), np.nan)
    anchors, expr = list(ANCHOR_POINTS), list(EXPRESSION_POINTS)
    for n in range(len(la)):
        if not (np.isfinite(la[n]).all() and np.isfinite(lb[n]).all()) or iod[n] <= 0:
            continue
        m = similarity_fit(lb[n, anchors], la[n, anchors])
        moved = lb[n, expr] @ m[:, :2].T + m[:, 2]
        out[n] = np.linalg.norm(moved - la[n, expr], axis=1).mean() / iod[n]
    return out


# dlib HOG box relative to the bounding box of the 68 landmarks on canonical 128 px frames
# (median over the 203 faces of the embedded sample): x0, y0 offsets in box widths/heights,
# then width and height ratios. Used only when HOG finds no face.
_HOG_VS_LANDMARK_BOX = (-0.074, -0.182, 1.094, 1.110)


class CanonicalLandmarks:
    """68 landmarks on canonical frames with dlib, one fixed box per face.

    ``box(image, prior)`` finds the face box once (largest dlib HOG detection; if none, a box
    derived from ``prior`` landmarks, e.g. the stored ones); ``__call__(image, box)`` runs the
    shape predictor in that box. Using one box for an original and its generated versions means
    landmark differences come from the pixels, not from the detector.

    Args:
        upsample: HOG image doublings (1 finds the ~35 px-eye-distance faces of a 128 px frame).
    """

    def __init__(self, upsample: int = 1) -> None:
        from facectx.faces.detect import DlibHogDetector
        from facectx.faces.landmarks import DlibLandmarker

        self._detector = DlibHogDetector(upsample=upsample)
        self._landmarker = DlibLandmarker()

    def box(
        self, image: np.ndarray, prior: np.ndarray | None = None
    ) -> tuple[float, float, float, float] | None:
        dets = self._detector(np.ascontiguousarray(image))
        if dets:
            return max(dets, key=lambda d: d.area).box
        if prior is None:
            return None
        lm = np.asarray(prior, np.float64)
        (x0, y0), (x1, y1) = lm.min(0), lm.max(0)
        w, h = x1 - x0, y1 - y0
        ox, oy, sw, sh = _HOG_VS_LANDMARK_BOX
        return (x0 + ox * w, y0 + oy * h, x0 + ox * w + sw * w, y0 + oy * h + sh * h)

    def __call__(self, image: np.ndarray, box: Sequence[float]) -> np.ndarray:
        """(68, 2) float32 landmarks of ``image`` (H, W, 3 uint8 RGB) inside ``box``."""
        return self._landmarker(np.ascontiguousarray(image), [tuple(box)])[0]


__all__ = [
    "ANCHOR_POINTS",
    "EXPRESSION_POINTS",
    "GENERIC_FACE_3D",
    "CanonicalLandmarks",
    "expression_error",
    "head_pose",
    "inter_ocular",
    "pose_difference",
    "pose_error",
    "similarity_fit",
]
