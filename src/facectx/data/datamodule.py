"""Lightning data module over a prepared face folder (or the embedded sample)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from facectx.data.datasets import EpochSampler, MaskFn, PreparedFaces
from facectx.data.loader import ResumableDataLoader
from facectx.data.manifest import ManifestError, person_key, read_manifest
from facectx.data.transforms import holdout_generator
from facectx.zoo.pyramid import build_pyramid


def holdout(
    rows: list[dict[str, str]], fraction: float, seed: int
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Split rows into (train, val) deterministically, holding out ``fraction`` of the groups.

    Groups are persons when rows have them (so no identity is in both parts), else single rows;
    rows without a person form a group each. At least one group stays on each side when there
    are two or more groups; with one group (or ``fraction <= 0``) val is empty.
    """
    keys = [person_key(r) for r in rows]
    groups = sorted(set(keys))
    n_val = min(len(groups) - 1, max(1, round(fraction * len(groups)))) if fraction > 0 else 0
    if n_val <= 0:
        return list(rows), []
    order = torch.randperm(len(groups), generator=holdout_generator(seed)).tolist()
    val_groups = {groups[i] for i in order[:n_val]}
    train = [r for r, k in zip(rows, keys) if k not in val_groups]
    val = [r for r, k in zip(rows, keys) if k in val_groups]
    return train, val


class FaceDataModule(pl.LightningDataModule):
    """Train/val/test loaders of ``PreparedFaces``, plus the image pyramid on the device.

    ``on_after_batch_transfer`` adds ``batch["pyramid"] = build_pyramid(image, masked, mask,
    pyramid_sizes, valid)`` after the batch reaches the device, so workers only decode files.
    The train loader uses ``EpochSampler``: Lightning calls its ``set_epoch`` every epoch, so masks
    and mirroring vary per epoch yet are fixed by ``seed``. Val/test/predict are unshuffled, not
    mirrored, and use epoch 0, so their (random) masks are identical on every evaluation.

    Args:
        root: prepared folder; None = the embedded sample (``facectx.assets.sample_root()``).
        train_split: manifest split for training; None = every row not in val/test split.
        val_split: split for validation. If it has no rows, ``val_fraction`` of the training
            persons (or rows, without person labels) is held out instead, chosen by ``seed``.
        test_split: split for test and predict.
        val_fraction: fraction held out for validation when ``val_split`` is empty; 0 = no val.
        batch_size: faces per batch.
        num_workers: DataLoader worker processes (0 = load in the main process).
        mirror: random left-right flips for training.
        seed: base of every random choice (order, flips, masks, the val holdout).
        mask: keep-mask callable ``(size, landmarks, generator) -> (1, S, S)``; None = stored hull.
        pyramid_sizes: square sizes of ``batch["pyramid"]``, each <= the image size.
        pin_memory: pin host memory for faster GPU transfer.
        persistent_workers: keep workers alive between epochs (only with ``num_workers > 0``).
        drop_last: drop the last incomplete training batch (ignored when the train set is smaller
            than one batch, which would otherwise give empty epochs).
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
        pyramid_sizes: Sequence[int] = (8, 16, 32, 64, 128),
        pin_memory: bool = False,
        persistent_workers: bool = False,
        drop_last: bool = True,
    ):
        super().__init__()
        if batch_size < 1 or num_workers < 0 or not 0.0 <= val_fraction < 1.0:
            raise ValueError("need batch_size >= 1, num_workers >= 0 and 0 <= val_fraction < 1")
        self.root = root
        self.train_split, self.val_split, self.test_split = train_split, val_split, test_split
        self.val_fraction = float(val_fraction)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.mirror = bool(mirror)
        self.seed = int(seed)
        self.mask = mask
        self.pyramid_sizes = tuple(sorted({int(s) for s in pyramid_sizes}))
        self.pin_memory = bool(pin_memory)
        self.persistent_workers = bool(persistent_workers) and self.num_workers > 0
        self.drop_last = bool(drop_last)
        self.train_set: PreparedFaces | None = None
        self.val_set: PreparedFaces | None = None
        self.test_set: PreparedFaces | None = None

    def resolve_root(self) -> Path:
        """The prepared folder: ``root``, or the embedded sample (imported only here)."""
        if self.root is not None:
            return Path(self.root).expanduser().resolve()
        try:
            from facectx.assets import sample_root
        except ImportError as e:
            raise ManifestError(
                "data.root is null, which means the embedded sample, but it is not available "
                f"({e}). Pass data.root=<prepared folder> (see docs/datasets.md)."
            ) from e
        return Path(sample_root())

    def _train_val_rows(self, root: Path) -> tuple[list[dict], list[dict]]:
        if self.train_split is not None:
            train = read_manifest(root, self.train_split)
        else:
            others = {s for s in (self.val_split, self.test_split) if s is not None}
            train = [r for r in read_manifest(root) if r.get("split", "") not in others]
        if not train:
            present = sorted({r.get("split", "") for r in read_manifest(root)})
            raise ManifestError(
                f"no training faces in {root} for train_split={self.train_split!r}; splits "
                f"present: {present}. Set data.train_split (null = every row not in val/test)."
            )
        val = read_manifest(root, self.val_split) if self.val_split is not None else []
        if not val:
            train, val = holdout(train, self.val_fraction, self.seed)
            if not val and self.val_fraction > 0:
                warnings.warn(
                    f"val split {self.val_split!r} is empty and the training set has a single "
                    "person: no validation set",
                    stacklevel=2,
                )
        return train, val

    def _dataset(self, root: Path, rows: list[dict], train: bool) -> PreparedFaces:
        ds = PreparedFaces(
            root,
            mask=self.mask,
            mirror=self.mirror and train,
            seed=self.seed,
            ids=[r["id"] for r in rows],
        )
        too_big = [s for s in self.pyramid_sizes if s > ds.size]
        if too_big:
            raise ValueError(
                f"pyramid_sizes {list(self.pyramid_sizes)} include {too_big}, larger than the "
                f"{ds.size}px images of {root}; set data.pyramid_sizes to sizes <= {ds.size}"
            )
        return ds

    def setup(self, stage: str | None = None) -> None:
        root = self.resolve_root()
        if stage in (None, "fit", "validate") and self.train_set is None:
            train, val = self._train_val_rows(root)
            self.train_set = self._dataset(root, train, train=True)
            self.val_set = self._dataset(root, val, train=False) if val else None
        if stage in (None, "test", "predict") and self.test_set is None:
            rows = read_manifest(root, self.test_split)
            if not rows and stage is not None:
                raise ManifestError(f"no faces in {root} for test_split={self.test_split!r}")
            self.test_set = self._dataset(root, rows, train=False) if rows else None

    def _loader(self, ds: PreparedFaces, train: bool) -> DataLoader:
        sampler = EpochSampler(len(ds), shuffle=True, seed=self.seed) if train else None
        return (ResumableDataLoader if train else DataLoader)(
            ds,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            # pinning needs a GPU; on CPU it only triggers a warning
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.persistent_workers,
            drop_last=train and self.drop_last and len(ds) >= self.batch_size,
        )

    def _need(self, ds: PreparedFaces | None, what: str) -> PreparedFaces:
        if ds is None:
            raise RuntimeError(f"no {what} set: call setup() first (the {what} split may be empty)")
        return ds

    def train_dataloader(self) -> DataLoader:
        return self._loader(self._need(self.train_set, "train"), train=True)

    def val_dataloader(self) -> DataLoader | list:
        """The val loader, or ``[]`` (Lightning then skips validation) when there is none."""
        return self._loader(self.val_set, train=False) if self.val_set is not None else []

    def test_dataloader(self) -> DataLoader:
        return self._loader(self._need(self.test_set, "test"), train=False)

    def predict_dataloader(self) -> DataLoader:
        """The test split in manifest order, without mirroring."""
        return self._loader(self._need(self.test_set, "test"), train=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if isinstance(batch, dict) and "image" in batch and "pyramid" not in batch:
            batch["pyramid"] = build_pyramid(
                batch["image"],
                batch["masked"],
                batch["mask"],
                self.pyramid_sizes,
                batch.get("valid"),
            )
        return batch
