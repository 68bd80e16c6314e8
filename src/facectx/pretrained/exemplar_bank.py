"""The packed exemplar bank: the training faces of the ``exemplar`` model in one file.

The exemplar model (``facectx.zoo.exemplar``) needs, for every training face, its
picture (the context it lends), its face hull and valid pixels, its landmarks and the retrieval
descriptors. A packed bank holds them in one ``torch.save`` file, so the model ships and runs
without the dataset (``ExemplarHallucinator``, ``Exemplar(bank=...)``). Record::

    facectx         metadata: kind "exemplar_bank", format, size, frame, source, faces, jpeg,
                    feature (identity network or None), weights and fit (the settings the bank
                    was chosen with), hull ("landmarks" or "stored"), one_per_person, max_faces
    ids, persons    lists of str, row j = face j (persons "" when unknown)
    jpeg            uint8 (total,): every face's S×S RGB picture as JPEG, concatenated
    jpeg_offsets    int64 (N + 1,): face j is jpeg[offsets[j]:offsets[j + 1]]
    landmarks       float32 (N, 68, 2) aligned (x, y) px (float16 would move the face hulls
                    drawn from them by up to tens of pixels)
    valid_bits      uint8: zlib (level 9) of the (N, ceil(S²/8)) numpy.packbits of the valid
                    masks, row-major
    hull_bits       as valid_bits, only when the hulls are not the landmarks' convex hull
                    (``facectx.masks.kinds.face_hull``, the stored hull of a prepared folder),
                    which is drawn again on load otherwise
    identity        float16 (N, D) identity features of the masked faces (absent: no feature)
    colour_mean/std float32 (N, 3) Lab statistics of the visible face (``describe_faces``)
    ring            float32 (N, SECTORS, 3) the seam term's outer rings (``ring_colours``; NaN
                    = no pixel), optional: computed from the pictures on load when absent
    harmoniser      optional (format 2): the float32 state dict of the context harmoniser
                    (``facectx.zoo.harmoniser.ContextHarmoniser``) that re-lights every fitted
                    context; its constructor arguments and training iteration are in the
                    metadata's ``harmoniser``

The shape, hull and valid descriptors are computed again on load from the landmarks and masks
(the same functions as for a prepared folder, so they are equal). Writing is deterministic: the
same faces and settings give the same bytes, so a shipped bank's sha256 can be reproduced from
its build command (``python -m facectx.bank``, :func:`facectx.inference.exemplar.pack_bank`).
"""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from facectx.checkpoint import CheckpointError
from facectx.pretrained.hallucinators import save_record
from facectx.zoo.exemplar import (
    SECTORS,
    ExemplarBank,
    dark_border,
    ring_colours,
    shape_descriptor,
    small_mask,
)

KIND = "exemplar_bank"
#: the newest format this facectx reads; a bank is written as format 1 unless it holds a
#: harmoniser (2), which an older facectx would ignore and so give other portraits
FORMAT = 2
#: JPEG chroma subsampling of the pictures (Pillow's 2 = 4:2:0), fixed so bytes are reproducible
SUBSAMPLING = 2
#: faces whose masks are rasterised at a time on load (bounds the memory of the descriptors)
CHUNK = 256
_TENSORS = ("jpeg", "jpeg_offsets", "landmarks", "valid_bits", "colour_mean", "colour_std")


class BankError(CheckpointError):
    """A file that is not a readable facectx exemplar bank; the message names it."""


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """(S, S, 3) uint8 RGB -> JPEG bytes (Pillow, ``optimize``, :data:`SUBSAMPLING`)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(
        buf, "JPEG", quality=int(quality), optimize=True, subsampling=SUBSAMPLING
    )
    return buf.getvalue()


def pack_bits(masks: np.ndarray) -> np.ndarray:
    """(N, S, S) {0, 1} -> (N, ceil(S²/8)) uint8."""
    return np.packbits(np.asarray(masks).reshape(len(masks), -1).astype(bool), axis=1)


def write_bank(
    path: str | os.PathLike,
    meta: Mapping[str, Any],
    ids: Sequence[str],
    persons: Sequence[str],
    jpegs: Sequence[bytes],
    landmarks: Tensor,
    valid_bits: np.ndarray,
    colour_mean: Tensor,
    colour_std: Tensor,
    identity: Tensor | None = None,
    hull_bits: np.ndarray | None = None,
    ring: Tensor | None = None,
    harmoniser: Mapping[str, Tensor] | None = None,
) -> Path:
    """Write a bank record (layout in the module docstring) to ``path`` atomically.

    Args:
        path: the file to write (its folder is created).
        meta: metadata (``size`` required); ``kind`` and ``format`` are added.
        ids, persons: one per face.
        jpegs: each face's picture (:func:`encode_jpeg`).
        landmarks: (N, 68, 2) aligned px.
        valid_bits: (N, B) :func:`pack_bits` of the valid masks.
        colour_mean, colour_std: (N, 3) Lab face statistics.
        identity: (N, D) identity features (stored in float16); None = none.
        hull_bits: (N, B) packed face hulls, when they are not the landmarks' hull; None = drawn
            again from the landmarks on load.
        ring: (N, SECTORS, 3) outer rings of the seam term; None = computed on load.
        harmoniser: the context harmoniser's state dict (stored in float32); ``meta`` must
            then hold its ``harmoniser`` record (:func:`read_harmoniser`). None = none.
    """
    n = len(ids)
    offsets = np.zeros(n + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in jpegs])
    record: dict[str, Any] = {
        "facectx": {"kind": KIND, "format": 1 if harmoniser is None else FORMAT, **meta},
        "ids": [str(i) for i in ids],
        "persons": [str(p) for p in persons],
        "jpeg": torch.frombuffer(bytearray(b"".join(jpegs)), dtype=torch.uint8),
        "jpeg_offsets": torch.from_numpy(offsets),
        "landmarks": landmarks.detach().float().cpu().contiguous(),
        "valid_bits": _zip_bits(valid_bits),
        "colour_mean": colour_mean.detach().float().cpu().contiguous(),
        "colour_std": colour_std.detach().float().cpu().contiguous(),
    }
    if hull_bits is not None:
        record["hull_bits"] = _zip_bits(hull_bits)
    if identity is not None:
        record["identity"] = identity.detach().cpu().to(torch.float16).contiguous()
    if ring is not None:
        record["ring"] = ring.detach().float().cpu().contiguous()
    if harmoniser is not None:
        record["harmoniser"] = {
            k: v.detach().float().cpu().contiguous() for k, v in harmoniser.items()
        }
    _check(record, Path(path))
    return save_record(record, path)


def _zip_bits(bits: np.ndarray) -> torch.Tensor:
    """Packed mask bits, zlib-compressed (level 9, deterministic): the masks are mostly ones,
    so this takes the 2 KB per face of raw 128 px bits down to a few dozen bytes."""
    data = zlib.compress(np.ascontiguousarray(bits, dtype=np.uint8).tobytes(), 9)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _unzip_bits(blob: torch.Tensor, n: int, size: int) -> np.ndarray | None:
    """(n, ceil(size²/8)) uint8 from :func:`_zip_bits`' blob; None if it does not decompress
    to that many bytes."""
    width = (size * size + 7) // 8
    try:
        raw = zlib.decompress(blob.numpy().tobytes())
    except zlib.error:
        return None
    if len(raw) != n * width:
        return None
    return np.frombuffer(raw, dtype=np.uint8).reshape(n, width)


def is_bank(record: Any) -> bool:
    """Whether a loaded file is an exemplar bank record."""
    meta = record.get("facectx") if isinstance(record, dict) else None
    return isinstance(meta, dict) and meta.get("kind") == KIND


def _check(record: dict, path: Path) -> None:
    """BankError naming ``path`` unless the record's parts agree with each other."""
    meta = record["facectx"]
    n, size = len(record.get("ids", ())), meta.get("size")
    expect: dict[str, tuple] = {
        "jpeg_offsets": (n + 1,),
        "landmarks": (n, 68, 2),
        "colour_mean": (n, 3),
        "colour_std": (n, 3),
        **({"ring": (n, SECTORS, 3)} if "ring" in record else {}),
    }
    problems = [f"missing {k}" for k in (*_TENSORS, "ids", "persons") if k not in record]
    for key in ("valid_bits", "hull_bits"):
        blob = record.get(key)
        if isinstance(size, int) and blob is not None:
            bits = _unzip_bits(blob, n, size) if torch.is_tensor(blob) else None
            if bits is None:
                problems.append(f"{key} do not hold {n} masks of {size}x{size}")
    if not isinstance(size, int) or size < 1:
        problems.append(f"size {size!r}")
    for key, shape in expect.items():
        t = record.get(key)
        if t is not None and (not torch.is_tensor(t) or tuple(t.shape) != shape):
            got = tuple(t.shape) if torch.is_tensor(t) else type(t).__name__
            problems.append(f"{key} {got}, expected {shape}")
    if not problems and len(record["persons"]) != n:
        problems.append(f"{len(record['persons'])} persons for {n} ids")
    if not problems and int(record["jpeg_offsets"][-1]) != record["jpeg"].numel():
        problems.append("jpeg offsets do not match the jpeg bytes (truncated?)")
    ident = record.get("identity")
    if not problems and ident is not None and (ident.ndim != 2 or len(ident) != n):
        problems.append(f"identity {tuple(ident.shape)} for {n} faces")
    has_state, has_meta = "harmoniser" in record, isinstance(meta.get("harmoniser"), Mapping)
    if has_state != has_meta:
        problems.append(
            "harmoniser weights without their record" if has_state else "no harmoniser weights"
        )
    if problems:
        raise BankError(f"{path} is a corrupt exemplar bank: {'; '.join(problems)}")


class PackedBank:
    """A loaded bank: descriptors as an :class:`ExemplarBank` and its faces' pixels by row.

    Also an ``ExemplarSource`` (:meth:`exemplars`) for ``facectx.zoo.exemplar.ExemplarModel``.

    Args:
        record: the loaded record (layout in the module docstring).
        path: the file it came from (named in errors), or None.
    """

    def __init__(self, record: dict, path: str | os.PathLike | None = None) -> None:
        self.path = None if path is None else Path(path)
        if not is_bank(record):
            raise BankError(
                f"{self.path} is not a facectx exemplar bank; build one with "
                "`python -m facectx.bank train_root=PREPARED output=FILE`"
            )
        _check(record, self.path)
        self.meta: dict[str, Any] = dict(record["facectx"])
        if int(self.meta.get("format", 0)) > FORMAT:
            raise BankError(
                f"{self.path}: exemplar bank format {self.meta['format']} is newer than this "
                f"facectx reads ({FORMAT}); upgrade facectx"
            )
        self.size: int = int(self.meta["size"])
        self.frame: dict | None = self.meta.get("frame")
        self._jpeg = record["jpeg"].numpy()
        self._offsets = record["jpeg_offsets"].tolist()
        self._landmarks = record["landmarks"].float()
        n_faces = len(record["ids"])
        self._valid = _unzip_bits(record["valid_bits"], n_faces, self.size)
        self._hull = (
            _unzip_bits(record["hull_bits"], n_faces, self.size) if "hull_bits" in record else None
        )
        ident = record.get("identity")
        n = len(record["ids"])
        self.bank = ExemplarBank(
            ids=list(record["ids"]),
            persons=list(record["persons"]),
            identity=(
                torch.zeros(n, 1)
                if ident is None
                else torch.nn.functional.normalize(ident.float(), dim=1)
            ),
            shape=shape_descriptor(self._landmarks),
            colour_mean=record["colour_mean"].float(),
            colour_std=record["colour_std"].float(),
            hull=self._small(self.hulls, n),
            valid=self._small(self.valids, n),
            ring=record["ring"].float() if "ring" in record else self._rings(n),
        )
        self.harmoniser = (
            self._harmoniser(self.meta["harmoniser"], record["harmoniser"])
            if "harmoniser" in record
            else None
        )

    def _harmoniser(self, info: Mapping[str, Any], state: Mapping[str, Tensor]):
        """The stored context harmoniser, ready for inference (BankError when its weights do
        not fit its record)."""
        try:
            return harmoniser_net(info, state)
        except ValueError as e:
            raise BankError(f"{self.path}: its context harmoniser does not load ({e})") from e

    def __len__(self) -> int:
        return len(self.bank)

    @staticmethod
    def _small(masks, n: int) -> Tensor:
        """:func:`small_mask` of rows 0..n-1 of ``masks(rows)``, :data:`CHUNK` rows at a time."""
        return torch.cat(
            [small_mask(masks(range(i, min(i + CHUNK, n)))) for i in range(0, n, CHUNK)]
        )

    def _rings(self, n: int) -> Tensor:
        """The seam term's outer rings (:func:`ring_colours`) of every face, computed from the
        pictures on load (:data:`CHUNK` at a time), so older bank files get them too."""
        parts = []
        for i in range(0, n, CHUNK):
            rows = range(i, min(i + CHUNK, n))
            image, hull, valid = self.images(rows), self.hulls(rows), self.valids(rows)
            valid = valid * (1 - dark_border(image))
            parts.append(ring_colours(image, hull, valid, outside=True))
        return torch.cat(parts) if parts else torch.zeros(0, SECTORS, 3)

    @staticmethod
    def _rows(rows) -> list[int]:
        return [int(j) for j in (rows.tolist() if torch.is_tensor(rows) else rows)]

    def _unpack(self, bits: np.ndarray, rows) -> Tensor:
        s = self.size
        flat = np.unpackbits(bits[self._rows(rows)], axis=1, count=s * s)
        return torch.from_numpy(flat.reshape(-1, 1, s, s).astype(np.float32))

    def images(self, rows) -> Tensor:
        """(k, 3, S, S) pictures of bank rows in [-1, 1] (decoded from JPEG)."""
        from PIL import Image

        from facectx.pixels import from_uint8

        pics = []
        for j in self._rows(rows):
            data = self._jpeg[self._offsets[j] : self._offsets[j + 1]].tobytes()
            try:
                pics.append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
            except OSError as e:
                raise BankError(f"{self.path}: the picture of face {j} is corrupt ({e})") from e
        out = from_uint8(np.stack(pics)) if pics else torch.zeros(0, 3, self.size, self.size)
        if out.shape[-2:] != (self.size, self.size):
            raise BankError(f"{self.path}: pictures are {tuple(out.shape[-2:])}, not {self.size}")
        return out

    def hulls(self, rows) -> Tensor:
        """(k, 1, S, S) face hulls {0, 1} of bank rows."""
        if self._hull is not None:
            return self._unpack(self._hull, rows)
        from facectx.geometry.hull import hull_mask  # what masks.kinds.face_hull draws

        lms = self._landmarks[self._rows(rows)].numpy()
        out = torch.zeros(len(lms), 1, self.size, self.size)
        for hull, lm in zip(out, lms):
            hull[0] = torch.from_numpy(hull_mask(lm, self.size))
        return out

    def valids(self, rows) -> Tensor:
        """(k, 1, S, S) valid masks {0, 1} of bank rows (1 = inside the source photo)."""
        return self._unpack(self._valid, rows)

    def landmarks(self, rows) -> Tensor:
        """(k, 68, 2) aligned landmarks of bank rows."""
        return self._landmarks[self._rows(rows)]

    def exemplars(self, rows) -> dict[str, Tensor]:
        """What ``ExemplarModel.render`` needs of bank rows (``ExemplarSource``)."""
        return {
            "image": self.images(rows),
            "hull": self.hulls(rows),
            "valid": self.valids(rows),
            "landmarks": self.landmarks(rows),
        }


def _read_record(path: Path) -> tuple[dict, bytes]:
    """A bank file's record and its bytes (read once); :class:`BankError` naming ``path`` when it
    is missing or cannot be read as a torch file."""
    if not path.is_file():
        raise BankError(f"exemplar bank {path} does not exist")
    data = path.read_bytes()
    try:
        record = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, or unsafe content
        raise BankError(
            f"cannot read exemplar bank {path}: {type(e).__name__}: "
            f"{str(e).splitlines()[0][:200] if str(e) else ''}"
        ) from e
    return record, data


def load_bank(path: str | os.PathLike) -> PackedBank:
    """Read a bank file; :class:`BankError` (a ``CheckpointError``) naming ``path`` when it is
    missing, not a bank, or corrupt."""
    path = Path(path).expanduser()
    return PackedBank(_read_record(path)[0], path)


#: float descriptors of a rebuilt bank may differ from the reference by this much (absolute) and
#: still count as the same bank: they are computed in float32 (identity: stored in float16),
#: and another CPU's vector kernels (AVX-512 against AVX2) round sums differently in the last
#: bits. Anything else (ids, JPEG bytes, landmarks, masks, metadata) must match exactly.
FLOAT_TOLERANCE = {"colour_mean": 1e-3, "colour_std": 1e-3, "ring": 1e-3, "identity": 2e-3}


@dataclass(frozen=True)
class BankComparison:
    """:func:`compare_banks`' answer.

    Attributes:
        identical: the two files' bytes are equal.
        mismatched: parts that must match exactly and do not (empty when they all do).
        float_diff: each float descriptor's largest absolute difference.
    """

    identical: bool
    mismatched: tuple[str, ...]
    float_diff: dict[str, float]

    @property
    def same(self) -> bool:
        """The same bank: exact parts equal, float descriptors within :data:`FLOAT_TOLERANCE`."""
        return not self.mismatched and all(
            d <= FLOAT_TOLERANCE[k] for k, d in self.float_diff.items()
        )

    def describe(self) -> str:
        if self.identical:
            return "byte-identical"
        floats = ", ".join(f"{k} {d:.2g}" for k, d in self.float_diff.items())
        if self.mismatched:
            return f"differs in {', '.join(self.mismatched)} (float descriptors: {floats})"
        verdict = "within" if self.same else "beyond"
        return (
            f"the same faces and settings; float descriptors differ by at most {floats} "
            f"({verdict} tolerance)"
        )


def compare_banks(built: str | os.PathLike, reference: str | os.PathLike) -> BankComparison:
    """Whether a rebuilt bank file is the reference's bank (:class:`BankComparison`).

    A bank's bytes are reproducible on one machine, but its float descriptors (colour
    statistics, seam rings, identity features) depend on the CPU's float kernels in their last
    bits, so a rebuild elsewhere has another sha256. This compares part by part instead.
    """
    (ra, da), (rb, db) = (_read_record(Path(p).expanduser()) for p in (built, reference))
    if da == db:
        return BankComparison(True, (), {})
    for record, path in ((ra, built), (rb, reference)):
        PackedBank(record, path)  # BankError naming the file unless it is a sound bank
    mismatched, floats = [], {}
    for key in sorted(set(ra) | set(rb)):
        x, y = ra.get(key), rb.get(key)
        if key in FLOAT_TOLERANCE and torch.is_tensor(x) and torch.is_tensor(y):
            if x.shape != y.shape or not torch.equal(x.isnan(), y.isnan()):
                mismatched.append(key)
            else:
                floats[key] = float((x.float() - y.float()).nan_to_num().abs().max())
        elif not _same(x, y):
            mismatched.append(key)
    return BankComparison(False, tuple(mismatched), floats)


def _same(x: Any, y: Any) -> bool:
    """Exact equality of record parts: tensors by shape and value, dicts (the harmoniser's state
    dict, the metadata) key by key, anything else by ``==``."""
    if torch.is_tensor(x) or torch.is_tensor(y):
        return (
            torch.is_tensor(x) and torch.is_tensor(y) and x.shape == y.shape and torch.equal(x, y)
        )
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    return x == y


def harmoniser_net(info: Mapping[str, Any], state: Mapping[str, Tensor]):
    """The ``ContextHarmoniser`` of a bank record ``info`` (``width``, ``scale``) with ``state``
    loaded, in eval mode without gradients; ValueError with the first line of the cause when
    the two do not fit."""
    from facectx.zoo.harmoniser import ContextHarmoniser

    try:
        net = ContextHarmoniser(width=float(info["width"]), scale=int(info["scale"]))
        net.load_state_dict(dict(state))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ValueError(str(e).splitlines()[0][:200] if str(e) else type(e).__name__) from e
    return net.eval().requires_grad_(False)


def read_harmoniser(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """A trained context harmoniser from its training checkpoint (``python -m facectx.train
    experiment=lfw_harmoniser``): its bank record (constructor arguments and iteration) and
    float32 state dict, the EMA weights when the run kept them. ``CheckpointError`` naming the
    file when it is not a harmoniser checkpoint."""
    from facectx.checkpoint import load_checkpoint, read_meta

    path = Path(path).expanduser()
    ckpt = load_checkpoint(path)
    meta = read_meta(ckpt, path, kind="harmoniser")
    prefix = "generator_ema." if meta.ema else "generator."
    state = {
        k[len(prefix) :]: v.float().contiguous()
        for k, v in ckpt.get("state_dict", {}).items()
        if k.startswith(prefix)
    }
    info = {
        "width": float(meta.init_args["width"]),
        "scale": int(meta.init_args["scale"]),
        "iteration": meta.iteration,
    }
    try:
        harmoniser_net(info, state)
    except ValueError as e:
        raise CheckpointError(f"{path}: its harmoniser weights do not fit its record ({e})") from e
    return info, state


def resolve_bank(spec: str | os.PathLike) -> Path:
    """The file a ``bank=`` value names: ``pretrained`` (the default shipped exemplar model's),
    ``pretrained:NAME`` (a shipped exemplar model's), or a path."""
    from facectx.pretrained.hallucinators import DEFAULT_EXEMPLAR, PRETRAINED, resolve_pretrained

    text = str(spec).strip()
    if text != "pretrained" and not text.startswith("pretrained:"):
        return Path(text).expanduser()
    name = text.partition(":")[2] or DEFAULT_EXEMPLAR
    if name in PRETRAINED and PRETRAINED[name].kind != "exemplar":
        exemplars = sorted(n for n, p in PRETRAINED.items() if p.kind == "exemplar")
        raise BankError(f"{name} is not an exemplar model; shipped ones: {', '.join(exemplars)}")
    return resolve_pretrained(name)


def build_entry(fetch, **_: object):
    """Registry builder of bank entries: a bank is data, not a network."""
    raise ValueError(
        "an exemplar bank is not a network: load it with "
        "facectx.pretrained.exemplar_bank.load_bank(facectx.pretrained.resolve(ENTRY)), or use "
        "facectx.Hallucinator.from_pretrained('exemplar-lfw-128')"
    )


__all__ = [
    "FLOAT_TOLERANCE",
    "FORMAT",
    "KIND",
    "BankComparison",
    "BankError",
    "PackedBank",
    "compare_banks",
    "encode_jpeg",
    "harmoniser_net",
    "is_bank",
    "load_bank",
    "pack_bits",
    "read_harmoniser",
    "resolve_bank",
    "write_bank",
]
