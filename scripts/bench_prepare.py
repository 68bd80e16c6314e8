"""Throughput of face preparation (detect -> landmarks -> align -> write) on LFW crops.

    python scripts/bench_prepare.py [--n 500] [--workers 2] [--data ../shared/data]

Runs ``facectx.prepare.prepare_folder`` on the first N LFW images (sorted) into a temporary
folder and prints img/s for: HOG + dlib with N workers, the same in one process, MTCNN + dlib,
and FAN (S3FD + 2D-FAN-4) when its weights are on disk (else says why it was skipped).

Three numbers per run: wall-clock img/s over the whole run, wall-clock img/s after start-up
(process spawn and model loading), and the CPU time per photo measured inside the workers,
turned into the img/s the same number of otherwise idle cores would give. On a shared machine
the wall-clock numbers move with other people's jobs; the CPU-time figure barely does. The
load average is printed so readers can tell which case they are looking at.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from facectx.faces.landmarks import FanLandmarker, MissingWeightsError, torch_hub_checkpoint
from facectx.faces.pipeline import PreparerSpec
from facectx.prepare import prepare_folder

REPO = Path(__file__).resolve().parents[1]


def default_data() -> Path:
    env = os.environ.get("FACECTX_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def bench(name: str, images: Path, spec: PreparerSpec, n: int, workers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="facectx-bench-") as out:
        s = prepare_folder(images, out, spec=spec, workers=workers, limit=n, progress=False)
    cores = max(1, workers)
    print(
        f"{name:<30} {s.photos:>4} img {s.faces:>4} faces | wall {s.seconds:5.1f} s: "
        f"{s.photos_per_second:6.1f} img/s, after start-up ({s.startup_seconds:.1f} s) "
        f"{s.steady_photos_per_second:6.1f} img/s | CPU {1000 / s.photos_per_cpu_second:5.1f} ms/img"
        f" -> {cores * s.photos_per_cpu_second:6.1f} img/s on {cores} idle core(s)",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=500, help="LFW images for the HOG runs")
    ap.add_argument("--n-slow", type=int, default=100, help="images for the MTCNN and FAN runs")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data", type=Path, default=default_data(), help="shared data root")
    args = ap.parse_args()

    images = args.data / "lfw" / "images"
    if not images.is_dir():
        raise SystemExit(
            f"LFW images not found at {images}; pass --data or set FACECTX_SHARED_DATA"
        )
    load = os.getloadavg()
    print(f"cpus {os.cpu_count()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    hog = PreparerSpec(detector="hog", landmarker="dlib", upsample=1)
    bench(f"hog+dlib, {args.workers} workers", images, hog, args.n, args.workers)
    bench("hog+dlib, 1 process", images, hog, args.n, 1)
    bench(
        f"mtcnn+dlib, {args.workers} workers",
        images,
        PreparerSpec(detector="mtcnn", landmarker="dlib"),
        args.n_slow,
        args.workers,
    )
    try:
        torch_hub_checkpoint(FanLandmarker.WEIGHTS, FanLandmarker.URL, "FAN landmarks")
        torch_hub_checkpoint("s3fd-619a316812.pth", "", "S3FD detector")
    except MissingWeightsError as e:
        print(f"{'fan (s3fd+2DFAN4)':<34} skipped: {e}")
    else:
        bench(
            f"fan (s3fd+2DFAN4), {args.workers} workers",
            images,
            PreparerSpec(detector="fan", landmarker="fan"),
            args.n_slow,
            args.workers,
        )


if __name__ == "__main__":
    main()
