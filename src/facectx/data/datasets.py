"""Datasets over prepared face folders (format: ``facectx.data.manifest``).

Randomness per item (the mirror decision, then the mask) comes from a generator derived from
``(seed, epoch, index)`` only, so an item is the same whatever the number of workers, the batch
it lands in or the process that loads it, and changes from epoch to epoch. The epoch reaches the
item in one of two ways:

* the dataset's own ``set_epoch(epoch)``, used for plain integer indices (main process, or
  workers that are re-created each epoch);
* an ``(epoch, index)`` key produced by ``EpochSampler``, which Lightning calls ``set_epoch`` on
  at the start of every epoch. This also works with persistent workers (they keep a stale copy of
  the dataset) and under DDP (Lightning wraps the sampler and forwards ``set_epoch``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from facectx.data.manifest import META, ManifestError, read_manifest
from facectx.data.transforms import (
    binary_to_tensor,
    hflip,
    item_generator,
    mirror_landmarks,
    order_generator,
)
from facectx.masks.ops import apply_mask
from facectx.masks.sampler import MaskFn
from facectx.pixels import from_uint8

_RERUN = (
    "The prepared folder is incomplete or was edited: restore the file, or re-run "
    "`python -m facectx.prepare input=<photos> output=<new folder>` and point data.root at it."
)


class PreparedFileError(ManifestError, FileNotFoundError):
    """A file named in a prepared folder's manifest is missing or unreadable."""


def frame_size(root: str | os.PathLike) -> int | None:
    """The aligned image size recorded in ``ROOT/meta.json`` (``frame.size`` or ``size``), or
    None when there is no meta.json or it records no size."""
    path = Path(root) / META
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ManifestError(f"{path} is not valid JSON ({e}). {_RERUN}") from e
    frame = meta.get("frame") if isinstance(meta.get("frame"), dict) else {}
    size = frame.get("size", meta.get("size"))
    return int(size) if size is not None else None


def splits_present(root: str | os.PathLike) -> list[str]:
    """Distinct split values in a prepared folder's manifest ("" = rows without a split)."""
    return sorted({r.get("split", "") for r in read_manifest(root)})


class PreparedFaces(Dataset):
    """Aligned faces of a prepared folder, with a keep mask per item.

    Each item is a dict:

    * ``image`` (3, S, S) float32 in [-1, 1];
    * ``mask`` (1, S, S) float32 keep mask (1 = given to the model; {0, 1} unless feathered);
    * ``masked`` (3, S, S) ``image * mask - (1 - mask)`` (black where the mask is 0);
    * ``valid`` (1, S, S) float32 {0, 1}, 1 where the pixel lies inside the source photo;
    * ``landmarks`` (68, 2) float32 aligned (x, y) pixels, pixel centres at integers;
    * ``person`` int64 label index into ``persons`` (-1 if the row has no person);
    * ``index`` int64 position in this dataset; ``id`` str, the manifest id.

    Args:
        root: prepared folder (absolute or relative to the current directory, resolved once).
        split: manifest split(s) to use; None = all rows.
        mask: mask callable ``(size, landmarks, generator) -> (1, S, S)``; None = the stored face
            hull ``masks/<id>.png``.
        mirror: flip each item left-right with probability 1/2 (image, masks and landmarks,
            with the iBUG left/right permutation).
        seed: base of every item's generator (see the module docstring).
        ids: keep only these manifest ids (after the split filter); None = all.
        check_files: check at construction that every file the items need exists.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | Sequence[str] | None = None,
        mask: MaskFn | None = None,
        mirror: bool = False,
        seed: int = 0,
        ids: Iterable[str] | None = None,
        check_files: bool = True,
    ):
        self.root = Path(root).expanduser().resolve()
        split = list(split) if split is not None and not isinstance(split, str) else split
        rows = read_manifest(self.root, split)
        if ids is not None:
            wanted = set(ids)
            rows = [r for r in rows if r["id"] in wanted]
        if not rows:
            raise ManifestError(
                f"no faces in {self.root} for split={split!r}"
                + (" and the given ids" if ids is not None else "")
                + f"; splits present: {splits_present(self.root)}"
            )
        self.rows = rows
        self.mask = mask
        self.mirror = bool(mirror)
        self.seed = int(seed)
        self.epoch = 0
        self.size: int | None = None
        self._size_source = "the first image"
        self.persons = sorted({r.get("person", "") for r in rows} - {""})
        self._person_index = {p: i for i, p in enumerate(self.persons)}
        if check_files:
            self._check_files()
        # The first image fixes the size when meta.json has none, and fails early if it disagrees.
        self.size = frame_size(self.root)
        self._size_source = str(self.root / META) if self.size is not None else "the first image"
        first = self._read_rgb(rows[0])
        if self.size is None:
            self.size = first.shape[0]

    def _needed(self) -> tuple[str, ...]:
        return ("image", "valid", "landmarks") + (("mask",) if self.mask is None else ())

    def _path(self, row: dict[str, str], column: str) -> Path:
        rel = row.get(column) or ""
        if not rel:
            raise ManifestError(
                f"manifest row {row.get('id')!r} in {self.root} has no {column!r} path. {_RERUN}"
            )
        return self.root / rel

    def _check_files(self) -> None:
        missing = [
            p for r in self.rows for c in self._needed() if not (p := self._path(r, c)).is_file()
        ]
        if missing:
            shown = ", ".join(str(p) for p in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise PreparedFileError(
                f"{len(missing)} file(s) named in {self.root / 'manifest.csv'} are missing: {shown}. {_RERUN}"
            )

    def _imread(self, path: Path, flags: int) -> np.ndarray:
        if not path.is_file():
            raise PreparedFileError(
                f"{path} is named in {self.root / 'manifest.csv'} but missing. {_RERUN}"
            )
        arr = cv2.imread(str(path), flags)
        if arr is None:
            raise PreparedFileError(f"{path} cannot be read as an image (corrupt?). {_RERUN}")
        return arr

    def _check_size(self, arr: np.ndarray, path: Path) -> None:
        size = self.size if self.size is not None else arr.shape[0]
        if arr.shape[:2] != (size, size):
            raise ManifestError(
                f"{path} is {arr.shape[1]}x{arr.shape[0]} but the prepared frame is {size}x{size} "
                f"(from {self._size_source}): the folder mixes preparations. {_RERUN}"
            )

    def _read_rgb(self, row: dict[str, str]) -> np.ndarray:
        path = self._path(row, "image")
        bgr = self._imread(path, cv2.IMREAD_COLOR)
        self._check_size(bgr, path)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _read_binary(self, row: dict[str, str], column: str) -> Tensor:
        path = self._path(row, column)
        arr = self._imread(path, cv2.IMREAD_GRAYSCALE)
        self._check_size(arr, path)
        return binary_to_tensor(arr)

    def _read_landmarks(self, row: dict[str, str]) -> Tensor:
        path = self._path(row, "landmarks")
        if not path.is_file():
            raise PreparedFileError(
                f"{path} is named in {self.root / 'manifest.csv'} but missing. {_RERUN}"
            )
        lm = np.load(path)
        if lm.shape != (68, 2):
            raise ManifestError(
                f"{path} holds landmarks of shape {lm.shape}, expected (68, 2). {_RERUN}"
            )
        return torch.from_numpy(lm.astype(np.float32))

    def set_epoch(self, epoch: int) -> None:
        """Epoch used for plain integer indices (``EpochSampler`` keys carry their own)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        epoch, index = (
            (int(key[0]), int(key[1])) if isinstance(key, tuple) else (self.epoch, int(key))
        )
        if not 0 <= index < len(self.rows):
            raise IndexError(f"index {index} out of range for {len(self.rows)} faces")
        row = self.rows[index]
        gen = item_generator(self.seed, epoch, index)
        # Always draw the flip coin, so the mask stream is the same with mirror on or off.
        flip = bool(torch.rand((), generator=gen) < 0.5) and self.mirror

        s = self.size
        image = from_uint8(self._read_rgb(row))
        valid = self._read_binary(row, "valid")
        landmarks = self._read_landmarks(row)
        stored = self._read_binary(row, "mask") if self.mask is None else None
        if flip:
            image, valid, landmarks = hflip(image), hflip(valid), mirror_landmarks(landmarks, s)
            stored = hflip(stored) if stored is not None else None

        mask = stored if self.mask is None else self.mask(s, landmarks, gen)
        if mask.shape != (1, s, s):
            raise ValueError(
                f"mask callable {self.mask!r} returned {tuple(mask.shape)}, expected (1, {s}, {s})"
            )
        mask = mask.to(torch.float32)
        return {
            "image": image,
            "mask": mask,
            "masked": apply_mask(image, mask),
            "valid": valid,
            "landmarks": landmarks,
            "person": torch.tensor(
                self._person_index.get(row.get("person", ""), -1), dtype=torch.int64
            ),
            "index": torch.tensor(index, dtype=torch.int64),
            "id": row["id"],
        }

    def __repr__(self) -> str:
        return (
            f"PreparedFaces(root={str(self.root)!r}, n={len(self)}, size={self.size}, "
            f"persons={len(self.persons)}, mask={self.mask!r}, mirror={self.mirror}, seed={self.seed})"
        )


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` keys for ``PreparedFaces``, shuffled per epoch from the seed.

    Lightning calls ``set_epoch`` on the train sampler before every epoch, so the epoch travels
    with each index to whichever worker loads it.

    Args:
        length: number of items in the dataset.
        shuffle: a fresh order each epoch from ``(seed, epoch)``; False = 0..length-1.
        seed: base of the order's generator.
    """

    def __init__(self, length: int, shuffle: bool = True, seed: int = 0):
        self.length = int(length)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.epoch = 0
        self.start = 0  # one-shot: indices of the next pass to skip (mid-epoch resume)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        start, self.start = self.start, 0
        if self.shuffle:
            order = torch.randperm(
                self.length, generator=order_generator(self.seed, self.epoch)
            ).tolist()
        else:
            order = range(self.length)
        epoch = self.epoch
        return ((epoch, i) for i in list(order)[start:])

    def __len__(self) -> int:
        return self.length


__all__ = [
    "EpochSampler",
    "PreparedFaces",
    "PreparedFileError",
    "frame_size",
    "splits_present",
]
