"""Augment a prepared dataset with hallucinated context (paper §4.4, CASIA-WebFace): the
library behind ``python -m facectx.augment``.

Every face of a prepared folder is masked with its stored face hull and run through the
trained generator in Lightning's predict loop; a :class:`ShardWriter` callback writes each
batch as it arrives (``trainer.predict(..., return_predictions=False)``: nothing is held in
memory). Each synthetic image keeps its source photo and identity label, so it can be added to
a recognition training set as the same class (paper Table 2).

Output folder::

    OUT/meta.json                 checkpoint and its weights digest, input folder, shard size,
                                  frame size: a rerun that differs in any of them is refused
    OUT/shard_00000/<id>.png      outputs; shard k holds the faces at positions
    OUT/shard_00001/...           [k * shard_size, (k+1) * shard_size) of the input manifest
    OUT/manifest.csv              id, output, source, person, split, shard (MANIFEST_COLUMNS)
    OUT/skipped.csv               faces whose files could not be read: source (= id), reason, detail
    OUT/parts/                    per-rank rows while running (rank<r>.csv, skipped.rank<r>.csv),
                                  merged into manifest.csv / skipped.csv at the end

**Sharding.** A face's shard is its position in the input manifest (after the split filter)
divided by ``shard_size``, so it never depends on the number of processes, the batch it landed
in, or on resumes; shard folders stay small enough for any file system (1,000 files each by
default).

**Resuming.** The folder's bookkeeping is a :class:`facectx.folderjob.FolderJob` in its
per-process form. Each rank appends its rows to its own ``parts/rank<r>.csv`` with one write and
an fsync per batch, after the batch's images are written (atomically, via temporary files). On a
restart every rank reads ``manifest.csv`` and all parts (in ``setup``, before Lightning's
post-setup barrier, so all ranks agree), skips the ids listed there, and rank 0 deletes
temporary files and images that no row names (written just before a kill). At the end rank 0
merges the parts into ``manifest.csv`` (one atomic replace, duplicates dropped) and removes the
parts. So a run killed at any moment and restarted gives each id exactly once.

**DDP.** ``trainer=ddp`` (GPUs, bf16) or ``trainer=ddp_cpu`` (2 CPU processes, gloo). Lightning
splits the remaining faces between ranks without repeats (its predict sampler); each rank writes
only its own part file. ``trainer=gpu`` runs one GPU in ``bf16-mixed``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from torch import nn
from torch.utils.data import DataLoader, Dataset

from facectx.folderjob import PARTS
from facectx.pixels import uint8_to_unit, unit_to_uint8

log = logging.getLogger("facectx.augment")

MANIFEST = "manifest.csv"
SKIPPED = "skipped.csv"
SKIPPED_COLUMNS = ("source", "reason", "detail")  # source = the prepared face id
META = "meta.json"
MANIFEST_COLUMNS = (
    "id",  # the prepared face's id (also the output's file stem)
    "output",  # output image, relative to the output folder: shard_NNNNN/<id>.png
    "source",  # the source photo of the prepared face (its identity evidence)
    "person",  # identity label carried over from the prepared manifest
    "split",  # split carried over from the prepared manifest
    "shard",  # shard index
)
#: Exit status of the ``fail_after_batches`` test hook (as if killed by SIGKILL).
KILLED_EXIT = 137


def shard_name(shard: int) -> str:
    return f"shard_{shard:05d}"


# ---------------------------------------------------------------------------- plan


#: meta.json keys that must be equal on a rerun
COMPARE = ("input", "split", "shard_size", "size", "weights")


def folder_job(output: str | os.PathLike, record: dict[str, Any] | None = None):
    """The output folder's :class:`~facectx.folderjob.FolderJob`: ``manifest.csv`` keyed by id,
    ``skipped.csv``, per-rank parts, ``meta.json`` (compared on :data:`COMPARE`)."""
    from facectx.folderjob import FolderJob

    return FolderJob(
        output,
        results=MANIFEST,
        columns=MANIFEST_COLUMNS,
        key="id",
        skipped=SKIPPED,
        skipped_columns=SKIPPED_COLUMNS,
        record=record,
        compare=COMPARE,
        record_name=META,
        clean=("shard_*",),
    )


@dataclass
class AugmentPlan:
    """Which faces exist, which shard each goes to, and which are still to do.

    Args:
        root: prepared input folder.
        output: output folder.
        rows: input manifest rows (after the split filter), in manifest order.
        shard_size: faces per shard folder.
    """

    root: Path
    output: Path
    rows: list[dict[str, str]]
    shard_size: int

    def __post_init__(self) -> None:
        self.position = {r["id"]: i for i, r in enumerate(self.rows)}
        self.by_id = {r["id"]: r for r in self.rows}
        self.job = folder_job(self.output)

    def shard_of(self, face_id: str) -> int:
        return self.position[face_id] // self.shard_size

    def relpath(self, face_id: str) -> str:
        return f"{shard_name(self.shard_of(face_id))}/{face_id}.png"

    def done_ids(self) -> set[str]:
        """Ids with a complete output or a skip record (manifest/skipped csv or their parts)."""
        return self.job.read_done()

    def todo(self, done: set[str] | None = None) -> list[dict[str, str]]:
        done = self.done_ids() if done is None else done
        return [r for r in self.rows if r["id"] not in done]

    def clean(self) -> int:
        """Delete temporary files and images no manifest row names; returns how many."""
        n = self.job.tidy()
        done = {r["id"] for r in self.job.iter_rows("results")}
        for d in sorted(self.output.glob("shard_*")):
            if not d.is_dir():
                continue
            for p in d.glob("*.png"):
                if p.stem not in done:
                    p.unlink(missing_ok=True)
                    n += 1
        return n


def part_path(output: Path, kind: str, rank: int) -> Path:
    """A rank's part file of ``kind`` ("manifest" or "skipped")."""
    return folder_job(output).part_path("results" if kind == "manifest" else "skipped", rank)


def iter_rows(output: Path, kind: str) -> Iterable[dict[str, str]]:
    """Rows of the merged file of ``kind`` ("manifest" or "skipped"), then of its parts."""
    return folder_job(output).iter_rows("results" if kind == "manifest" else "skipped")


def merge_manifest(output: Path, plan: AugmentPlan | None = None) -> int:
    """Merge the parts into ``manifest.csv`` and ``skipped.csv`` (atomic replaces, first row
    per id wins, input order when ``plan`` is given); removes the parts; returns the number of
    manifest rows."""
    if plan is None:
        return folder_job(output).merge()
    return plan.job.merge(lambda face_id: plan.position.get(face_id, len(plan.rows)))


# ---------------------------------------------------------------------------- data


class MaskedFaces(Dataset):
    """Aligned face + stored hull mask as uint8 tensors (converted on the device).

    Items: ``image`` (S, S, 3) uint8, ``mask`` (S, S) uint8 {0, 1}, ``id`` str. Reads only the
    two PNGs the generator needs (not valid/ or landmarks/), and ships uint8, a quarter of the
    bytes of float32 to the GPU. Paths and ids are kept in numpy string arrays, not Python
    objects, so forked DataLoader workers do not copy them page by page (reference counts).
    """

    def __init__(self, root: Path, rows: Sequence[dict[str, str]], size: int) -> None:
        self.root, self.size = Path(root), int(size)
        self.ids = np.array([r["id"] for r in rows], dtype=str)
        self.images = np.array([r["image"] for r in rows], dtype=str)
        self.masks = np.array([r["mask"] for r in rows], dtype=str)

    def __len__(self) -> int:
        return len(self.ids)

    def _read(self, rel: str, flags: int) -> np.ndarray:
        import cv2

        from facectx.data.datasets import PreparedFileError

        path = self.root / rel
        try:  # read the bytes ourselves: cv2.imread hides a permission or I/O error as None
            with open(path, "rb") as f:
                data = np.frombuffer(f.read(), np.uint8)
        except FileNotFoundError:
            data = np.zeros(0, np.uint8)
        arr = cv2.imdecode(data, flags) if data.size else None
        if arr is None:
            raise PreparedFileError(
                f"{path} (named in {self.root / 'manifest.csv'}) is missing or unreadable; "
                "restore it or re-run `python -m facectx.prepare` into a new folder."
            )
        if arr.shape[:2] != (self.size, self.size):
            raise ValueError(
                f"{path} is {arr.shape[1]}x{arr.shape[0]}, the model needs {self.size}"
            )
        return arr

    def __getitem__(self, i: int) -> dict[str, Any]:
        """The item; on an unreadable or wrong-sized file, zeros and the reason in ``error``
        (the writer lists it in skipped.csv and the run goes on)."""
        import cv2

        s = self.size
        try:
            bgr = self._read(str(self.images[i]), cv2.IMREAD_COLOR)
            mask = self._read(str(self.masks[i]), cv2.IMREAD_GRAYSCALE)
        except (OSError, ValueError) as e:
            from facectx._jobrecord import is_environmental

            if is_environmental(e):  # the machine's problem (I/O error, no memory): stop
                raise
            bgr, mask, error = np.zeros((s, s, 3), np.uint8), np.zeros((s, s), np.uint8), str(e)
        else:
            error = ""
        return {
            "image": torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1])),
            "mask": torch.from_numpy((mask > 127).astype(np.uint8)),
            "id": str(self.ids[i]),
            "error": error,
        }


class AugmentData(pl.LightningDataModule):
    """Predict loader over the faces of a prepared folder that are not done yet.

    ``setup`` reads what is done (every rank, before Lightning's post-setup barrier) and on
    rank 0 deletes leftovers of a killed run, so all ranks agree on the same to-do list.

    Args:
        plan: faces, shards and the output folder.
        size: image size the model takes.
        batch_size: faces per predict step.
        num_workers: DataLoader worker processes.
        pin_memory: pin host memory (GPU).
    """

    def __init__(
        self,
        plan: AugmentPlan,
        size: int,
        batch_size: int = 64,
        num_workers: int = 2,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        self.plan, self.size = plan, int(size)
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.todo: list[dict[str, str]] | None = None
        self.already_done = 0

    def setup(self, stage: str | None = None) -> None:
        done = self.plan.done_ids()
        self.todo = self.plan.todo(done)
        self.already_done = len(self.plan.rows) - len(self.todo)
        if self.trainer is None or self.trainer.is_global_zero:
            removed = self.plan.clean()
            if removed:
                log.info("removed %d leftover files of an interrupted run", removed)

    def predict_dataloader(self) -> DataLoader:
        assert self.todo is not None, "setup() first"
        return DataLoader(
            MaskedFaces(self.plan.root, self.todo, self.size),
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=False,
        )


# ---------------------------------------------------------------------------- model


class AugmentModule(pl.LightningModule):
    """Wraps an inference generator for ``trainer.predict``: uint8 faces in, uint8 portraits out.

    Face pixels (mask 1) are copied from the input in uint8, so they are bit-exact under any
    precision (bf16 included).

    Args:
        generator: a module with ``hallucinate(masked, mask) -> (B, 3, S, S)`` in [-1, 1]
            (e.g. :class:`facectx.zoo.CascadeGenerator`); frozen and put in eval mode.
        channels_last: run convolutions in channels-last memory format (faster on GPUs).
    """

    def __init__(self, generator: nn.Module, channels_last: bool = False) -> None:
        super().__init__()
        self.generator = generator.eval().requires_grad_(False)
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.generator = self.generator.to(memory_format=torch.channels_last)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        image_u8 = batch["image"].permute(0, 3, 1, 2)  # (B, 3, S, S) uint8
        keep = batch["mask"][:, None].bool()  # (B, 1, S, S)
        mask = keep.float()
        image = uint8_to_unit(image_u8)
        masked = image * mask - (1.0 - mask)
        if self.channels_last:
            masked = masked.contiguous(memory_format=torch.channels_last)
        out_u8 = unit_to_uint8(self.generator.hallucinate(masked, mask))
        out_u8 = torch.where(keep, image_u8, out_u8)
        return {
            "image": out_u8.permute(0, 2, 3, 1).contiguous().cpu(),
            "id": list(batch["id"]),
            "error": list(batch.get("error", [""] * len(batch["id"]))),
        }


# ---------------------------------------------------------------------------- writer


class ShardWriter(BasePredictionWriter):
    """Writes each predicted batch into its shard folders and appends the rank's part manifest.

    Args:
        plan: faces, shards and the output folder.
        png_compression: zlib level 0-9 of the PNGs (0 = fastest, largest).
        write_threads: threads encoding and writing PNGs (OpenCV releases the GIL).
        fail_after_batches: test hook: after this many batches, write the next batch's images
            and a stray temporary file, then exit the process at once with status 137 without
            appending the batch's rows (what a kill at the worst moment leaves). None = off.
    """

    def __init__(
        self,
        plan: AugmentPlan,
        png_compression: int = 1,
        write_threads: int = 4,
        fail_after_batches: int | None = None,
    ) -> None:
        super().__init__(write_interval="batch")
        self.plan = plan
        self.png_compression = int(png_compression)
        self.write_threads = max(1, int(write_threads))
        self.fail_after_batches = fail_after_batches
        self.count = 0
        self.batches = 0
        self.seconds = 0.0
        self.total = 0
        self.total_skipped = 0
        self._t0 = 0.0
        self.skipped = 0
        self._pool: ThreadPoolExecutor | None = None

    def on_predict_start(self, trainer, pl_module) -> None:
        self.plan.job.open_csvs(rank=trainer.global_rank)  # this rank's parts/ files
        self._pool = ThreadPoolExecutor(self.write_threads, thread_name_prefix="augment-write")
        self._t0 = time.perf_counter()

    def _write_one(self, face_id: str, image: np.ndarray) -> dict[str, str]:
        from facectx.faces.io import write_png

        rel = self.plan.relpath(face_id)
        path = self.plan.output / rel
        path.parent.mkdir(exist_ok=True)
        write_png(path, image, self.png_compression)
        row = self.plan.by_id[face_id]
        return {
            "id": face_id,
            "output": rel,
            "source": row.get("source", ""),
            "person": row.get("person", ""),
            "split": row.get("split", ""),
            "shard": self.plan.shard_of(face_id),
        }

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0
    ) -> None:
        images = prediction["image"].numpy()
        assert self._pool is not None
        errors = prediction["error"]
        ok = [k for k, e in enumerate(errors) if not e]
        for k in range(len(errors)):
            if errors[k]:
                self.plan.job.skip(prediction["id"][k], "unreadable", errors[k])
                self.skipped += 1
        ids = [prediction["id"][k] for k in ok]
        rows = list(self._pool.map(self._write_one, ids, images[ok]))
        if self.fail_after_batches is not None and self.batches >= self.fail_after_batches and rows:
            stray = self.plan.output / rows[0]["output"]
            stray.with_name(f".{stray.name}.{os.getpid()}.tmp").write_bytes(b"partial")
            log.warning("fail_after_batches=%d: exiting like a kill", self.fail_after_batches)
            os._exit(KILLED_EXIT)
        self.plan.job.done(rows)  # one write + fsync: the batch is listed whole or not at all
        self.count += len(rows)
        self.batches += 1

    def on_predict_end(self, trainer, pl_module) -> None:
        self.seconds = time.perf_counter() - self._t0
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.plan.job.close()
        total, skipped = self.count, self.skipped
        if trainer.world_size > 1:
            t = torch.tensor([float(self.count), float(self.skipped)], device=pl_module.device)
            t = trainer.strategy.reduce(t, reduce_op="sum")
            total, skipped = int(t[0].item()), int(t[1].item())
        self.total, self.total_skipped = total, skipped
        trainer.strategy.barrier("augment-merge")
        if trainer.is_global_zero:
            n = merge_manifest(self.plan.output, self.plan)
            rate = total / self.seconds if self.seconds > 0 else 0.0
            msg = (
                f"augment: {total} images in {self.seconds:.1f} s = {rate:.1f} img/s "
                f"({trainer.world_size} process(es), precision {trainer.precision}); "
                f"{skipped} unreadable faces skipped; manifest {self.plan.output / MANIFEST}: "
                f"{n} of {len(self.plan.rows)} faces"
            )
            log.info(msg)  # the CLI's console; API callers get it in augment()'s result too


# ---------------------------------------------------------------------------- entry points


def plan_for(
    root: str | os.PathLike, output: str | os.PathLike, split: str | None, shard_size: int
) -> AugmentPlan:
    from facectx.data.manifest import read_manifest

    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    root = Path(root).expanduser().resolve()
    output = Path(output).expanduser().resolve()
    if output == root:
        raise ValueError(f"output must differ from the input folder ({root})")
    keep = ("id", "image", "mask", "source", "person", "split")  # what the run needs, no more
    rows = [{k: r.get(k, "") for k in keep} for r in read_manifest(root, split)]
    if not rows:
        raise ValueError(f"no faces in {root} for split={split!r}")
    return AugmentPlan(root, output, rows, int(shard_size))


def augment(
    ckpt: str | None,
    root: str,
    output: str,
    trainer: pl.Trainer | None = None,
    split: str | None = None,
    batch_size: int = 64,
    num_workers: int = 2,
    pin_memory: bool = False,
    shard_size: int = 1000,
    png_compression: int = 1,
    write_threads: int = 4,
    use_ema: bool = True,
    channels_last: bool = False,
    fail_after_batches: int | None = None,
    generator: nn.Module | None = None,
) -> dict[str, Any]:
    """Hallucinate every not-yet-done face of a prepared folder into sharded output.

    Args:
        ckpt: checkpoint written by ``python -m facectx.train``; None = the shipped model.
        root: prepared input folder.
        output: output folder (layout in the module docstring); resumed when it exists.
        trainer: a configured ``pl.Trainer`` (devices, strategy, precision); None = one CPU.
            Its callbacks get a :class:`ShardWriter` added.
        split: only faces of this manifest split; None = all.
        batch_size: faces per predict step (per process).
        num_workers: DataLoader workers per process.
        pin_memory: pin host memory (GPU runs).
        shard_size: faces per shard folder.
        png_compression: zlib level of the output PNGs.
        write_threads: PNG writer threads per process.
        use_ema: EMA generator weights when the checkpoint has them.
        channels_last: channels-last convolutions (GPU).
        fail_after_batches: test hook of :class:`ShardWriter`.
        generator: a generator to use instead of the checkpoint's (benchmarks); ``ckpt`` is
            then only recorded.

    Returns:
        ``{"written", "skipped", "already_done", "total", "seconds", "img_per_s", "manifest"}``
        (written, skipped and img/s summed over processes; already_done counts skip records).
    """
    from facectx._jobrecord import weights_digest
    from facectx.data.datasets import frame_size

    if generator is None:
        from facectx.inference.hallucinator import cascade_generator, load_hallucinator

        model = load_hallucinator(ckpt, use_ema=use_ema)
        generator, ckpt = cascade_generator(model, "augment"), model.source
    size = int(generator.sizes[-1])
    plan = plan_for(root, output, split, shard_size)
    stored = frame_size(plan.root)
    if stored is not None and stored != size:
        raise ValueError(
            f"{plan.root} holds {stored} px faces but the model takes {size} px; prepare the "
            f"photos again with size={size}."
        )
    # meta.json: refuse to continue a run made with another model, input, split, shard size
    # or frame size (facectx._jobrecord.check_or_record)
    plan.job.record = {
        "input": str(plan.root),
        "split": split,
        "shard_size": plan.shard_size,
        "size": size,
        "ckpt": str(ckpt),
        "weights": weights_digest(generator),
        "columns": list(MANIFEST_COLUMNS),
    }
    plan.job.check()
    if trainer is None:
        trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_model_summary=False)
    if not plan.todo():  # nothing left (no rank is writing, so every rank sees the same)
        if trainer.is_global_zero:
            plan.clean()
            merge_manifest(plan.output, plan)  # parts of a run killed after its last batch
        log.info("augment: all %d faces already done; %s", len(plan.rows), plan.output)
        return {
            "written": 0,
            "skipped": 0,
            "already_done": len(plan.rows),
            "total": len(plan.rows),
            "seconds": 0.0,
            "img_per_s": 0.0,
            "manifest": str(plan.output / MANIFEST),
        }
    writer = ShardWriter(plan, png_compression, write_threads, fail_after_batches)
    trainer.callbacks.append(writer)
    data = AugmentData(plan, size, batch_size, num_workers, pin_memory)
    module = AugmentModule(generator, channels_last)
    trainer.predict(module, datamodule=data, return_predictions=False)
    return {
        "written": writer.total,
        "skipped": writer.total_skipped,
        "already_done": data.already_done,
        "total": len(plan.rows),
        "seconds": writer.seconds,
        "img_per_s": writer.total / writer.seconds if writer.seconds > 0 else 0.0,
        "manifest": str(plan.output / MANIFEST),
    }


__all__ = [
    "KILLED_EXIT",
    "MANIFEST_COLUMNS",
    "PARTS",
    "AugmentData",
    "AugmentModule",
    "AugmentPlan",
    "MaskedFaces",
    "ShardWriter",
    "augment",
    "folder_job",
    "merge_manifest",
    "plan_for",
]
