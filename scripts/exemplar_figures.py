"""Figures of the exemplar portrait model (``exemplar-lfw-128``) for the docs (docs/img/).

    .venv/bin/python scripts/exemplar_figures.py lfw --root /work/data/lfw_prepared \
        --cache /work/data/cache                 # results_exemplar_k4.jpg, _compare.jpg
    .venv/bin/python scripts/exemplar_figures.py wild --photos /work/shared/data/wild/photos
    .venv/bin/python scripts/exemplar_figures.py app --photos /work/shared/data/wild/photos

``lfw``: K=4 samples of 8 test faces (every 100th), and 10 test faces (every 89th) through
nearest_neighbour | lfw-128 (cascade) | exemplar-lfw-128 (sample 0); kept pixels = stored hull
x valid, as in the demo. ``wild``: 8 wild photos through ``prepare_photo`` (HOG) and
``hallucinate_uint8(samples=3)``, the demo's path, every face of each photo. ``app``:
``python -m facectx.app port=0`` driven by headless Chromium: 2 photos with the samples slider
at 4, a screenshot each (``app_exemplar_samples.png``: one above the other, 3/5 size).
Everything runs on the CPU with one torch thread; nothing from the photos is kept but figures.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "docs" / "img"
WILD = [
    "couple.jpg",
    "img3.jpg",
    "img15.jpg",
    "img20.jpg",
    "img24.jpg",
    "img42.jpg",
    "img49.jpg",
    "img62.jpg",
]
APP_PHOTOS = ["couple.jpg", "img24.jpg"]
WIDTH = 1600  # browser window px: the 8 portraits of the couple fit in one gallery row


def grid(
    rows: list[list[np.ndarray]],
    header: list[str],
    labels: list[str] | None = None,
    gap: int = 2,
    label_w: int = 0,
) -> Image.Image:
    """(S, S, 3) uint8 cells in rows under a header of column names; optional row labels in a
    left strip ``label_w`` px wide."""
    s = rows[0][0].shape[0]
    head = 14
    w = label_w + len(header) * (s + gap) - gap
    h = head + len(rows) * (s + gap) - gap
    sheet = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(header):
        draw.text((label_w + c * (s + gap) + 2, 1), name, fill="black")
    for r, row in enumerate(rows):
        y = head + r * (s + gap)
        if labels:
            for i, part in enumerate(labels[r].split("\n")):
                draw.text((2, y + 2 + 12 * i), part, fill="black")
        for c, cell in enumerate(row):
            sheet.paste(Image.fromarray(cell), (label_w + c * (s + gap), y))
    return sheet


def save(sheet: Image.Image, name: str, quality: int = 88) -> None:
    path = OUT / name
    sheet.save(path, quality=quality, optimize=True)
    print(f"{path} {sheet.size[0]}x{sheet.size[1]} {path.stat().st_size // 1024} KB")


def lfw(a) -> None:
    from facectx import Hallucinator
    from facectx.data.datasets import PreparedFaces
    from facectx.evaluation.baselines import NearestNeighbour
    from facectx.masks.ops import apply_mask
    from facectx.pixels import to_uint8

    faces = PreparedFaces(a.root, split="test")
    ex = Hallucinator.from_pretrained("exemplar-lfw-128")
    cascade = Hallucinator.from_pretrained("lfw-128")

    def batch(idx):
        items = [faces[i] for i in idx]
        b = {
            k: torch.stack([x[k] for x in items])
            for k in ("image", "mask", "masked", "valid", "landmarks")
        }
        # keep = hull x valid, as the demo and hallucinate_photo do (the hull beyond the photo's
        # edge is filled, not kept black)
        b["mask"] = b["mask"] * b["valid"]
        b["masked"] = apply_mask(b["image"], b["mask"])
        b["id"] = [x["id"] for x in items]
        b["person_name"] = [faces.rows[i].get("person", "") for i in idx]
        return b

    def run(model, b, k=1):
        return to_uint8(
            model(b["masked"], b["mask"], landmarks=b["landmarks"], valid=b["valid"], samples=k)
        )

    idx = list(range(0, len(faces), 100))[:8]
    b = batch(idx)
    outs = run(ex, b, 4)  # (B, K, S, S, 3)
    rows = [[to_uint8(b["masked"][i]), *outs[i], to_uint8(b["image"][i])] for i in range(len(idx))]
    save(
        grid(rows, ["input", "sample 0", "sample 1", "sample 2", "sample 3", "original"]),
        "results_exemplar_k4.jpg",
    )
    print("k4 faces:", ", ".join(b["id"]))

    nn = NearestNeighbour(train_root=a.root, train_split="train", cache_dir=a.cache)
    nn.setup(faces.size, torch.device("cpu"))
    idx = list(range(0, len(faces), 89))[:10]
    b = batch(idx)
    pred = nn.predict(b)
    cols = [
        to_uint8(b["masked"]),
        to_uint8(pred.images),
        run(cascade, b),
        run(ex, b),
        to_uint8(b["image"]),
    ]
    rows = [[c[i] for c in cols] for i in range(len(idx))]
    save(
        grid(
            rows,
            ["input", "nearest_neighbour", "lfw-128 (cascade)", "exemplar-lfw-128", "original"],
        ),
        "results_exemplar_compare.jpg",
    )
    print("compare faces:", ", ".join(b["id"]))
    print("nn:", "; ".join(pred.notes))


def wild(a) -> None:
    from facectx import Hallucinator

    model = Hallucinator.from_pretrained()  # the default: exemplar-lfw-128
    rows, labels = [], []
    for name in WILD:
        found = model.prepare_photo(Path(a.photos) / name)  # faces="all", detector="hog"
        if not found:
            print(f"{name}: no face found")
            continue
        keeps = [(f.mask * f.valid).astype(np.uint8) for f in found]
        outs = model.hallucinate_uint8(
            [f.image for f in found],
            keeps,
            landmarks=[f.landmarks for f in found],
            valid=[f.valid for f in found],
            samples=3,
        )
        for j, (f, k, o) in enumerate(zip(found, keeps, outs, strict=True)):
            rows.append([f.image, f.image * k[..., None], *o])
            labels.append(name + (f"\nface {j + 1}/{len(found)}" if len(found) > 1 else ""))
        print(f"{name}: {len(found)} face(s)")
    header = ["aligned photo", "input (masked)", "sample 0", "sample 1", "sample 2"]
    save(grid(rows, header, labels, label_w=84), "results_exemplar_wild.jpg")


def app(a) -> None:
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    tmp = Path(tempfile.mkdtemp(prefix="exemplar-app-"))
    log = (tmp / "server.log").open("w")
    env = {
        **os.environ,
        "GRADIO_TEMP_DIR": str(tmp / "gradio"),
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "facectx.app", "port=0", f"paths.log_dir={tmp / 'logs'}"],
        cwd=tmp,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    driver = None
    try:
        url, deadline = None, time.monotonic() + 180
        while url is None:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp / "server.log").read_text()[-2000:])
            for line in (tmp / "server.log").read_text().splitlines():
                if "the demo page is at " in line:
                    url = line.split("the demo page is at ")[1].split()[0]
            time.sleep(0.5)
        print("server", server.pid, url)
        opts = webdriver.ChromeOptions()
        opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            f"--window-size={WIDTH},1300",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--no-first-run",
            "--disable-background-networking",
        ):
            opts.add_argument(arg)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
        shots = []
        for name in APP_PHOTOS:
            driver.get(url)
            WebDriverWait(driver, 60).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "#photo input[type=file]")
            )
            driver.find_element(By.CSS_SELECTOR, "#photo input[type=file]").send_keys(
                str(Path(a.photos) / name)
            )
            WebDriverWait(driver, 30).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "#photo img")
            )
            box = driver.find_element(By.CSS_SELECTOR, "#samples input[type=number]")
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys("4", Keys.TAB)
            time.sleep(0.5)
            rng = driver.find_element(By.CSS_SELECTOR, "#samples input[type=range]")
            print(name, "slider", rng.get_attribute("value"))
            ActionChains(driver).move_to_element(rng).perform()
            driver.find_element(By.CSS_SELECTOR, "#run-hallucinate").click()
            WebDriverWait(driver, 180).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "#faces-samples img")
            )
            time.sleep(2)
            status = driver.find_element(By.CSS_SELECTOR, "#hallucinate-status").text
            n = len(driver.find_elements(By.CSS_SELECTOR, "#faces-samples img"))
            print(name, repr(status), f"{n} sample images")
            for _ in range(2):  # the whole page in the window (it reflows once resized)
                height = driver.execute_script("return document.documentElement.scrollHeight")
                driver.set_window_size(WIDTH, min(max(height + 120, 900), 2400))
                time.sleep(1)
            path = tmp / f"{name}.png"
            driver.save_screenshot(str(path))
            shots.append(Image.open(path).convert("RGB"))
            if a.shots:  # the full-size screenshots too (outside the repo: they show the photos)
                Path(a.shots).mkdir(parents=True, exist_ok=True)
                shutil.copy(path, Path(a.shots) / f"app_{Path(name).stem}.png")
            driver.set_window_size(WIDTH, 1300)
        both = Image.new(
            "RGB", (max(s.width for s in shots), sum(s.height + 8 for s in shots)), "#888888"
        )
        y = 0
        for s in shots:  # one above the other, a grey bar between
            both.paste(s, (0, y))
            y += s.height + 8
        both = both.resize((both.width * 3 // 5, both.height * 3 // 5), Image.LANCZOS)
        small = both.quantize(256, method=Image.Quantize.MEDIANCUT)  # 256 colours: < 400 KB
        small.save(OUT / "app_exemplar_samples.png", optimize=True)
        print(
            OUT / "app_exemplar_samples.png",
            small.size,
            (OUT / "app_exemplar_samples.png").stat().st_size // 1024,
            "KB",
        )
        print((tmp / "server.log").read_text()[-1500:])
    finally:
        if driver is not None:
            driver.quit()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["lfw", "wild", "app"])
    p.add_argument("--root", default="/work/data/lfw_prepared")
    p.add_argument("--cache", default="/work/data/cache")
    p.add_argument("--photos", default="/work/shared/data/wild/photos")
    p.add_argument("--shots", default=None, help="app: also keep the full screenshots here")
    a = p.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    {"lfw": lfw, "wild": wild, "app": app}[a.what](a)
    print(f"{a.what}: {time.perf_counter() - t0:.1f} s, load {os.getloadavg()}")


if __name__ == "__main__":
    main()
