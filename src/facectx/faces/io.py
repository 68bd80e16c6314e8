"""Reading untrusted photos into one predictable array type, and writing outputs atomically.

Everything downstream (detectors, landmarks, warping) assumes an ``(H, W, 3)`` uint8 RGB array
upright as a person would view it. Users' photos arrive in every other form: rotated by an EXIF
tag, grayscale, palette, with alpha, 16-bit, truncated, enormous, or not images at all. This
module turns each into that one form or into an :class:`ImageReadError` that names the file, so
a batch job can record the reason and go on.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")

# 80 MP: larger than any camera photo we expect, small enough that decoding cannot exhaust
# memory (an 80 MP RGB array is 240 MB). Pillow's own limit (89 MP, a warning) is global state,
# so we check the header ourselves instead of changing it.
MAX_PIXELS = 80_000_000


class ImageReadError(ValueError):
    """A file could not be read as a photo; the message names the file and the cause."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path}: {reason}")


def list_images(
    root: str | os.PathLike, extensions: Iterable[str] = IMAGE_EXTENSIONS
) -> list[Path]:
    """Image files under ``root`` (recursive, case-insensitive extensions), sorted by relative path.

    Sorting by the POSIX relative path makes the order, and so ``limit`` and resume, identical on
    every platform and file system.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"input folder {root} does not exist or is not a folder")
    exts = {e.lower() for e in extensions}
    found = [
        p
        for p in root.rglob("*")
        if p.suffix.lower() in exts and p.is_file() and not p.name.startswith(".")
    ]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def list_inputs(input: str | Path) -> tuple[Path, list[tuple[str, Path]]]:
    """(base folder, [(source relative to base, path)]) for one image file or a folder."""
    p = Path(input).expanduser().resolve()
    if p.is_file():
        return p.parent, [(p.name, p)]
    if not p.is_dir():
        raise FileNotFoundError(f"input {p} is neither an image file nor a folder")
    return p, [(q.relative_to(p).as_posix(), q) for q in list_images(p)]


def _to_rgb_uint8(im) -> np.ndarray:
    """Any decoded PIL image -> (H, W, 3) uint8 RGB. Alpha is composited onto black."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit (or 32-bit integer) grayscale: full 16-bit range maps onto 0..255.
        a = np.asarray(im).astype(np.int64)
        if mode == "I" and a.max(initial=0) <= 255:
            g = a.clip(0, 255)
        else:
            g = (a.clip(0, 65535) * 255 + 32767) // 65535
        g = g.astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    if mode == "F":
        a = np.asarray(im, dtype=np.float64)
        a = np.nan_to_num(a)
        if a.size and a.max() <= 1.0:
            a = a * 255.0
        g = np.round(a.clip(0, 255)).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in im.info
    )
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint16)
        alpha = rgba[:, :, 3:4]
        # Composite on black: transparent pixels carry no photo content, and black is also what
        # the aligner puts outside the photo, so both read as "no data".
        rgb = (rgba[:, :, :3] * alpha + 127) // 255
        return np.ascontiguousarray(rgb.astype(np.uint8))
    if mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def read_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a photo as an upright (H, W, 3) uint8 RGB array.

    Applies the EXIF orientation; converts grayscale, palette, CMYK, 16-bit and float images;
    composites alpha onto black. Raises :class:`ImageReadError` for missing, truncated, corrupt
    or non-image files and for images over ``max_pixels`` (decompression bombs), without
    changing Pillow's global settings.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageReadError(
                        path,
                        f"{w}x{h} = {w * h / 1e6:.0f} MP exceeds the {max_pixels / 1e6:.0f} "
                        "MP limit (possible decompression bomb)",
                    )
                if w < 1 or h < 1:
                    raise ImageReadError(path, f"empty image ({w}x{h})")
                im.load()  # decode now so truncation surfaces here, not in a later transform
                try:
                    im = ImageOps.exif_transpose(im)
                except Exception as e:  # broken EXIF must not cost us an otherwise fine photo
                    warnings.warn(
                        f"{path}: ignoring unreadable EXIF orientation ({e})", stacklevel=2
                    )
                return _to_rgb_uint8(im)
    except ImageReadError:
        raise
    except FileNotFoundError as e:
        raise ImageReadError(path, "file not found") from e
    except UnidentifiedImageError as e:
        raise ImageReadError(path, "not a recognised image format") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageReadError(path, f"decompression bomb refused ({e})") from e
    except (OSError, SyntaxError) as e:
        # Pillow reports truncated or corrupt data as OSError (sometimes SyntaxError).
        raise ImageReadError(path, f"corrupt or truncated ({e})") from e
    except Exception as e:  # any other decoder failure on an untrusted file
        raise ImageReadError(path, f"{type(e).__name__}: {e}") from e


def _tmp_name(path: Path) -> Path:
    # Hidden, unique per process, same folder (so os.replace is an atomic rename).
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path = Path(path)
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def encode_png(image: np.ndarray, compression: int = 3) -> bytes:
    """PNG bytes of an (H, W) or (H, W, 3) RGB uint8 array."""
    import cv2

    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise TypeError(f"encode_png expects uint8, got {a.dtype}")
    if a.ndim == 3:
        a = a[:, :, ::-1]  # OpenCV encodes BGR
    # The "filtered" zlib strategy suits photos: ~3% smaller than the default at level 9.
    params = [
        cv2.IMWRITE_PNG_COMPRESSION,
        int(compression),
        cv2.IMWRITE_PNG_STRATEGY,
        cv2.IMWRITE_PNG_STRATEGY_FILTERED,
    ]
    ok, buf = cv2.imencode(".png", a, params)
    if not ok:  # pragma: no cover - cv2 only fails on invalid shapes
        raise ValueError(f"PNG encoding failed for array of shape {a.shape}")
    return buf.tobytes()


def write_png(path: str | os.PathLike, image: np.ndarray, compression: int = 3) -> None:
    """Atomically write an RGB or single-channel uint8 array as PNG."""
    atomic_write_bytes(path, encode_png(image, compression))


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Atomically write an array as .npy."""
    import io

    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def remove_stale_tmp(folder: str | os.PathLike) -> int:
    """Delete temporary files an interrupted run left in ``folder``; returns how many."""
    folder = Path(folder)
    n = 0
    if folder.is_dir():
        for p in folder.glob(".*.tmp"):
            p.unlink(missing_ok=True)
            n += 1
    return n


def read_png(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG written by :func:`write_png` back as uint8 (RGB or single channel)."""
    import cv2

    a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise ImageReadError(path, "cannot decode PNG")
    return np.ascontiguousarray(a[:, :, ::-1]) if a.ndim == 3 else a
