"""(image, reference) pairs for SwapInpaint: the reference R guides whose identity fills the hole.

Each item is a ``PreparedFaces`` item (image, mask, masked, valid, landmarks, person, index, id)
plus a reference face. With probability ``same_share`` the reference is *another photo of the
same person* (S = 1: the known region must then be reconstructed, paper eq. 9); otherwise, and
whenever the person has a single photo, it is a photo of *a different person* (S = 0). Persons
are the manifest's ``person`` column; rows without one count as a person each.

Randomness per item comes from generators derived from ``(seed, epoch, index)`` only, as in
``PreparedFaces`` (same item in any worker, batch or process; new pairs every epoch): the image's
own stream (mirror, mask) is ``PreparedFaces``'; the pair draws (same or not, which reference,
whether to mirror it) use a second stream with its own purpose tag.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence

import torch
from torch.utils.data import Dataset

from facectx.data.datamodule import FaceDataModule
from facectx.data.datasets import MaskFn, PreparedFaces
from facectx.data.manifest import person_key
from facectx.data.transforms import hflip, mirror_landmarks, seeded_generator
from facectx.pixels import from_uint8

log = logging.getLogger(__name__)

_PAIR = 0x9A12  # purpose tag of the pair stream (distinct from the item/order/holdout tags)


def pair_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The generator of one item's pair draws in one epoch."""
    return seeded_generator(seed, epoch, index, _PAIR)


class PairedFaces(Dataset):
    """Prepared faces paired with a reference face.

    Items: every key of ``PreparedFaces`` plus

    * ``reference`` (3, S, S) float32 in [-1, 1], the reference face (never masked);
    * ``reference_index`` int64 position of the reference in this dataset;
    * ``reference_id`` str, its manifest id;
    * ``reference_landmarks`` (68, 2) float32, its aligned landmarks (mirrored with it);
    * ``same`` float32 scalar, 1 when image and reference show the same person (S in the paper).

    Args:
        root: prepared folder.
        split: manifest split(s); None = all rows.
        mask: keep-mask callable ``(size, landmarks, generator) -> (1, S, S)``; None = the stored
            face hull (rarely what SwapInpaint wants: use ``facectx.masks.MaskSampler``).
        mirror: flip the image (and, independently, the reference) left-right with probability 1/2.
        seed: base of every random choice.
        ids: keep only these manifest ids; None = all.
        same_share: probability of asking for a same-person reference (0 … 1).
        same_image: when a same-person reference is asked for but the person has one photo, use
            the image itself as its reference (FaceShifter-style reconstruction pairs) instead of
            falling back to a different person.
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
        same_share: float = 0.5,
        same_image: bool = False,
        check_files: bool = True,
    ) -> None:
        if not 0.0 <= same_share <= 1.0:
            raise ValueError(f"same_share must be in [0, 1], got {same_share}")
        self.faces = PreparedFaces(root, split, mask, mirror, seed, ids, check_files)
        self.same_share = float(same_share)
        self.same_image = bool(same_image)
        self.seed = int(seed)
        self.mirror = bool(mirror)
        keys = [person_key(r) for r in self.faces.rows]
        groups: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(k, []).append(i)
        self._group_of = [groups[k] for k in keys]  # sorted index lists, shared per person
        self.num_persons = len(groups)

    # ---- bookkeeping ------------------------------------------------------------------------
    @property
    def root(self):
        return self.faces.root

    @property
    def size(self) -> int | None:
        return self.faces.size

    @property
    def rows(self) -> list[dict[str, str]]:
        return self.faces.rows

    def set_epoch(self, epoch: int) -> None:
        self.faces.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.faces)

    def statistics(self) -> dict[str, float]:
        """Counts behind the realised pair mix: faces, persons, faces whose person has >= 2
        photos, and the expected share of same-person pairs."""
        n = len(self)
        multi = sum(1 for g in self._group_of if len(g) >= 2)
        others = sum(1 for g in self._group_of if len(g) < n)
        expected_same = self.same_share * (multi + (n - multi if self.same_image else 0)) / n
        if others < n:  # faces with no other person fall back to the same person
            expected_same += (1 - self.same_share) * (n - others) / n
        return {
            "faces": n,
            "persons": self.num_persons,
            "faces_with_second_photo": multi,
            "same_share": self.same_share,
            "expected_same_share": expected_same,
        }

    # ---- pair choice ------------------------------------------------------------------------
    def draw_reference(self, index: int, gen: torch.Generator) -> tuple[int, bool]:
        """``(reference index, same person)`` for the item at ``index`` (consumes ``gen``)."""
        group = self._group_of[index]
        n = len(self)
        want_same = bool(torch.rand((), generator=gen, dtype=torch.float64) < self.same_share)
        r = float(torch.rand((), generator=gen, dtype=torch.float64))
        n_other = n - len(group)
        if want_same or n_other == 0:
            if len(group) >= 2:
                k = min(int(r * (len(group) - 1)), len(group) - 2)
                # the k-th member of the group other than index
                return (group[k] if group[k] < index else group[k + 1]), True
            if self.same_image or n_other == 0:
                return index, True
        # the j-th row outside the group: step over the group's (sorted) members
        t = min(int(r * n_other), n_other - 1)
        for g in group:
            if g > t:
                break
            t += 1
        return t, False

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        epoch, index = (
            (int(key[0]), int(key[1])) if isinstance(key, tuple) else (self.faces.epoch, int(key))
        )
        item = self.faces[(epoch, index)]
        gen = pair_generator(self.seed, epoch, index)
        ref_index, same = self.draw_reference(index, gen)
        flip = bool(torch.rand((), generator=gen) < 0.5) and self.mirror
        ref_row = self.faces.rows[ref_index]
        reference = from_uint8(self.faces._read_rgb(ref_row))
        ref_landmarks = self.faces._read_landmarks(ref_row)
        if flip:
            reference = hflip(reference)
            ref_landmarks = mirror_landmarks(ref_landmarks, reference.shape[-1])
        item["reference"] = reference
        item["reference_landmarks"] = ref_landmarks
        item["reference_index"] = torch.tensor(ref_index, dtype=torch.int64)
        item["reference_id"] = ref_row["id"]
        item["same"] = torch.tensor(1.0 if same else 0.0)
        return item

    def __repr__(self) -> str:
        return (
            f"PairedFaces(root={str(self.root)!r}, n={len(self)}, persons={self.num_persons}, "
            f"same_share={self.same_share}, same_image={self.same_image}, "
            f"mask={self.faces.mask!r}, mirror={self.mirror}, seed={self.seed})"
        )


class PairDataModule(FaceDataModule):
    """``FaceDataModule`` whose datasets are ``PairedFaces``; no image pyramid is built.

    Validation pairs are drawn inside the validation persons (held out from training), with
    epoch 0 keys, so they are the same at every evaluation.

    Args:
        same_share: probability of asking for a same-person reference (see ``PairedFaces``).
        same_image: use the image itself when its person has one photo (see ``PairedFaces``).
        root, train_split, val_split, test_split, val_fraction, batch_size, num_workers, mirror,
        seed, mask, pin_memory, persistent_workers, drop_last: see ``FaceDataModule``.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        train_split: str | None = "train",
        val_split: str | None = "val",
        test_split: str | None = "test",
        val_fraction: float = 0.1,
        batch_size: int = 16,
        num_workers: int = 0,
        mirror: bool = True,
        seed: int = 0,
        mask: MaskFn | None = None,
        same_share: float = 0.5,
        same_image: bool = False,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        drop_last: bool = True,
    ) -> None:
        super().__init__(
            root=root,
            train_split=train_split,
            val_split=val_split,
            test_split=test_split,
            val_fraction=val_fraction,
            batch_size=batch_size,
            num_workers=num_workers,
            mirror=mirror,
            seed=seed,
            mask=mask,
            pyramid_sizes=(),
            pin_memory=pin_memory,
            persistent_workers=persistent_workers,
            drop_last=drop_last,
        )
        if not 0.0 <= same_share <= 1.0:
            raise ValueError(f"same_share must be in [0, 1], got {same_share}")
        self.same_share = float(same_share)
        self.same_image = bool(same_image)

    def _dataset(self, root, rows: list[dict], train: bool) -> PairedFaces:  # type: ignore[override]
        ds = PairedFaces(
            root,
            mask=self.mask,
            mirror=self.mirror and train,
            seed=self.seed,
            ids=[r["id"] for r in rows],
            same_share=self.same_share,
            same_image=self.same_image,
        )
        stats = ds.statistics()
        log.info(
            "%s pairs: %d faces of %d persons, %d with a second photo; expected same-person "
            "share %.2f (asked %.2f)",
            "train" if train else "eval",
            stats["faces"],
            stats["persons"],
            stats["faces_with_second_photo"],
            stats["expected_same_share"],
            self.same_share,
        )
        return ds

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        return batch


__all__ = ["PairDataModule", "PairedFaces", "pair_generator"]
