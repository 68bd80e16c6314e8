"""A photo folder with one of each kind of entry users leave in it (tests of the folder jobs)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

#: entries read as photos (relative POSIX paths)
PHOTOS = ("a.jpg", "linked.png", "sub/b.PNG", "x.jpg/inside.jpg")
#: entries that get a skipped.csv row, and its reason
REJECTED = {
    "anim.gif": "unsupported_format",
    "x.jpg": "not_a_file",
    "pipe.jpg": "not_a_file",
    "loop1.jpg": "symlink_loop",
    "loop2.jpg": "symlink_loop",
    "gone.jpg": "broken_symlink",
    "elsewhere": "symlinked_folder",
}
#: entries only counted in the summary line, and why
IGNORED = {
    "notes.txt": "not_an_image",
    "README": "not_an_image",
    ".DS_Store": "hidden",
    ".thumbs": "hidden",
}


def photo(path: Path, side: int = 8) -> Path:
    """A small flat RGB image (no face) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((side, side, 3), 100, np.uint8)).save(path)
    return path


def messy_folder(d: Path) -> Path:
    """Fill ``d`` with PHOTOS, REJECTED and IGNORED (plus the searched folder ``sub``)."""
    for rel in ("a.jpg", "sub/b.PNG", "x.jpg/inside.jpg", ".thumbs/t.jpg"):
        photo(d / rel)
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:])  # animated
    (d / "loop1.jpg").symlink_to(d / "loop2.jpg")
    (d / "loop2.jpg").symlink_to(d / "loop1.jpg")
    (d / "gone.jpg").symlink_to(d / "nowhere.jpg")
    (d / "linked.png").symlink_to(d / "a.jpg")  # a symlink to a photo is a photo
    (d / "elsewhere").symlink_to(d / "sub")  # symlinked folders are not followed
    os.mkfifo(d / "pipe.jpg")  # reading it would block forever
    (d / "notes.txt").write_text("hi")
    (d / "README").write_text("hi")
    (d / ".DS_Store").write_bytes(b"x")
    return d
