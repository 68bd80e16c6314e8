"""The exemplar model without a dataset: pack a bank of training faces into one file
(:func:`pack_bank`, behind ``python -m facectx.bank``) and hallucinate context from it
(:class:`ExemplarHallucinator`, ``Hallucinator.from_pretrained("exemplar-lfw-128")``).

The exemplar model retrieves the training faces that best match an input face (identity,
pose/shape, colour, hull overlap, context coverage) and pastes a fitted exemplar's context
around it (``facectx.zoo.exemplar``). Unlike the cascade it can give several portraits per face:
``samples=K`` takes K different exemplars, the best K by rank, or K drawn among the best ``top``
(seeded by ``seed`` and the face's pixels, so the same face gets the same portraits in any
batch). The file format is ``facectx.pretrained.exemplar_bank``.
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from facectx.inference.portrait_model import PortraitModel
from facectx.pretrained.exemplar_bank import PackedBank, load_bank
from facectx.zoo.exemplar import (
    ACCEPT,
    FIT_REVISION,
    POOL,
    RIM,
    ExemplarModel,
    model_settings,
)

log = logging.getLogger("facectx")


# ---------------------------------------------------------------------------- packing


@dataclass
class BankSummary:
    """What :func:`pack_bank` wrote."""

    path: Path
    faces: int
    bytes: int
    sha256: str
    seconds: float


def select_rows(
    rows: list[dict[str, str]], one_per_person: bool = False, max_faces: int | None = None
) -> list[dict[str, str]]:
    """The manifest rows a bank keeps, in manifest order: with ``one_per_person`` only the first
    face (by id) of each person (``facectx.data.manifest.person_key``: an unlabelled face is its
    own person), then the first ``max_faces`` of them (None = all)."""
    from facectx.data.manifest import person_key

    if one_per_person:
        first: dict[str, str] = {}
        for r in rows:
            key = person_key(r)
            first[key] = min(first.get(key, r["id"]), r["id"])
        keep = set(first.values())
        rows = [r for r in rows if r["id"] in keep]
    return rows if max_faces is None else rows[: max(0, int(max_faces))]


def pack_bank(
    train_root: str | os.PathLike,
    output: str | os.PathLike,
    split: str | None = "train",
    one_per_person: bool = False,
    max_faces: int | None = None,
    quality: int = 85,
    feature: str | None = "dlib-resnet",
    feature_path: str | None = None,
    weights: Mapping[str, float] | None = None,
    fit: Mapping[str, float | bool] | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    progress: bool = True,
    harmoniser: str | os.PathLike | None = None,
) -> BankSummary:
    """Pack the faces of a prepared folder into one exemplar bank file (deterministic bytes).

    Args:
        train_root: prepared folder of training faces (``python -m facectx.prepare``).
        output: the bank file to write.
        split: manifest split to keep; None = every row.
        one_per_person: keep only the first face (by id) of each person.
        max_faces: keep at most this many faces (after ``one_per_person``); None = all.
        quality: JPEG quality of the stored pictures (1-95).
        feature: ``facectx.pretrained`` identity network whose features of the masked faces
            are stored (the ``identity`` retrieval term); None = none (weight must be 0).
        feature_path: explicit weight file for ``feature``.
        weights: retrieval term -> weight recorded as the model's; None = ``DEFAULT_WEIGHTS``.
        fit: fit settings recorded as the model's (keys of ``FIT_DEFAULTS``); None = defaults.
        batch_size: faces described at a time.
        device: where the identity network runs.
        progress: show a progress bar.
        harmoniser: training checkpoint of a context harmoniser to store with the faces
            (``facectx.pretrained.exemplar_bank.read_harmoniser``); None = none.
    """
    from torch.utils.data import DataLoader

    from facectx.data.datasets import PreparedFaces
    from facectx.data.manifest import META, read_manifest
    from facectx.folderjob import progress_bar
    from facectx.masks.kinds import face_hull
    from facectx.pixels import to_uint8
    from facectx.pretrained.exemplar_bank import (
        encode_jpeg,
        pack_bits,
        read_harmoniser,
        write_bank,
    )
    from facectx.pretrained.registry import sha256sum
    from facectx.zoo.exemplar import describe_faces

    t0 = time.perf_counter()
    weights, fit = model_settings(weights, fit)
    if weights.get("identity") and feature is None:
        raise ValueError("feature=None stores no identity features: set weights.identity=0")
    if not 1 <= int(quality) <= 95:
        raise ValueError(f"quality must be in 1..95, got {quality}")
    root = Path(train_root).expanduser().resolve()
    harmoniser_info, harmoniser_state = (
        read_harmoniser(harmoniser) if harmoniser is not None else (None, None)
    )  # a wrong checkpoint fails before minutes of packing
    rows = select_rows(read_manifest(root, split), one_per_person, max_faces)
    if not rows:
        raise ValueError(f"no faces to pack in {root} (split={split!r}, max_faces={max_faces})")
    faces = PreparedFaces(root, split=split, ids=[r["id"] for r in rows])  # manifest order
    net = None
    if feature is not None:
        from facectx.pretrained import load

        net = load(feature, path=feature_path).to(device)
    parts: dict[str, list] = {"jpeg": [], "lm": [], "valid": [], "hull": [], "ident": []}
    desc: list[dict[str, Tensor]] = []
    hull_differs = False
    with progress_bar(progress, f"bank: packing {len(faces)} faces", unit="faces") as bar:
        task = bar.add_task("pack", total=len(faces))
        for b in DataLoader(faces, batch_size=batch_size, shuffle=False):
            with torch.inference_mode():
                desc.append(
                    describe_faces(b["image"], b["mask"], b["valid"], b["landmarks"], exemplar=True)
                )
                if net is not None:
                    parts["ident"].append(net(b["masked"].to(device)).float().cpu())
            parts["jpeg"] += [encode_jpeg(im, quality) for im in to_uint8(b["image"])]
            parts["lm"].append(b["landmarks"])
            parts["valid"].append(pack_bits(b["valid"][:, 0].numpy() > 0.5))
            parts["hull"].append(pack_bits(b["mask"][:, 0].numpy() > 0.5))
            drawn = torch.stack([face_hull(lm, faces.size) for lm in b["landmarks"]])
            hull_differs |= not torch.equal(drawn, (b["mask"] > 0.5).float())
            bar.advance(task, len(b["id"]))
    frame = None
    if (root / META).is_file():
        import json

        frame = json.loads((root / META).read_text(encoding="utf-8")).get("frame")
    meta = {
        "size": int(faces.size),
        "frame": frame,
        # the folder's name, not its path: the same faces give the same bytes on any machine
        "source": {"root": root.name, "split": split},
        "faces": len(faces),
        "one_per_person": bool(one_per_person),
        "max_faces": max_faces,
        "jpeg": {"quality": int(quality), "subsampling": "4:2:0"},
        "feature": feature,
        "weights": weights,
        "fit": fit,
        "hull": "stored" if hull_differs else "landmarks",
    }
    if harmoniser_info is not None:
        meta["harmoniser"] = harmoniser_info
    if hull_differs:
        log.info("bank: stored hulls are not the landmarks' convex hull: storing them")
    path = write_bank(
        output,
        meta,
        [r["id"] for r in faces.rows],
        [r.get("person", "") for r in faces.rows],
        parts["jpeg"],
        torch.cat(parts["lm"]),
        np.concatenate(parts["valid"]),
        torch.cat([d["colour_mean"] for d in desc]),
        torch.cat([d["colour_std"] for d in desc]),
        identity=torch.cat(parts["ident"]) if net is not None else None,
        hull_bits=np.concatenate(parts["hull"]) if hull_differs else None,
        ring=torch.cat([d["ring"] for d in desc]),
        harmoniser=harmoniser_state,
    )
    return BankSummary(
        path, len(faces), path.stat().st_size, sha256sum(path), time.perf_counter() - t0
    )


# ---------------------------------------------------------------------------- inference


def face_keys(masked: Tensor) -> list[str]:
    """A key per face from its 8-bit pixels: what seeds its draw (the same face gets the same
    portraits in any batch, on any device)."""
    from facectx.pixels import unit_to_uint8

    q = unit_to_uint8(masked).cpu().numpy()
    return [f"pixels:{zlib.crc32(x.tobytes()):08x}" for x in q]


class ExemplarHallucinator(PortraitModel):
    """Context from the training faces of a packed bank: retrieve, fit and paste (no network
    but the identity features' one).

    Input: canonical aligned faces as ``masked`` (B,3,S,S) in [-1, 1] and ``mask`` (B,1,S,S)
    keep-masks, and where known their ``landmarks`` (B,68,2) (the shape term; without them it
    is dropped, logged once) and ``valid`` (B,1,S,S) masks (1 = inside the photo). Output:
    (B,3,S,S), or (B,K,3,S,S) with ``samples`` K > 1 (K different exemplars per face); face
    pixels are the input's, exactly. Context beyond the photo's edge is filled too (not left
    black), as the cascade does.

    Args:
        bank: a loaded bank (``facectx.pretrained.exemplar_bank.load_bank``).
        device: where the identity network runs (retrieval and fitting run on the CPU).
        samples: portraits per face (K).
        seed: seed of the draw among the best ``top``; with the face's pixels it fixes the draw.
        top: draw the K exemplars among the best ``top``; <= K: the best K by rank.
        feature_path: explicit weight file of the bank's identity network (``meta["feature"]``).
        rim: px of the keep-mask's edge where pixels darker than the face (the hull's staircase
            reaching into the shadow under the chin, hair or background), or below the brows
            lighter (a light wall blended into the edge), get context instead of being kept
            (``facectx.zoo.exemplar.trim_rim``; 0 = every kept pixel stays).
        pool: candidates fitted per portrait; of ``pool`` × K, the K that meet the face best
            are kept (``ExemplarModel.portraits``; 1 = retrieval's first K, fastest).
        accept: with ``pool`` > 1, the worst-sector seam residual at or below which retrieval's
            order stands (``ExemplarModel``; the default, ``facectx.zoo.exemplar.ACCEPT`` = 26,
            was chosen on LFW val); None = the K lowest whole-ring residuals of all ``pool`` × K.
        harmoniser: re-light each portrait's context to its face with the bank's context
            harmoniser (``facectx.zoo.harmoniser``) when the bank holds one; False = the
            fit's portraits as they are.
    """

    sampling = True
    # no pasted-back view: the context is another photo's whole head, and the photo's own hair
    # beyond the 128 px frame would stay beside it (a double hairline, a pale forehead patch)
    pastes_back = False
    uses_landmarks = True

    def __init__(
        self,
        bank: PackedBank,
        device: str | torch.device = "cpu",
        samples: int = 1,
        seed: int = 0,
        top: int = 1,
        feature_path: str | None = None,
        rim: float = RIM,
        pool: int = POOL,
        accept: float | None = ACCEPT,
        harmoniser: bool = True,
    ) -> None:
        self.packed = bank
        self.samples, self.seed = 1, int(seed)
        self.samples = self.check_samples(samples)
        if top < 1:
            raise ValueError(f"top must be >= 1, got {top}")
        self.device = torch.device(device)
        self.size, self.frame = bank.size, bank.frame
        self.ema = False
        self.file = bank.path
        self.source = str(bank.path) if bank.path is not None else "in-memory exemplar bank"
        weights, fit = model_settings(bank.meta.get("weights"), bank.meta.get("fit"))
        identity = None
        if weights.get("identity"):
            from facectx.pretrained import load

            feature = bank.meta.get("feature")
            identity = load(feature, path=feature_path).to(self.device)
        self.model = ExemplarModel(
            bank.bank,
            bank,
            identity,
            weights,
            exclude_same_person=False,
            top=top,
            seed=seed,
            fit=fit,
            black_invalid=False,  # the context beyond the photo's edge is filled, as the cascade
            rim=rim,
            pool=pool,
            accept=accept,
            harmoniser=bank.harmoniser if harmoniser else None,
        )
        self._warned = False

    @property
    def top(self) -> int:
        return self.model.top

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "cpu",
        samples: int = 1,
        seed: int = 0,
        top: int = 1,
        rim: float = RIM,
        pool: int = POOL,
        accept: float | None = ACCEPT,
        harmoniser: bool = True,
    ) -> ExemplarHallucinator:
        """A bank file written by ``python -m facectx.bank`` (:func:`pack_bank`)."""
        return cls(
            load_bank(path),
            device,
            samples=samples,
            seed=seed,
            top=top,
            rim=rim,
            pool=pool,
            accept=accept,
            harmoniser=harmoniser,
        )

    def kept(self, masked: Tensor, mask: Tensor) -> Tensor:
        return self.model.kept(masked.cpu(), mask.cpu()).to(mask.device)

    def check_samples(self, samples: int | None) -> int:
        from facectx._conf import ConfigError

        k = super().check_samples(samples)
        if k > len(self.packed):
            raise ConfigError(f"samples={k}: the bank holds only {len(self.packed)} faces")
        return k

    def digest(self) -> str:
        """The bank file's sha256 (16 digits) with the draw's ``top``, ``pool`` and ``accept``,
        whether the bank's harmoniser is left out, and the fitting code's
        :data:`~facectx.zoo.exemplar.FIT_REVISION`: what changes outputs (``accept`` only
        counts with a pool)."""
        import hashlib

        from facectx.pretrained.registry import sha256sum

        made_of = sha256sum(self.file) if self.file is not None else repr(self.packed.meta)
        pool = f"|pool={self.model.pool}" if self.model.pool != 1 else ""
        if self.model.pool != 1 and self.model.accept is not None:
            pool += f"|accept={self.model.accept:g}"
        if self.packed.harmoniser is not None and self.model.harmoniser is None:
            pool += "|harmoniser=off"
        made = f"{made_of}|top={self.top}{pool}|fit={FIT_REVISION}"
        return hashlib.sha256(made.encode()).hexdigest()[:16]

    def _portraits(
        self,
        masked: Tensor,
        mask: Tensor,
        samples: int,
        seed: int | None,
        landmarks: Tensor | None = None,
        valid: Tensor | None = None,
    ) -> Tensor:
        """(B, 3, S, S) portraits, or (B, K, 3, S, S) with K = ``samples`` > 1."""
        if landmarks is None and not self._warned and self.model.weights.get("shape"):
            log.info("exemplar: no landmarks given: faces are retrieved without the shape term")
            self._warned = True
        dev = masked.device
        masked = masked.to(self.device)
        mask = mask.to(self.device)
        valid = torch.ones_like(mask) if valid is None else valid.to(self.device)
        query = self.model.query(masked, mask, valid, landmarks)
        keys = face_keys(masked)
        masked, mask, valid = masked.cpu(), mask.cpu(), valid.cpu()
        outs, _ = self.model.portraits(
            query, samples, keys, masked, mask, valid, landmarks, seed=seed
        )
        out = outs[:, 0] if samples == 1 else outs
        return out.clamp(-1, 1).to(dev)


__all__ = ["BankSummary", "ExemplarHallucinator", "face_keys", "pack_bank", "select_rows"]
