"""``exemplar``: exemplar-guided context (issue 28).

Ranks the training faces by a weighted mix of identity, pose/shape, face colour, hull overlap
and context coverage (``facectx.zoo.exemplar``), then pastes the chosen exemplar's context after
moving its colours toward the input face's and shifting it to meet the face at the hull border.
Unlike ``nearest_neighbour`` (identity only, plain paste) it can give several contexts per face:
``sample`` picks which of the candidates, ``top`` > 1 draws them at random among the best
``top`` (seeded by ``seed`` and the face id, so a face gets the same candidates in any batch).
The bank is a prepared folder (``train_root``) or a packed bank file (``bank``, what
``python -m facectx.bank`` writes and ``ExemplarHallucinator`` ships with); both go through the
same :class:`facectx.zoo.exemplar.ExemplarModel`.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor

from facectx._conf import ConfigError
from facectx.evaluation.baselines import _cache_key, _progress, _train_faces
from facectx.evaluation.method import Method, Prediction, cache_path
from facectx.zoo.exemplar import (
    ACCEPT,
    DEFAULT_WEIGHTS,
    POOL,
    RIM,
    TERMS,
    ExemplarBank,
    ExemplarModel,
    FaceItems,
    describe_faces,
)

log = logging.getLogger(__name__)


class Exemplar(Method):
    """Retrieve training contexts that fit the input and harmonise them onto it.

    Args:
        train_root: prepared folder of training faces; None = the embedded sample.
        train_split: manifest split to search; None = every row.
        bank: a packed bank file (``python -m facectx.bank``), or ``pretrained`` /
            ``pretrained:NAME`` for one shipped with facectx: descriptors and exemplar images
            come from it and ``train_root`` / ``train_split`` are not read. None = the folder.
        feature: ``facectx.pretrained`` identity entry for the ``identity`` term (with a bank:
            the network its features were computed with).
        feature_path: explicit weight file for ``feature``; None = the registry rule.
        weights: retrieval term -> weight (``identity``, ``shape``, ``colour``, ``hull``,
            ``coverage``, ``seam``; each z-scored over the bank); None = the shipped model's
            (``DEFAULT_WEIGHTS``: identity 1, shape 1, colour 1, hull 1, coverage 1, seam 2).
        exclude_same_person: never retrieve a face of the input's person (same id never).
        sample: which candidate to output, 0 = the best (or the first drawn).
        top: draw candidates at random among the best ``top`` (<= ``sample`` + 1: by rank).
        seed: seed of those draws.
        harmonise: Lab colour-transfer strength next to the face hull (0 = off).
        harmonise_far: its strength far from the hull.
        harmonise_radius: px, e-folding distance between the two.
        seam_band: px of known face used to measure the seam offset (0 = off).
        seam_falloff: px, e-folding distance of the seam offset into the hole.
        face_band: px, width of the ring outside the hull where the input face, extended
            outward, replaces the exemplar (0 = off).
        black_invalid: keep pixels outside the input photo (``valid`` 0) black, as in the
            originals.
        rim: px of the face mask's edge where pixels darker than the face (the hull's staircase
            reaching into shadow or hair), or below the brows lighter (a light wall),
            get context instead (0 = every face pixel kept; the shipped model's 2).
        pool: candidates fitted per portrait: the first ``pool`` × (``sample`` + 1) are
            fitted and ranked by how well they meet the face (``seam_residual``), and
            ``sample`` is the index in that order (1 = retrieval's order; the shipped
            model's ``POOL``).
        accept: with ``pool`` > 1, the worst-sector seam residual at or below which
            retrieval's order is kept (``ExemplarModel``'s ``accept``; null = order by the
            whole-ring residual alone; ``facectx.zoo.exemplar.ACCEPT``, 26, was chosen on LFW
            val).
        harmoniser: with ``bank``, re-light each output's context with the bank's context
            harmoniser (``facectx.zoo.harmoniser``) when it holds one; False = the fit's
            outputs as they are. A folder (``train_root``) has none.
        inpaint_invalid: inpaint where the exemplar's photo has no pixels before pasting.
        align: warp the exemplar by the similarity that best maps its landmarks onto the
            input's (the frames are eye-aligned already, so this fixes only residual offsets).
        outline: bend the exemplar (thin-plate spline; on by default) so its jaw and brows land on
            the input's: the seam then runs along the exemplar's own face outline.
        outline_inset: px the exemplar's outline lands inside the input's (its jaw edge and
            shadow go under the input face).
        cache_dir: folder for the cached bank descriptors and identity features (the latter
            shared with ``nearest_neighbour``); None = no cache. Unused with ``bank``.
        batch_size: training faces described at a time.
        name: row label.
    """

    kind = "baseline"

    def __init__(
        self,
        train_root: str | None = None,
        train_split: str | None = "train",
        bank: str | None = None,
        feature: str = "dlib-resnet",
        feature_path: str | None = None,
        weights: dict[str, float] | None = None,
        exclude_same_person: bool = True,
        sample: int = 0,
        top: int = 1,
        seed: int = 0,
        harmonise: float = 1.0,
        harmonise_far: float = 0.5,
        harmonise_radius: float = 16.0,
        seam_band: float = 3.0,
        seam_falloff: float = 8.0,
        face_band: float = 2.0,
        black_invalid: bool = True,
        rim: float = RIM,
        pool: int = POOL,
        accept: float | None = ACCEPT,
        harmoniser: bool = True,
        inpaint_invalid: bool = True,
        align: bool = False,
        outline: bool = True,
        outline_inset: float = 0.0,
        cache_dir: str | None = None,
        batch_size: int = 64,
        name: str = "exemplar",
    ) -> None:
        weights = dict(weights) if weights is not None else dict(DEFAULT_WEIGHTS)
        if set(weights) - set(TERMS):
            raise ConfigError(f"exemplar: weights must name terms of {TERMS}, got {weights}")
        if sample < 0:
            raise ConfigError(f"exemplar: sample must be >= 0, got {sample}")
        self.name = name
        self.train_root = train_root
        self.train_split = train_split
        self.bank_file = None if bank is None else str(bank)
        self.feature = feature
        self.feature_path = feature_path
        self.weights = {k: float(v) for k, v in weights.items()}
        self.exclude_same_person = bool(exclude_same_person)
        self.sample = int(sample)
        self.top = int(top)
        self.seed = int(seed)
        self.fit = {
            "harmonise": float(harmonise),
            "harmonise_far": float(harmonise_far),
            "harmonise_radius": float(harmonise_radius),
            "seam_band": float(seam_band),
            "seam_falloff": float(seam_falloff),
            "face_band": float(face_band),
            "inpaint_invalid": bool(inpaint_invalid),
            "align": bool(align),
            "outline": bool(outline),
            "outline_inset": float(outline_inset),
        }
        self.black_invalid = bool(black_invalid)
        if rim < 0:
            raise ConfigError(f"exemplar: rim must be >= 0 px, got {rim}")
        self.rim = float(rim)
        if pool < 1:
            raise ConfigError(f"exemplar: pool must be >= 1, got {pool}")
        self.pool = int(pool)
        if accept is not None and not float(accept) >= 0:
            raise ConfigError(
                f"exemplar: accept must be a seam residual >= 0 or null, got {accept}"
            )
        self.accept = None if accept is None else float(accept)
        self.use_harmoniser = bool(harmoniser)
        self.cache_dir = cache_dir
        self.batch_size = int(batch_size)
        self.faces = None
        self.net = None
        self.bank: ExemplarBank | None = None
        self.model: ExemplarModel | None = None

    # -- the bank -------------------------------------------------------------------------

    def setup(self, size: int, device: torch.device) -> None:
        self.device = device
        if self.weights.get("identity"):
            from facectx.pretrained import load

            self.net = load(self.feature, path=self.feature_path).to(device)
        harmoniser = None
        if self.bank_file is not None:
            source = self._packed(size)
            self.bank = source.bank
            harmoniser = source.harmoniser if self.use_harmoniser else None
        else:
            self.faces = _train_faces(self.train_root, self.train_split, size, "exemplar")
            self.bank = self._bank()
            source = FaceItems(self.faces)
        self.model = ExemplarModel(
            self.bank,
            source,
            self.net,
            self.weights,
            self.exclude_same_person,
            self.top,
            self.seed,
            self.fit,
            self.black_invalid,
            self.rim,
            self.pool,
            self.accept,
            harmoniser,
        )

    def _packed(self, size: int):
        """The packed bank ``bank`` names, refused when it cannot serve this evaluation."""
        from facectx.pretrained.exemplar_bank import load_bank, resolve_bank

        packed = load_bank(resolve_bank(self.bank_file))
        if packed.size != size:
            raise ConfigError(
                f"exemplar: the bank {packed.path} holds {packed.size} px faces but the "
                f"evaluated faces are {size} px"
            )
        made_with = packed.meta.get("feature")
        if self.weights.get("identity") and made_with != self.feature:
            raise ConfigError(
                f"exemplar: the bank {packed.path} has identity features of {made_with}, not "
                f"{self.feature}; set feature={made_with} or weights.identity=0"
            )
        return packed

    def _cached(self, stem: str, key: str, compute):
        path = cache_path(self.cache_dir, stem, key)
        if path is not None and path.is_file():
            log.info("exemplar: cached %s %s", stem, path)
            return torch.load(path, map_location="cpu", weights_only=True)
        value = compute()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(value, path)
        return value

    def _bank(self) -> ExemplarBank:
        faces = self.faces
        # "exemplar_bank2": the descriptors gained the outer ring of the seam term
        desc = self._cached("exemplar_bank2", _cache_key(faces), self._describe_training_faces)
        if self.net is not None:  # same file as nearest_neighbour's features
            key = _cache_key(faces, f"{self.feature}|{self.feature_path}")
            ident = self._cached("nn_features", key, self._embed_training_faces)
            ident = torch.nn.functional.normalize(ident.float(), dim=1)
        else:
            ident = torch.zeros(len(faces), 1)
        return ExemplarBank(
            ids=[r["id"] for r in faces.rows],
            persons=[r.get("person", "") for r in faces.rows],
            identity=ident,
            **desc,
        )

    def _batches(self, description: str):
        from torch.utils.data import DataLoader

        n = len(self.faces)
        bar, task = _progress(f"exemplar: {description} {n} training faces", n)
        with bar:
            for b in DataLoader(self.faces, batch_size=self.batch_size, shuffle=False):
                yield b
                bar.advance(task, len(b["id"]))

    @torch.inference_mode()
    def _describe_training_faces(self) -> dict[str, Tensor]:
        parts = [
            describe_faces(b["image"], b["mask"], b["valid"], b["landmarks"], exemplar=True)
            for b in self._batches("describing")
        ]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    @torch.inference_mode()
    def _embed_training_faces(self) -> Tensor:
        return torch.cat(
            [
                self.net(b["masked"].to(self.device)).float().cpu()
                for b in self._batches("embedding")
            ]
        )

    # -- prediction -----------------------------------------------------------------------

    @torch.inference_mode()
    def candidates(self, batch: dict, k: int) -> Tensor:
        """(B, k) bank rows for a batch: by rank, or drawn per face among the best ``top``."""
        assert self.model is not None, "call setup() first"
        query = self.model.query(batch["masked"], batch["mask"], batch["valid"], batch["landmarks"])
        return self.model.candidates(query, k, list(batch["id"]), batch.get("person_name"))

    @torch.inference_mode()
    def render(self, batch: dict, rows: Tensor, kept: Tensor | None = None) -> Tensor:
        """(B, 3, S, S) outputs with bank row ``rows[i]`` as face i's exemplar (``kept``: the
        model's kept pixels of the batch, when computed already)."""
        assert self.model is not None, "call setup() first"
        return self.model.render(
            rows, batch["masked"], batch["mask"], batch["valid"], batch["landmarks"], kept
        )

    def samples(self, batch: dict, k: int) -> tuple[Tensor, Tensor]:
        """K contexts per face: (B, K, 3, S, S) outputs and the (B, K) bank rows used (the
        best K of ``pool`` × K fitted candidates)."""
        assert self.model is not None, "call setup() first"
        m = self.model
        query = m.query(batch["masked"], batch["mask"], batch["valid"], batch["landmarks"])
        return m.portraits(
            query,
            k,
            list(batch["id"]),
            batch["masked"],
            batch["mask"],
            batch["valid"],
            batch["landmarks"],
            persons=batch.get("person_name"),
        )

    def predict(self, batch: dict) -> Prediction:
        if self.pool == 1:  # only the one candidate asked for is fitted
            rows = self.candidates(batch, self.sample + 1)[:, self.sample]
            out = self.render(batch, rows)
        else:
            outs, rows = self.samples(batch, self.sample + 1)
            out, rows = outs[:, self.sample], rows[:, self.sample]
        notes = [f"exemplar={self.bank.ids[int(j)]}" for j in rows]
        return Prediction(out, [None] * len(out), notes)

    def describe(self) -> str:
        if self.bank_file is not None:
            where = f"the packed bank {self.bank_file}"
        else:
            root = self.train_root or "embedded sample"
            where = f"{root} (split {self.train_split})"
        n = len(self.bank) if self.bank is not None else "?"
        w = ", ".join(f"{k} {v:g}" for k, v in self.weights.items() if v)
        fit = ", ".join(f"{k}={v}" for k, v in self.fit.items())
        fit += f", black_invalid={self.black_invalid}, rim={self.rim:g}, pool={self.pool}"
        if self.pool > 1 and self.accept is not None:
            fit += f", accept={self.accept:g}"
        if self.model is not None and self.model.harmoniser is not None:
            fit += ", context harmoniser"
        pick = f"candidate {self.sample}" + (
            f" drawn among the best {self.top} (seed {self.seed})" if self.top > 1 else ""
        )
        return f"{self.name}: {pick} of {n} faces of {where} by {w}; {fit}"


__all__ = ["Exemplar"]
