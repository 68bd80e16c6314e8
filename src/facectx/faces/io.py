"""Reading untrusted photos into one predictable array type, and writing outputs atomically.

Everything downstream (detectors, landmarks, warping) assumes an ``(H, W, 3)`` uint8 RGB array
upright as a person would view it. Users' photos arrive in every other form: rotated by an EXIF
tag, grayscale, palette, with alpha, 16-bit, truncated, enormous, or not images at all. This
module turns each into that one form or into an :class:`ImageReadError` that names the file, so
a batch job can record the reason and go on. The machine's errors (permission denied, an I/O
error, a lost mount: :mod:`facectx._machine`) are not the photo's and stay ``OSError``: a job
must stop on them, not remember the photo as skipped. :func:`scan_inputs` lists a folder and
says, for every entry that is not read as a photo, why.
"""

from __future__ import annotations

import errno
import os
import stat
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facectx._machine import machine_oserror

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")

# Image formats users keep as photos but read_image does not take. A user expects them read, so a
# folder job lists each in skipped.csv (``unsupported_format``) rather than passing over it like
# a .txt file.
OTHER_IMAGE_EXTENSIONS = (
    ".gif", ".tif", ".tiff", ".heic", ".heif", ".avif", ".jxl", ".jp2", ".jfif", ".ico",
    ".svg", ".psd", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf",
)  # fmt: skip

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


@dataclass(frozen=True)
class Entry:
    """An entry of an input folder that is not read as a photo, and why."""

    source: str  # path relative to the scanned folder (POSIX)
    path: Path
    reason: str  # one short word: unsupported_format, not_a_file, symlink_loop, hidden, ...
    detail: str  # for the user: what it is and what to do


@dataclass
class InputScan:
    """Every entry under an input: the photos, and each other entry with its reason.

    ``rejected`` entries look like photos to a user (a GIF, a folder named ``x.jpg``, a symlink
    loop named ``a.jpg``, a symlinked folder that may hold photos): a folder job lists each in
    skipped.csv. ``ignored`` ones (hidden files and folders, other files such as notes.txt, the
    job's own output folder) are only counted in :meth:`summary`.
    """

    base: Path
    images: list[tuple[str, Path]] = field(default_factory=list)  # (source, path), sorted
    rejected: list[Entry] = field(default_factory=list)
    ignored: list[Entry] = field(default_factory=list)
    folders: int = 0  # sub-folders searched

    @property
    def entries(self) -> int:
        """All entries seen; each is a photo, rejected, ignored or a searched folder, once."""
        return len(self.images) + len(self.rejected) + len(self.ignored) + self.folders

    def summary(self, rejected: str = "rejected", names: int = 3) -> str:
        """One line that accounts for every entry: ``rejected`` says where those went (a job:
        ``in skipped.csv``); ``names``: ignored entries named per reason."""

        def counts(entries: list[Entry], named: bool = False) -> str:
            by = Counter(e.reason for e in entries)
            parts = []
            for reason, n in sorted(by.items()):
                part = f"{reason} {n}"
                if named:
                    some = [e.source for e in entries if e.reason == reason][:names]
                    part += ": " + ", ".join(some) + (", ..." if n > len(some) else "")
                parts.append(part)
            return "; ".join(parts)

        def n(count: int, one: str, many: str) -> str:
            return f"{count} {one if count == 1 else many}"

        line = (
            f"{self.base}: {n(self.entries, 'entry', 'entries')}: "
            f"{n(len(self.images), 'photo', 'photos')}, {n(self.folders, 'folder', 'folders')} "
            "searched, "
            f"{len(self.rejected)} {rejected}"
        )
        line += f" ({counts(self.rejected)})" if self.rejected else ""
        line += f", {len(self.ignored)} ignored"
        return line + (f" ({counts(self.ignored, named=True)})" if self.ignored else "")


def _looks_like_photo(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS + OTHER_IMAGE_EXTENSIONS)


def _what_is(entry: os.DirEntry, exts: tuple[str, ...]) -> tuple[str, str]:
    """``(what, detail)`` of a folder entry: ``photo``, ``folder``, or the reason it is neither."""
    if entry.name.startswith("."):
        return "hidden", "hidden entries are not read"
    if entry.is_symlink():
        try:
            mode = os.stat(entry.path).st_mode
        except OSError as e:
            if machine_oserror(e) is not None:
                raise
            target = os.readlink(entry.path)
            if e.errno == errno.ELOOP:
                return "symlink_loop", f"a symlink to {target} that never reaches a file"
            return "broken_symlink", f"a symlink to {target}, which does not exist"
        if stat.S_ISDIR(mode):
            return "symlinked_folder", (
                f"symlinked folders are not followed; pass {os.path.realpath(entry.path)} as "
                "the input of a run of its own, or copy its photos in"
            )
    else:
        mode = entry.stat(follow_symlinks=False).st_mode
    if stat.S_ISDIR(mode):
        return "folder", ""
    if not stat.S_ISREG(mode):
        return "not_a_file", "not a regular file (a pipe, socket or device)"
    name = entry.name.lower()
    if name.endswith(exts):
        return "photo", ""
    if name.endswith(OTHER_IMAGE_EXTENSIONS):
        fmt = name.rsplit(".", 1)[-1].upper()
        return "unsupported_format", (
            f"{fmt} is not read (only {', '.join(e.lstrip('.') for e in exts)}); "
            "convert it to one of those"
        )
    return "not_an_image", "not a photo file"


def scan_inputs(
    input: str | os.PathLike,
    exclude: str | os.PathLike | None = None,
    extensions: Iterable[str] = IMAGE_EXTENSIONS,
) -> InputScan:
    """The photos under ``input`` (a folder, searched recursively, or one file) and, for every
    other entry, why it is not one; every entry is accounted for once (:class:`InputScan`).

    Photos are files (or symlinks to files) with one of ``extensions``, any case, sorted by
    relative POSIX path as :func:`list_images` sorts them. Hidden entries are not searched
    (``.thumbnails/`` holds no photos of the user's); symlinked folders are not followed (a link
    back up would never end), and neither is ``exclude`` (an output folder inside the input).
    A file given as ``input`` is its one photo, whatever its name: the user named it.

    Raises:
        FileNotFoundError: ``input`` does not exist.
        OSError: the machine's error while listing (a sub-folder without read permission, an I/O
            error): its photos must not go missing unnoticed.
    """
    root = Path(input).expanduser().resolve()
    if root.is_file():
        return InputScan(root.parent, images=[(root.name, root)])
    if not root.is_dir():
        raise FileNotFoundError(f"input {root} is neither an image file nor a folder")
    skip = Path(exclude).expanduser().resolve() if exclude is not None else None
    exts = tuple(e.lower() for e in extensions)
    scan = InputScan(root)
    todo = [root]
    while todo:
        with os.scandir(todo.pop()) as it:
            found = list(it)
        for entry in found:
            path = Path(entry.path)
            source = path.relative_to(root).as_posix()
            what, detail = _what_is(entry, exts)
            if what == "photo":
                scan.images.append((source, path))
            elif what == "folder" and path == skip:
                scan.ignored.append(Entry(source, path, "output_folder", "the output folder"))
            elif what == "folder":
                todo.append(path)
                if _looks_like_photo(entry.name):  # its photos are read; it is none itself
                    detail = "a folder named like a photo (its contents are searched)"
                    scan.rejected.append(Entry(source, path, "not_a_file", detail))
                else:
                    scan.folders += 1
            elif what == "symlinked_folder" or (what != "hidden" and _looks_like_photo(entry.name)):
                scan.rejected.append(Entry(source, path, what, detail))
            else:
                scan.ignored.append(Entry(source, path, what, detail))
    scan.images.sort(key=lambda item: item[0])
    scan.rejected.sort(key=lambda e: e.source)
    scan.ignored.sort(key=lambda e: e.source)
    return scan


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
    changing Pillow's global settings. The machine's errors (permission denied, I/O error, a
    lost mount) raise their ``OSError`` instead, naming the file: they are not the photo's.
    """
    from PIL import Image, ImageOps

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
    except Exception as e:
        raise _read_error(path, e) from e


def _read_error(path: Path, e: Exception) -> Exception:
    """What reading ``path`` failed with, for the caller: the machine's ``OSError`` (checked
    first, through what Pillow re-raised it as), else an :class:`ImageReadError` with the cause."""
    from PIL import Image, UnidentifiedImageError

    machine = machine_oserror(e)
    if machine is not None:  # a skip would be remembered, and the photo never redone
        return OSError(machine.errno, machine.strerror or os.strerror(machine.errno), str(path))
    if isinstance(e, FileNotFoundError):
        return ImageReadError(path, "file not found")
    if isinstance(e, IsADirectoryError):
        return ImageReadError(path, "a folder, not a file")
    if isinstance(e, UnidentifiedImageError):
        return ImageReadError(path, "not a recognised image format")
    if isinstance(e, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return ImageReadError(path, f"decompression bomb refused ({e})")
    if isinstance(e, OSError | SyntaxError):
        # Pillow reports truncated or corrupt data as OSError (sometimes SyntaxError).
        return ImageReadError(path, f"corrupt or truncated ({e})")
    return ImageReadError(path, f"{type(e).__name__}: {e}")  # any other decoder failure


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
    """Read a PNG written by :func:`write_png` back as uint8 (RGB or single channel).

    Like :func:`read_image`: :class:`ImageReadError` for a missing or undecodable file, the
    ``OSError`` for the machine's errors (which ``cv2.imread`` would hide behind ``None``).
    """
    import cv2

    try:
        with open(path, "rb") as f:
            data = f.read()
    except Exception as e:
        raise _read_error(Path(path), e) from e
    a = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if a is None:
        raise ImageReadError(path, "cannot decode PNG")
    return np.ascontiguousarray(a[:, :, ::-1]) if a.ndim == 3 else a
