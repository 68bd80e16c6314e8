"""Identity-specific inpainting without Lightning: :class:`Inpainter` loads a trained
SwapInpaint checkpoint, a packed file or the model shipped with facectx
(``Inpainter.from_pretrained("lfw-swap-128")``) and fills holes in aligned faces or raw photos
(at full resolution, Poisson-blended; only pixels inside the warped-back hole change).

``python -m facectx.inpaint`` is the command-line front door over it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from facectx.pixels import from_uint8, to_uint8

log = logging.getLogger("facectx.inpaint")

MASK_KINDS = ("facial", "ocular", "center")


class InpaintError(ValueError):
    """A photo could not be inpainted; ``reason`` is a short code, the message says why."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


#: the first line of the error when no checkpoint is given and the shipped model is missing
NO_SHIPPED_INPAINTER = (
    "no ckpt= given and the SwapInpaint model shipped with facectx ({name}) is not installed: "
    "pass ckpt=<a SwapInpaint checkpoint> (`python -m facectx.train "
    "experiment=swapinpaint_quickstart` trains one, ckpt=RUN/checkpoints/last.ckpt), or "
    "install the file"
)


def inpainter_name(ckpt: str | os.PathLike | None) -> str | None:
    """The shipped SwapInpaint model a ``ckpt=`` value names (None, ``pretrained`` or
    ``pretrained:NAME``), or None when it is a file: the reading every tool gives ``ckpt=``
    (``facectx.inference.hallucinator.pretrained_name`` for hallucinators)."""
    from facectx.pretrained.inpainters import DEFAULT_INPAINTER

    text = "" if ckpt is None else str(ckpt).strip()
    if text in ("", "pretrained") or text.startswith("pretrained:"):
        return text.partition(":")[2] or DEFAULT_INPAINTER
    return None


def load_inpainter(
    ckpt: str | os.PathLike | None,
    device: str | torch.device = "cpu",
    use_ema: bool = True,
    identity_path: str | None = None,
) -> Inpainter:
    """What the command-line tools run: a checkpoint or packed file, or, when ``ckpt`` is None
    (or ``pretrained`` / ``pretrained:NAME``), a model shipped with facectx, saying which.
    Without ``ckpt`` a missing shipped file raises the registry's ``WeightsNotFoundError``
    with a first line saying how to pass a checkpoint instead."""
    from facectx.pretrained.registry import WeightsNotFoundError

    text = "" if ckpt is None else str(ckpt).strip()
    name = inpainter_name(text)
    if name is None:
        return Inpainter.from_checkpoint(
            text, device=device, use_ema=use_ema, identity_path=identity_path
        )
    try:
        model = Inpainter.from_pretrained(name, device=device, identity_path=identity_path)
    except WeightsNotFoundError as e:
        if text or not _shipped_file_missing(name):  # asked for by name, or I's file missing
            raise
        raise WeightsNotFoundError(f"{NO_SHIPPED_INPAINTER.format(name=name)}.\n{e}") from e
    what = "no ckpt= given: using" if not text else "using"
    log.info(
        "%s the pretrained SwapInpaint model '%s' shipped with facectx (%s, %s)",
        what,
        name,
        model.source,
        model.file,
    )
    return model


def _shipped_file_missing(name: str) -> bool:
    """Whether shipped SwapInpaint model ``name``'s file is nowhere on the resolution path
    (its identity network's may be what is missing); never hashes."""
    from facectx.pretrained import registry
    from facectx.pretrained.inpainters import PRETRAINED_INPAINTERS

    spec = registry.get_entry(PRETRAINED_INPAINTERS[name].entry).files["weights"]
    return registry.locate(spec) is None


def hole_alpha(hole: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(H, W) float32 weight of the result in a photo's ``hole`` (bool): 0 outside it and on
    its edge, rising to 1 over about one aligned pixel inside.

    A hole drawn in the 128 px frame and warped onto a large photo has staircase edges, one
    aligned pixel per step; this fade rounds them off (the 0.5 level of a Gaussian blur) while
    no pixel outside the hole changes."""
    import cv2

    from facectx.faces.align import matrix_scale

    px = 1.0 / matrix_scale(matrix)  # photo pixels per aligned pixel
    if px <= 1.5:  # the photo is no larger than the frame: nothing to round off
        return hole.astype(np.float32)
    soft = cv2.GaussianBlur(hole.astype(np.float32), (0, 0), sigmaX=0.5 * px)
    alpha = np.clip(2.0 * soft - 1.0, 0.0, 1.0)
    alpha[alpha > 1.0 - 1e-4] = 1.0  # the blur's rounding: deep inside is the result exactly
    return alpha * hole


def mask_kind(name: str) -> Callable[..., Tensor]:
    """The keep-mask callable for ``facial``, ``ocular`` or ``center`` (conf/mask defaults)."""
    from facectx.masks import CenterMask, FacialMask, OcularMask

    kinds = {"facial": FacialMask, "ocular": OcularMask, "center": CenterMask}
    if name not in kinds:
        raise ValueError(f"mask must be one of {MASK_KINDS} or a mask file, got {name!r}")
    return kinds[name]()


def read_hole_file(path: str | os.PathLike) -> np.ndarray:
    """A user-drawn mask file as a boolean hole (white/nonzero > 127 = pixel to fill)."""
    from facectx.faces.io import read_image

    rgb = read_image(path)
    return rgb.max(axis=2) > 127


@dataclass
class AlignedResult:
    """One face inpainted in the canonical frame (all (S, S, 3) uint8 unless stated).

    Attributes:
        masked: the incomplete input (black hole).
        content: X̂, C's completion.
        reference: the aligned reference face.
        swapped: Y_sp, G's output.
        output: the final aligned result (Y_sp Poisson-blended into the hole, or Y).
        hole: (S, S) bool, the hole.
    """

    masked: np.ndarray
    content: np.ndarray
    reference: np.ndarray
    swapped: np.ndarray
    output: np.ndarray
    hole: np.ndarray

    def panel(self) -> np.ndarray:
        """masked | X̂ | reference | Y_sp | output, side by side."""
        return np.concatenate(
            [self.masked, self.content, self.reference, self.swapped, self.output], 1
        )


@dataclass
class PhotoResult:
    """A photo inpainted at its full resolution.

    Attributes:
        image: (H, W, 3) uint8, the input photo with the holes filled.
        hole: (H, W) bool, the union of the warped-back holes: the only pixels that changed.
        faces: the per-face results in the canonical frame.
    """

    image: np.ndarray
    hole: np.ndarray
    faces: list[AlignedResult] = field(default_factory=list)


class Inpainter:
    """SwapInpaint inference without Lightning.

    Args:
        model: the trained C and G (``facectx.zoo.swapinpaint.SwapInpaint``).
        identity: the identity encoder I the model was trained with (canonical faces in).
        device: where to run.
    """

    def __init__(
        self, model: nn.Module, identity: nn.Module, device: str | torch.device = "cpu"
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.identity = identity.to(self.device).eval().requires_grad_(False)
        self.size = int(model.size)
        self.ema = False  # whether the weights are a checkpoint's EMA weights
        self.frame: dict | None = None  # canonical frame of the training data, when known
        self.source = "in-memory model"  # what the weights are (shown by the CLIs, job records)
        self.file: Path | None = None  # the weights file, for shipped models

    @classmethod
    def from_pretrained(
        cls,
        name: str = "lfw-swap-128",
        device: str | torch.device = "cpu",
        path: str | os.PathLike | None = None,
        identity: nn.Module | None = None,
        identity_path: str | None = None,
    ) -> Inpainter:
        """A SwapInpaint model that ships with facectx (offline; sha256-verified), with the
        identity network it was trained with loaded through ``facectx.pretrained.load``.

        Args:
            name: shipped model (``facectx.pretrained.inpainters.PRETRAINED_INPAINTERS``).
            device: where to run it.
            path: use this copy of the file instead of the packaged one (still verified).
            identity: an identity network to use instead of loading the one the file names.
            identity_path: explicit weight file for that network.

        Raises:
            UnknownModelError: (a ``KeyError``) ``name`` is not a shipped model.
            WeightsNotFoundError: the file (or the identity network's) is not installed.
            ChecksumError: the file differs from the pinned sha256.
        """
        from facectx.pretrained.inpainters import load_packed_inpainter, resolve_inpainter
        from facectx.pretrained.registry import sha256sum

        file = resolve_inpainter(name, path)
        model, meta = load_packed_inpainter(file)
        out = cls._assemble(model, meta, file, device, identity, identity_path, False)
        out.file = file
        # stable across machines (a batch job records it to refuse mixing models in one folder)
        out.source = f"pretrained:{name}@{sha256sum(file)[:12]}"
        return out

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "cpu",
        use_ema: bool = True,
        identity: nn.Module | None = None,
        identity_path: str | None = None,
        allow_random_identity: bool = False,
    ) -> Inpainter:
        """Rebuild C and G from a SwapInpaint checkpoint (EMA weights when present and
        ``use_ema``), and load the identity network it names from ``facectx.pretrained``.

        Args:
            path: a checkpoint written by ``python -m facectx.train`` with a swapinpaint model,
                a packed SwapInpaint file, or ``pretrained`` / ``pretrained:NAME`` for a model
                shipped with facectx (:meth:`from_pretrained`).
            device: where to run.
            use_ema: prefer the EMA weights when the checkpoint has them.
            identity: an identity network to use instead of loading the one the checkpoint names.
            identity_path: explicit weight file for that network (``facectx.pretrained.load``).
            allow_random_identity: let the registry build it with random weights (tests only).
        """
        from facectx.checkpoint import CheckpointError, load_checkpoint, read_meta
        from facectx.pretrained.hallucinators import is_packed
        from facectx.pretrained.inpainters import packed_model
        from facectx.zoo.swapinpaint import SwapInpaint

        name = inpainter_name(path)
        if name is not None:
            return cls.from_pretrained(
                name, device=device, identity=identity, identity_path=identity_path
            )
        ckpt = load_checkpoint(path)
        if is_packed(ckpt):  # a packed SwapInpaint file (a packed cascade: a clear error)
            model, meta = packed_model(ckpt, path)
            ema = meta.ema
        else:
            meta = read_meta(ckpt, path, "swapinpaint")
            model = SwapInpaint.from_config(meta.init_args)
            ema = bool(use_ema and meta.ema)
            prefix = "generator_ema." if ema else "generator."
            state = {
                k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)
            }
            try:
                model.load_state_dict(state, strict=True)
            except RuntimeError as e:
                raise CheckpointError(f"{path}: SwapInpaint weights do not match: {e}") from e
        out = cls._assemble(
            model, meta, path, device, identity, identity_path, allow_random_identity
        )
        out.ema = ema
        out.source = str(Path(path).expanduser().resolve())
        return out

    @classmethod
    def _assemble(
        cls,
        model: nn.Module,
        meta,
        path: str | os.PathLike,
        device: str | torch.device,
        identity: nn.Module | None,
        identity_path: str | None,
        allow_random_identity: bool,
    ) -> Inpainter:
        """An Inpainter over loaded C and G: the identity network the record names (unless
        given), checked against G's z_id size."""
        from facectx.checkpoint import CheckpointError

        trained_with = meta.extra.get("identity") or {}
        if identity is None:
            from facectx.pretrained import load

            if "name" not in trained_with:
                raise CheckpointError(
                    f"{path} does not name its identity network; pass identity= explicitly"
                )
            identity = load(
                trained_with["name"],
                path=identity_path,
                allow_random_init=allow_random_identity,
            )
        dim = int(getattr(identity, "feature_dim", trained_with.get("feature_dim", 0)))
        if dim != model.swap.id_dim:
            raise CheckpointError(
                f"{path} was trained with {trained_with.get('name', 'an identity network')} "
                f"({model.swap.id_dim}-D) but the identity network given is {dim}-D"
            )
        if meta.extra.get("stage") == "content":
            log.warning(
                "%s was saved during the content stage: G is untrained, outputs are meaningless",
                path,
            )
        out = cls(model, identity, device)
        out.ema = bool(meta.ema)
        out.frame = meta.frame
        return out

    # ---- tensors in the canonical frame ------------------------------------------------------
    def _check(self, name: str, x: Tensor, channels: int) -> Tensor:
        if x.ndim != 4 or x.shape[1] != channels or x.shape[-2:] != (self.size, self.size):
            raise ValueError(
                f"{name} must be (B, {channels}, {self.size}, {self.size}) canonical faces, got "
                f"{tuple(x.shape)}; align photos with facectx.faces.FacePreparer (frame size "
                f"{self.size}) or use Inpainter.inpaint_photo"
            )
        return x.to(self.device)

    @torch.inference_mode()
    def embed(self, reference: Tensor) -> Tensor:
        """z_id = I(R) for (B, 3, S, S) references in [-1, 1]."""
        return self.identity(self._check("reference", reference, 3))

    @torch.inference_mode()
    def __call__(self, masked: Tensor, mask: Tensor, reference: Tensor) -> dict[str, Tensor]:
        """``{"content": X̂, "swapped": Y_sp, "output": Y}``, (B, 3, S, S) in [-1, 1], from
        incomplete faces ``masked`` (hole values ignored), keep masks ``mask`` (1 = known) and
        references; no blending (``Y`` pastes Y_sp's hole onto X̂)."""
        masked = self._check("masked", masked, 3)
        mask = self._check("mask", mask, 1)
        z_id = self.embed(reference)
        if z_id.shape[0] != masked.shape[0]:
            z_id = z_id.expand(masked.shape[0], -1) if z_id.shape[0] == 1 else z_id
        return {k: v.clamp(-1, 1) for k, v in self.model(masked, mask, z_id).items()}

    # ---- uint8 arrays in the canonical frame --------------------------------------------------
    def inpaint_aligned(
        self,
        image: np.ndarray,
        keep: np.ndarray,
        reference: np.ndarray,
        blend: bool = True,
        dilate: int = 5,
    ) -> AlignedResult:
        """Inpaint one aligned (S, S, 3) uint8 face given its (S, S) keep mask (1 = known) and
        an aligned reference; the output is Y_sp Poisson-blended into the hole (``blend``) or Y.
        """
        from facectx.blend import poisson_blend

        s = self.size
        for name, a in (("image", image), ("reference", reference)):
            if a.shape != (s, s, 3) or a.dtype != np.uint8:
                raise ValueError(f"{name} must be ({s}, {s}, 3) uint8, got {a.shape} {a.dtype}")
        keep = (np.asarray(keep) > 0.5).astype(np.float32)
        if keep.shape != (s, s):
            raise ValueError(f"keep mask must be ({s}, {s}), got {keep.shape}")
        x = from_uint8(np.asarray(image)[None])
        m = torch.from_numpy(keep)[None, None]
        masked = x * m - (1 - m)
        out = self(masked, m, from_uint8(np.asarray(reference)[None]))
        hole = keep < 0.5
        content, swapped, composite = (
            to_uint8(out[k])[0] for k in ("content", "swapped", "output")
        )
        if blend:
            final = poisson_blend(image, swapped, hole, dilate=dilate)
        else:
            final = image.copy()
            final[hole] = composite[hole]
        return AlignedResult(
            masked=to_uint8(masked)[0],
            content=content,
            reference=np.ascontiguousarray(reference),
            swapped=swapped,
            output=final,
            hole=hole,
        )

    # ---- raw photos ---------------------------------------------------------------------------
    def preparer(self, detector: str | object = "hog", faces: str = "largest"):
        """A ``FacePreparer`` into this model's frame (size = model size, default eye layout)."""
        from facectx.faces.pipeline import FacePreparer
        from facectx.geometry.frame import CanonicalFrame

        return FacePreparer(CanonicalFrame(size=self.size), detector=detector, faces=faces)

    def prepare_reference(self, photo: np.ndarray, preparer=None) -> np.ndarray:
        """The aligned (S, S, 3) uint8 largest face of a reference photo."""
        preparer = preparer or self.preparer()
        res = preparer.run(photo)
        if not res.faces:
            raise InpaintError(f"reference_{res.reason}", f"reference photo: {res.detail}")
        return res.faces[0].image

    def _aligned_keep(self, mask, face, photo_shape, generator) -> np.ndarray:
        s = self.size
        if isinstance(mask, str):
            mask = mask_kind(mask)
        if callable(mask):
            lm = torch.from_numpy(np.asarray(face.landmarks, np.float32))
            return mask(s, lm, generator)[0].numpy()
        hole = np.asarray(mask).astype(bool)
        if hole.shape == (s, s):
            return (~hole).astype(np.float32)
        if hole.shape == tuple(photo_shape[:2]):
            aligned = cv2.warpAffine(
                hole.astype(np.uint8) * 255,
                np.asarray(face.matrix, np.float64),
                (s, s),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0,
            )
            return (aligned < 128).astype(np.float32)
        raise InpaintError(
            "bad_mask",
            f"mask is {hole.shape}; expected the photo's size {tuple(photo_shape[:2])} or the "
            f"model's aligned frame ({s}, {s})",
        )

    def inpaint_photo(
        self,
        photo: np.ndarray,
        reference: np.ndarray,
        mask: str | np.ndarray | Callable[..., Tensor] = "facial",
        preparer=None,
        reference_aligned: bool = False,
        blend: bool = True,
        dilate: int = 5,
        seed: int = 0,
    ) -> PhotoResult:
        """Inpaint the face(s) of a raw (H, W, 3) uint8 RGB photo at full resolution.

        Args:
            photo: the photo to inpaint.
            reference: the reference photo (its largest face is used), or an aligned (S, S, 3)
                face when ``reference_aligned``.
            mask: ``facial`` | ``ocular`` | ``center``, a keep-mask callable
                ``(size, landmarks, generator)``, or a boolean hole array (True = fill) of the
                photo's size (warped into the frame) or of the frame's size.
            preparer: a ``FacePreparer`` into this model's frame; None = HOG, largest face.
            reference_aligned: ``reference`` is already an aligned face.
            blend: Poisson-blend Y_sp into the hole (the paper's prediction); False pastes it.
            dilate: pixels (in the frame) the blending region extends beyond the hole.
            seed: seed of random mask kinds.

        Raises:
            InpaintError: no usable face in the photo or the reference (``reason`` says which).
        """
        import cv2

        from facectx.faces.align import warp_to_source

        preparer = preparer or self.preparer()
        ref = reference if reference_aligned else self.prepare_reference(reference, preparer)
        res = preparer.run(photo)
        if not res.faces:
            raise InpaintError(res.reason, res.detail)
        generator = torch.Generator().manual_seed(int(seed))
        out = photo.copy()
        hole_src = np.zeros(photo.shape[:2], bool)
        results = []
        for face in res.faces:
            keep = self._aligned_keep(mask, face, photo.shape, generator)
            r = self.inpaint_aligned(face.image, keep, ref, blend=blend, dilate=dilate)
            results.append(r)
            hole = warp_to_source(r.hole.astype(np.uint8) * 255, face.matrix, photo.shape) >= 128
            if isinstance(mask, np.ndarray) and mask.shape == photo.shape[:2]:
                hole &= mask.astype(bool)  # never change a pixel outside the user's own hole
            if not hole.any():
                continue
            # bicubic: a 128 px result spread over a large face shows bilinear's diamonds
            filled = warp_to_source(r.output, face.matrix, photo.shape, cv2.INTER_CUBIC)
            a = hole_alpha(hole, face.matrix)[hole][:, None]
            out[hole] = np.clip(np.round(a * filled[hole] + (1 - a) * photo[hole]), 0, 255)
            hole_src |= hole
        return PhotoResult(image=out, hole=hole_src, faces=results)


__all__ = [
    "MASK_KINDS",
    "NO_SHIPPED_INPAINTER",
    "AlignedResult",
    "InpaintError",
    "Inpainter",
    "PhotoResult",
    "hole_alpha",
    "inpainter_name",
    "load_inpainter",
    "mask_kind",
    "read_hole_file",
]
