"""The web demo in a real browser: ``python -m facectx.app`` on a free local port with the
models a fresh install ships (and a second one with the cascade, ``lfw-128``), driven by
headless Chromium (Debian's ``chromium`` and ``chromium-driver`` through Selenium).

A real photo goes in and the page must show each face's 128 px portrait; with the cascade, also
the photo, at its own size, with the results pasted back (the default exemplar model has no
pasted-back view, and says so); a photo without a face must show the error sentence.
The page may request nothing from any host but the app's (Chromium also resolves no other
host). Screenshots go to tmp_path and, when FACECTX_SCREENSHOT_DIR is set, there too
(``app.png``: the docs' screenshot).

Skips when Chromium, its driver or Selenium is missing, unless FACECTX_REQUIRE_BROWSER=1 (CI),
where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from .conftest import plain_image

PHOTO = "couple.jpg"  # two faces, 2280x1588
GROUP = "selfie-many-people.jpg"  # seven people, four faces found by hog
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = ("chromedriver",)


def _which(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name) or (
            f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
        )
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser_paths() -> tuple[str, str]:
    missing = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -c constraints.txt -e '.[dev]')")
    chromium, driver = _which(CHROMIUM), _which(DRIVER)
    if chromium is None:
        missing.append("chromium (apt-get install chromium)")
    if driver is None:
        missing.append("chromedriver (apt-get install chromium-driver)")
    if missing:
        reason = "browser test needs " + ", ".join(missing)
        if os.environ.get("FACECTX_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (FACECTX_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    return chromium, driver


def _serve(root: Path, *args: str):
    """``python -m facectx.app`` with ``args`` on a free port: yields its URL once it answers,
    and its console log; stops it after."""
    from facectx.app import free_port

    port = free_port()
    env = {
        **os.environ,
        "GRADIO_TEMP_DIR": str(root / "gradio"),  # uploads and results stay in tmp
        "PYTHONUNBUFFERED": "1",
    }
    log = (root / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "facectx.app",
            f"port={port}",
            f"paths.log_dir={root / 'logs'}",
            *args,
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    try:
        while True:
            if server.poll() is not None:
                pytest.fail(f"the app exited ({server.returncode}):\n{_tail(root / 'server.log')}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the app did not answer in 120 s:\n{_tail(root / 'server.log')}")
            time.sleep(0.5)
        yield url, root / "server.log"
    finally:
        server.send_signal(signal.SIGTERM)  # stops like Ctrl-C (and deletes its results)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def app_server(tmp_path_factory, browser_paths):
    """The page as a fresh install runs it: no ckpt= and no inpaint_ckpt= (exemplar-lfw-128
    for portraits, lfw-swap-128 for the inpaint tab)."""
    yield from _serve(tmp_path_factory.mktemp("app-server"))


@pytest.fixture(scope="module")
def cascade_url(tmp_path_factory, browser_paths) -> str:
    """The page with the shipped cascade (lfw-128), the model that pastes its context back."""
    for url, _ in _serve(tmp_path_factory.mktemp("app-cascade"), "ckpt=pretrained:lfw-128"):
        yield url


@pytest.fixture(scope="module")
def app_url(app_server) -> str:
    return app_server[0]


@pytest.fixture(scope="module")
def driver(browser_paths):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = browser_paths
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in CI containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1200",
        # offline: any host but the app's fails to resolve (and is recorded below)
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    d = webdriver.Chrome(service=Service(chromedriver), options=options)
    d.set_page_load_timeout(60)
    yield d
    d.quit()


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


def _screenshot(driver, tmp_path: Path, name: str) -> Path:
    """The window as PNG in tmp_path; with FACECTX_SCREENSHOT_DIR, also there as a 256-colour
    PNG (a fifth of the size: what docs/img/app.png is)."""
    from PIL import Image

    out = tmp_path / name
    driver.save_screenshot(str(out))
    assert out.stat().st_size > 10_000
    if os.environ.get("FACECTX_SCREENSHOT_DIR"):
        dest = Path(os.environ["FACECTX_SCREENSHOT_DIR"]).expanduser()
        dest.mkdir(parents=True, exist_ok=True)
        with Image.open(out) as im:
            small = im.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE)
            small.save(dest / name, optimize=True)
    return out


def _images(driver, selector: str) -> list[tuple[int, int]]:
    """(naturalWidth, naturalHeight) of the loaded images under ``selector``."""
    from selenium.webdriver.common.by import By

    sizes = []
    for im in driver.find_elements(By.CSS_SELECTOR, f"{selector} img"):
        w, h, done = driver.execute_script(
            "return [arguments[0].naturalWidth, arguments[0].naturalHeight, arguments[0].complete]",
            im,
        )
        if done and w:
            sizes.append((w, h))
    return sizes


def _upload_and_run(driver, url: str, photo: Path, preview: bool = True) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#photo input[type=file]")
    )
    driver.find_element(By.CSS_SELECTOR, "#photo input[type=file]").send_keys(str(photo))
    # the upload is in once the component shows it (an image element, loaded unless broken)
    WebDriverWait(driver, 30).until(
        lambda d: (
            _images(d, "#photo") if preview else d.find_elements(By.CSS_SELECTOR, "#photo img")
        )
    )
    driver.find_element(By.CSS_SELECTOR, "#run-hallucinate").click()


def _remote_requests(driver, url: str) -> list[str]:
    """URLs the page requested from any host but this machine's (data: and blob: are local;
    the log holds every page the shared driver opened, the cascade's app on another port too)."""
    app = urlparse(url).hostname
    out = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] != "Network.requestWillBeSent":
            continue
        requested = message["params"]["request"]["url"]
        parsed = urlparse(requested)
        if parsed.scheme in ("data", "blob", "about", "chrome", "devtools"):
            continue
        if parsed.hostname != app:
            out.append(requested)
    return out


def test_a_photo_gives_portraits(driver, app_url, wild_photos, tmp_path):
    """The shipped default (exemplar-lfw-128): two portraits, and no pasted-back photo (its
    context is another photo's whole head), which the status says."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from facectx.demo import NO_PASTE

    _upload_and_run(driver, app_url, wild_photos / PHOTO)
    WebDriverWait(driver, 90).until(lambda d: len(_images(d, "#faces-hallucinated")) == 2)
    assert _images(driver, "#faces-hallucinated") == [(128, 128), (128, 128)]
    assert _images(driver, "#faces-masked") == [(128, 128), (128, 128)]
    status = driver.find_element(By.CSS_SELECTOR, "#hallucinate-status").text
    assert "2 faces found" in status and NO_PASTE in status
    assert _images(driver, "#pasted") == []
    assert not [e for e in driver.find_elements(By.CSS_SELECTOR, "#pasted") if e.is_displayed()]
    assert driver.find_element(By.CSS_SELECTOR, "#download-hallucinated").is_displayed()
    _screenshot(driver, tmp_path, "app.png")
    assert _remote_requests(driver, app_url) == []


def test_the_cascade_pastes_its_context_back_into_the_photo(
    driver, cascade_url, wild_photos, tmp_path
):
    from selenium.webdriver.support.ui import WebDriverWait

    from facectx.demo import read_photo

    photo = wild_photos / PHOTO
    h, w = read_photo(photo).shape[:2]  # upright, as the page shows it
    _upload_and_run(driver, cascade_url, photo)
    WebDriverWait(driver, 90).until(lambda d: _images(d, "#pasted"))
    assert _images(driver, "#pasted") == [(w, h)]
    assert _images(driver, "#faces-hallucinated") == [(128, 128), (128, 128)]
    assert _remote_requests(driver, cascade_url) == []


def _fetch_images(driver, selector: str) -> list:
    """The images under ``selector`` as the page got them: (H, W, 3) uint8 arrays, in order."""
    import io

    from PIL import Image
    from selenium.webdriver.common.by import By

    out = []
    for im in driver.find_elements(By.CSS_SELECTOR, f"{selector} img"):
        src = driver.execute_script("return arguments[0].currentSrc", im)
        with urllib.request.urlopen(src, timeout=10) as r:
            out.append(np.asarray(Image.open(io.BytesIO(r.read())).convert("RGB")))
    return out


def test_a_group_photo_keeps_every_face_its_own_in_the_pasted_view(
    driver, cascade_url, wild_photos, hallucinator, tmp_path
):
    """Every face the detector finds in the group selfie keeps its own pixels in the pasted
    view: the photo's, or its own generated context, never another face's portrait."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from facectx.demo import read_photo
    from facectx.faces import CanonicalFrame
    from facectx.faces.pipeline import FacePreparer

    from .test_app_paste import own_paste_agrees

    photo_path = wild_photos / GROUP
    photo = read_photo(photo_path)
    _upload_and_run(driver, cascade_url, photo_path)
    WebDriverWait(driver, 90).until(lambda d: _images(d, "#pasted"))
    (pasted,) = _fetch_images(driver, "#pasted")
    portraits = _fetch_images(driver, "#faces-hallucinated")
    # the faces as the app found them (the same frame, detector and options)
    frame = CanonicalFrame.from_record(hallucinator.size, hallucinator.frame)
    found = FacePreparer(frame, detector="hog", faces="all").run(photo)
    assert pasted.shape == photo.shape and len(portraits) == len(found.faces) == 4
    protect = [d.box for d in found.detections]
    assert own_paste_agrees(photo, found.faces, portraits, protect, pasted) == []
    status = driver.find_element(By.CSS_SELECTOR, "#hallucinate-status").text
    assert status.startswith("4 faces found") and "may have missed faces" in status
    _screenshot(driver, tmp_path, "app_group.png")


def test_only_detectors_that_can_run_are_offered(driver, app_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from facectx.faces.detect import DETECTORS, available_detectors

    driver.get(app_url)
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#detector input"))
    offered = [
        e.get_attribute("value") for e in driver.find_elements(By.CSS_SELECTOR, "#detector input")
    ]
    assert offered == list(available_detectors())
    text = driver.find_element(By.CSS_SELECTOR, "#detector").text
    for name in set(DETECTORS) - set(offered):
        assert f"{name}:" in text  # the info line says why it is not offered


def test_the_console_shows_the_address_and_no_share_link_noise(app_server):
    url, log = app_server
    text = log.read_text()
    assert f"the demo page is at {url}" in text
    assert "share" not in text and "public link" not in text
    assert "HTTP Request" not in text  # gradio's own httpx checks


def test_a_photo_without_a_face_shows_the_error(driver, app_url, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wall = plain_image(tmp_path / "wall.png", (400, 300))
    _upload_and_run(driver, app_url, wall)

    def status(d):
        return d.find_element(By.CSS_SELECTOR, "#hallucinate-status").text

    WebDriverWait(driver, 60).until(lambda d: "No face found" in status(d))
    assert status(driver).startswith("⚠ No face found in the photo (hog found no face).")
    assert "Traceback" not in driver.page_source
    assert _images(driver, "#faces-hallucinated") == []
    assert _images(driver, "#pasted") == []
    _screenshot(driver, tmp_path, "app_no_face.png")
    assert _remote_requests(driver, app_url) == []


def test_a_file_that_is_no_image_shows_the_error(driver, app_url, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"this is not a photo")
    _upload_and_run(driver, app_url, bad, preview=False)

    def page_text(d):
        return d.find_element(By.TAG_NAME, "body").text

    WebDriverWait(driver, 60).until(lambda d: "Could not read notes.jpg" in page_text(d))
    assert "Traceback" not in driver.page_source
    _screenshot(driver, tmp_path, "app_unreadable.png")


def test_inpaint_with_a_reference_at_full_resolution(
    driver, app_url, app_server, wild_photos, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from facectx.demo import read_photo

    photo, reference = wild_photos / "img12.jpg", wild_photos / "img5.jpg"
    h, w = read_photo(photo).shape[:2]
    driver.get(app_url)
    WebDriverWait(driver, 60).until(
        lambda d: _visible(d, "//button[@role='tab'][contains(., 'Inpaint')]")
    )
    _visible(driver, "//button[@role='tab'][contains(., 'Inpaint')]").click()
    WebDriverWait(driver, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#ip-photo input[type=file]")
    )
    driver.find_element(By.CSS_SELECTOR, "#ip-photo input[type=file]").send_keys(str(photo))
    driver.find_element(By.CSS_SELECTOR, "#ip-reference input[type=file]").send_keys(str(reference))
    WebDriverWait(driver, 30).until(
        lambda d: _images(d, "#ip-photo") and _images(d, "#ip-reference")
    )
    driver.find_element(By.CSS_SELECTOR, "#run-inpaint").click()
    WebDriverWait(driver, 90).until(lambda d: _images(d, "#ip-result"))
    assert _images(driver, "#ip-result") == [(w, h)]  # the photo's own resolution
    status = driver.find_element(By.CSS_SELECTOR, "#inpaint-status").text
    assert status.startswith("1 face(s) inpainted")
    # the face's panel: masked | content | reference | swapped | blended, 128 px each
    WebDriverWait(driver, 30).until(lambda d: _images(d, "#ip-panels"))
    assert set(_images(driver, "#ip-panels")) == {(5 * 128, 128)}  # preview + thumbnail
    _screenshot(driver, tmp_path, "app_inpaint.png")
    log = app_server[1].read_text(encoding="utf-8", errors="replace")
    assert "lfw-swap-128" in log, log[-2000:]  # the shipped SwapInpaint model, no checkpoint
    assert _remote_requests(driver, app_url) == []


def _visible(driver, xpath: str):
    """The first displayed element matching ``xpath``, or None."""
    from selenium.webdriver.common.by import By

    return next((e for e in driver.find_elements(By.XPATH, xpath) if e.is_displayed()), None)
