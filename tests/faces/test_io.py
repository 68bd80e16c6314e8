"""read_image on every pixel mode and failure; listing; atomic writes."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from facectx.faces.io import (
    ImageReadError,
    list_images,
    read_image,
    read_png,
    remove_stale_tmp,
    write_npy,
    write_png,
)


def _gradient(h=24, w=32) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 77)], -1).astype(
        np.uint8
    )


def _check_rgb(a: np.ndarray, shape) -> None:
    assert a.dtype == np.uint8 and a.shape == (*shape, 3) and a.flags.c_contiguous


def test_rgb_png_roundtrip(tmp_path):
    img = _gradient()
    Image.fromarray(img).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    _check_rgb(out, img.shape[:2])
    assert np.array_equal(out, img)


def test_grayscale_and_palette(tmp_path):
    g = _gradient()[:, :, 0]
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    _check_rgb(out, g.shape)
    assert np.array_equal(out[:, :, 0], g) and np.array_equal(out[:, :, 2], g)

    Image.fromarray(_gradient()).convert("P").save(tmp_path / "p.png")
    _check_rgb(read_image(tmp_path / "p.png"), g.shape)

    # palette with a transparent entry: transparent pixels become black
    p = Image.new("P", (8, 8), 1)
    p.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    p.paste(0, (0, 0, 4, 8))
    p.save(tmp_path / "pt.png", transparency=0)
    out = read_image(tmp_path / "pt.png")
    assert (out[:, :4] == 0).all() and (out[:, 4:] == (200, 100, 50)).all()


def test_rgba_and_la_composite_on_black(tmp_path):
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[:, :5, 3] = 255
    rgba[:, 5:, 3] = 0
    rgba[0, 0, 3] = 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    _check_rgb(out, (10, 10))
    assert (out[1:, :5] == (200, 100, 50)).all() and (out[:, 5:] == 0).all()
    assert np.abs(out[0, 0].astype(int) - np.array([100, 50, 25])).max() <= 1

    Image.fromarray(rgba[..., [0, 3]], "LA").save(tmp_path / "la.png")
    out = read_image(tmp_path / "la.png")
    assert (out[:, 5:] == 0).all() and (out[1:, :5] == 200).all()


def test_16bit_gray_and_rgb(tmp_path):
    g16 = (np.linspace(0, 65535, 24 * 32).reshape(24, 32)).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = read_image(tmp_path / "g16.png")
    _check_rgb(out, (24, 32))
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255
    assert np.abs(out[..., 0].astype(int) - np.round(g16 / 257).astype(int)).max() <= 1

    rgb16 = _gradient().astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16[:, :, ::-1])
    out = read_image(tmp_path / "rgb16.png")
    _check_rgb(out, (24, 32))
    assert np.abs(out.astype(int) - _gradient().astype(int)).max() <= 1


def test_float_and_cmyk(tmp_path):
    f = Image.fromarray(np.full((6, 7), 0.5, np.float32), "F")
    f.save(tmp_path / "f.tif")  # not an accepted extension for folders, but read_image takes it
    assert (read_image(tmp_path / "f.tif") == 128).all()

    Image.new("CMYK", (9, 5), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    out = read_image(tmp_path / "c.jpg")
    _check_rgb(out, (5, 9))
    assert out[..., 0].mean() > 200 and out[..., 1:].mean() < 60  # red


def test_exif_orientation_applied(tmp_path):
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :20] = (255, 0, 0)  # left half red
    img[:, 20:] = (0, 0, 255)  # right half blue
    im = Image.fromarray(img)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(tmp_path / "o.jpg", exif=exif.tobytes(), quality=95)
    out = read_image(tmp_path / "o.jpg")
    assert out.shape == (40, 20, 3)  # upright: the stored width became the height
    top, bottom = out[:15].mean((0, 1)), out[25:].mean((0, 1))
    assert top[0] > 200 and top[2] < 60  # the stored left (red) is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_failures_name_the_file(tmp_path):
    (tmp_path / "text.jpg").write_text("not an image at all\n")
    with pytest.raises(ImageReadError, match=r"text\.jpg") as e:
        read_image(tmp_path / "text.jpg")
    assert "not a recognised image" in e.value.reason

    with pytest.raises(ImageReadError, match="file not found"):
        read_image(tmp_path / "missing.png")

    Image.fromarray(_gradient(200, 200)).save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"trunc\.jpg") as e:
        read_image(tmp_path / "trunc.jpg")
    assert "truncated" in e.value.reason

    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.png"):
        read_image(tmp_path / "empty.png")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but carries no pixel data (a 'bomb' stand-in)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_decompression_bombs_refused(tmp_path):
    # 85 MP: over our 80 MP limit, under Pillow's own warning threshold (89 MP).
    (tmp_path / "big.png").write_bytes(_png_header_only(9000, 9500))
    with pytest.raises(ImageReadError, match="MP limit"):
        read_image(tmp_path / "big.png")
    # Pillow's warning (> 89 MP) and error (> 179 MP) both become ImageReadError.
    (tmp_path / "warn.png").write_bytes(_png_header_only(9500, 9500))
    with pytest.raises(ImageReadError, match="bomb"):
        read_image(tmp_path / "warn.png", max_pixels=10**12)
    (tmp_path / "bomb.png").write_bytes(_png_header_only(20000, 20000))
    with pytest.raises(ImageReadError, match="bomb"):
        read_image(tmp_path / "bomb.png")
    Image.fromarray(_gradient()).save(tmp_path / "small.png")
    with pytest.raises(ImageReadError, match="MP limit"):
        read_image(tmp_path / "small.png", max_pixels=100)


def test_list_images_recursive_sorted_case_insensitive(tmp_path):
    for rel in ("b/z.JPG", "a.png", "b/a.jpeg", "c.WebP", "d.bmp", "e.txt", ".hidden.jpg", "f.gif"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    got = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert got == ["a.png", "b/a.jpeg", "b/z.JPG", "c.WebP", "d.bmp"]
    with pytest.raises(NotADirectoryError):
        list_images(tmp_path / "nope")


def test_atomic_writes_leave_no_tmp(tmp_path):
    img = _gradient()
    write_png(tmp_path / "x.png", img)
    write_png(tmp_path / "m.png", (img[..., 0] > 100).astype(np.uint8) * 255)
    write_npy(tmp_path / "l.npy", np.ones((68, 2), np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.npy", "m.png", "x.png"]
    assert np.array_equal(read_png(tmp_path / "x.png"), img)
    assert set(np.unique(read_png(tmp_path / "m.png")).tolist()) == {0, 255}
    assert np.load(tmp_path / "l.npy").dtype == np.float32

    (tmp_path / ".x.png.123.tmp").write_bytes(b"partial")
    assert remove_stale_tmp(tmp_path) == 1
    assert not list(tmp_path.glob("*.tmp")) and (tmp_path / "x.png").exists()
