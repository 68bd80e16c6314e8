"""Fixtures shared by all test folders.

Real data lives outside the repository (``<repo>/../shared/data`` or ``$FACECTX_SHARED_DATA``);
tests that need it skip with the reason when it is absent, e.g. on a user's machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Where the real data should be: $FACECTX_SHARED_DATA, else <repo>/../shared/data."""
    env = os.environ.get("FACECTX_SHARED_DATA")
    return Path(env).expanduser().resolve() if env else (REPO.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def compose_config():
    """``compose_config(name, overrides, root=tmp_path)``: the real composed config
    (tests/_config.py; test modules may also import it directly)."""
    from _config import compose_config

    return compose_config


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the read-only real data (lfw/, wild/); skips the test when it is absent."""
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"real data not found at {root}; set FACECTX_SHARED_DATA to run this test")
    return root


@pytest.fixture(scope="session")
def lfw_dir(shared_data) -> Path:
    """shared_data/lfw with images/ and splits.csv; skips when missing."""
    root = shared_data / "lfw"
    if not (root / "images").is_dir() or not (root / "splits.csv").is_file():
        pytest.skip(f"LFW images or splits.csv not found under {root}")
    return root


@pytest.fixture(scope="session")
def wild_photos(shared_data) -> Path:
    """shared_data/wild/photos (in-the-wild photos, incl. couple.jpg, selfie-many-people.jpg)."""
    root = shared_data / "wild" / "photos"
    if not root.is_dir():
        pytest.skip(f"wild photos not found at {root}")
    return root


@pytest.fixture(scope="session")
def lfw_split_images(lfw_dir):
    """``f(split, n)``: the first ``n`` image paths (sorted by name) of an LFW split."""
    import csv

    with (lfw_dir / "splits.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))

    def pick(split: str, n: int) -> list[Path]:
        names = sorted(r["image"] for r in rows if r["split"] == split)
        return [lfw_dir / "images" / name for name in names[:n]]

    return pick


def _bomb_png(path: Path, side: int = 20_000) -> None:
    """A PNG whose header claims side x side pixels (400 MP) with almost no data behind it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="session")
def odd_photos(tmp_path_factory, lfw_split_images, wild_photos) -> tuple[Path, dict[str, str]]:
    """A folder of the odd files users hand the photo jobs, and what each should give.

    Returns ``(folder, expected)``: ``expected[name]`` is ``"face"`` (at least one face is
    written) or ``"skip"`` (listed in skipped.csv with a reason; the job goes on). Built on the
    fly from one LFW test photo and the couple photo, so every job is tested on the same set.
    """
    import shutil

    import cv2
    import numpy as np
    from PIL import Image

    src = lfw_split_images("test", 1)[0]
    face = np.asarray(Image.open(src).convert("RGB"))
    d = tmp_path_factory.mktemp("odd_photos")
    expected: dict[str, str] = {}

    def put(name: str, kind: str) -> Path:
        expected[name] = kind
        return d / name

    shutil.copy(src, put("plain.jpg", "face"))
    shutil.copy(src, put("Zoë_Ünïcode_写真 space.jpg", "face"))
    shutil.copy(wild_photos / "couple.jpg", put("two_faces.jpg", "face"))
    rgba = np.dstack([face, np.full(face.shape[:2], 255, np.uint8)])
    rgba[:10, :10, 3] = 0
    Image.fromarray(rgba, "RGBA").save(put("rgba.png", "face"))
    Image.fromarray(face).convert("L").save(put("gray.png", "face"))
    gray16 = np.asarray(Image.fromarray(face).convert("L")).astype(np.uint16) * 257
    Image.fromarray(gray16).save(put("gray16.png", "face"))
    cv2.imwrite(str(put("rgb48.png", "face")), face[:, :, ::-1].astype(np.uint16) * 257)
    Image.fromarray(face).convert("CMYK").save(put("cmyk.jpg", "face"), quality=95)
    Image.fromarray(face).convert("P", palette=Image.Palette.ADAPTIVE).save(
        put("palette.png", "face")
    )
    # stored lying on its side; the EXIF orientation tag (6: rotate 90° clockwise) stands it up
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(face, 1).copy()).save(put("exif_rotated.jpg", "face"), exif=exif)
    Image.fromarray(face[:10, :10]).save(put("tiny_10x10.png", "skip"))
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)).save(
        put("noise.png", "skip")
    )
    put("zero_bytes.jpg", "skip").write_bytes(b"")
    put("text.jpg", "skip").write_text("hello, I am not a JPEG\n")
    data = src.read_bytes()
    put("truncated.jpg", "skip").write_bytes(data[: len(data) // 2])
    _bomb_png(put("bomb_400mp.png", "skip"))
    return d, expected


@pytest.fixture
def cli_error(capfd):
    """``cli_error(main)``: run a command's ``main()`` that must end with exit code 2 and one
    ``[ERROR]`` line, no traceback; returns (that line, all the output)."""

    def run(main) -> tuple[str, str]:
        with pytest.raises(SystemExit) as info:
            main()
        text = "".join(capfd.readouterr())
        errors = [line for line in text.splitlines() if "[ERROR]" in line]
        assert info.value.code == 2 and "Traceback" not in text, text[-3000:]
        assert len(errors) == 1, text[-3000:]
        return errors[0], text

    return run


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a test module: tiny convolutions run fastest single-threaded, and
    the 2-core test machine is shared (use with ``pytest.mark.usefixtures("one_thread")``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
