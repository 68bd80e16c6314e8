"""Inference without Lightning: load a trained generator and hallucinate context."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from facectx.checkpoint import CheckpointError, check_finished, load_checkpoint, read_meta


def pretrained_name(ckpt: str | os.PathLike | None) -> str | None:
    """The shipped model a ``ckpt=`` value names (None, ``pretrained`` or ``pretrained:NAME``),
    or None when it is a file: the one reading of that value every tool shares."""
    from facectx.pretrained.hallucinators import DEFAULT_PRETRAINED

    text = "" if ckpt is None else str(ckpt).strip()
    if text in ("", "pretrained") or text.startswith("pretrained:"):
        return text.partition(":")[2] or DEFAULT_PRETRAINED
    return None


def load_hallucinator(
    ckpt: str | os.PathLike | None, device: str | torch.device = "cpu", use_ema: bool = True
) -> Hallucinator:
    """What the command-line tools run: a checkpoint or packed file, or, when ``ckpt`` is None
    (or ``pretrained`` / ``pretrained:NAME``), a model shipped with facectx, saying so."""
    import logging

    text = "" if ckpt is None else str(ckpt).strip()
    name = pretrained_name(text)
    if name is not None:
        model = Hallucinator.from_pretrained(name, device=device)
        msg = (
            f"no ckpt= given: using the pretrained model '{name}' shipped with facectx"
            if not text
            else f"using the pretrained model '{name}' shipped with facectx"
        )
        logging.getLogger("facectx").info("%s (%s, %s)", msg, model.source, model.file)
        return model
    return Hallucinator.from_checkpoint(text, device=device, use_ema=use_ema)


class Hallucinator:
    """Hallucinate context and background around masked faces with a trained cascade.

    Input: canonical aligned faces (see ``facectx.geometry.frame``) as ``masked`` (B,3,S,S) in
    [-1, 1] (black, i.e. -1, outside the face) and ``mask`` (B,1,S,S) keep-masks (1 = face).
    Output: (B,3,S,S) in [-1, 1]; face pixels are the input's, exactly.
    """

    def __init__(self, generator: torch.nn.Module, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.generator = generator.to(self.device).eval().requires_grad_(False)
        self.size = int(generator.sizes[-1])
        self.ema = False  # whether the weights are a checkpoint's EMA weights
        self.source = "in-memory generator"  # what the weights are (shown by the CLIs)
        self.frame: dict | None = None  # canonical frame of the training data, when known
        self.file: Path | None = None  # the weights file, for shipped models

    @classmethod
    def from_pretrained(
        cls,
        name: str = "lfw-128",
        device: str | torch.device = "cpu",
        path: str | os.PathLike | None = None,
    ) -> Hallucinator:
        """A model that ships with facectx (offline; sha256-verified).

        Args:
            name: shipped model (``facectx.pretrained.hallucinators.PRETRAINED``).
            device: where to run it.
            path: use this copy of the file instead of the packaged one (still verified).

        Raises:
            UnknownModelError: (``facectx.pretrained``; a ``KeyError``) ``name`` is not a
                shipped model; the message lists those that are.
        """
        from facectx.pretrained.hallucinators import load_packed_record, resolve_pretrained

        file = resolve_pretrained(name, path)
        generator, meta = load_packed_record(file)
        out = cls(generator, device)
        out.ema, out.frame = meta.ema, meta.frame
        from facectx.pretrained.registry import sha256sum

        out.file = file
        # stable across machines (augment records it to refuse mixing models in one folder)
        out.source = f"pretrained:{name}@{sha256sum(file)[:12]}"
        return out

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "cpu",
        use_ema: bool = True,
        allow_unfinished: bool = False,
    ) -> Hallucinator:
        """Rebuild the generator from a ``facectx.train`` checkpoint (EMA weights if present).

        Args:
            path: a checkpoint written by ``python -m facectx.train`` or a packed generator.
            device: where to run.
            use_ema: prefer the EMA weights when the checkpoint has them.
            allow_unfinished: load a ProGAN checkpoint saved before the network grew to its
                final size (it makes smaller portraits); False raises ``CheckpointError``.
        """
        from facectx.pretrained.hallucinators import is_packed, load_packed_record
        from facectx.zoo import CascadeGenerator

        ckpt = load_checkpoint(path)
        if is_packed(ckpt):
            generator, meta = load_packed_record(path)
            out = cls(generator, device)
            out.ema, out.frame, out.source = meta.ema, meta.frame, str(path)
            return out
        meta = read_meta(ckpt, path, "cascade")
        if not allow_unfinished:
            check_finished(path, meta)
        generator = CascadeGenerator(**meta.init_args)
        state = ckpt["state_dict"]
        prefix = "generator_ema." if use_ema and meta.ema else "generator."
        weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        try:
            generator.load_state_dict(weights, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"{path}: generator weights do not match: {e}") from e
        out = cls(generator, device)
        out.ema = prefix == "generator_ema."
        out.frame = meta.frame
        out.source = str(path)
        return out

    @torch.inference_mode()
    def __call__(self, masked: Tensor, mask: Tensor) -> Tensor:
        if masked.ndim != 4 or masked.shape[1:] != (3, self.size, self.size):
            raise ValueError(
                f"masked must be (B, 3, {self.size}, {self.size}) canonical faces in [-1, 1], "
                f"got {tuple(masked.shape)}; prepare photos with `python -m facectx.prepare`."
            )
        out = self.generator.hallucinate(masked.to(self.device), mask.to(self.device))
        return out.clamp(-1, 1)

    def prepare_photo(
        self,
        photo: str | os.PathLike | np.ndarray,
        faces: str = "all",
        detector: str = "hog",
        landmarker: str = "dlib",
    ) -> list:
        """Detect and align the faces of one photo in this model's canonical frame.

        Args:
            photo: an image file (any format Pillow reads; grayscale/RGBA/EXIF handled) or an
                (H, W, 3) uint8 RGB array.
            faces: ``all`` (every face, largest first; as ``python -m facectx.hallucinate``),
                ``largest`` or ``one`` (skip photos with several).
            detector, landmarker: as in ``conf/detector`` and ``conf/landmarks``.

        Returns:
            ``facectx.faces.pipeline.AlignedFace`` items; empty when no face qualifies.
        """
        from facectx.faces.io import read_image
        from facectx.faces.pipeline import FacePreparer
        from facectx.geometry.frame import CanonicalFrame

        key = (faces, detector, landmarker)
        if getattr(self, "_preparer_key", None) != key:
            self._preparer = FacePreparer(
                CanonicalFrame.from_record(self.size, self.frame),
                detector=detector,
                landmarker=landmarker,
                faces=faces,
            )
            self._preparer_key = key
        image = photo if isinstance(photo, np.ndarray) else read_image(photo)
        return self._preparer.prepare(image)

    def hallucinate_uint8(self, images: list[np.ndarray], keeps: list[np.ndarray]) -> np.ndarray:
        """(S, S, 3) uint8 aligned faces and (S, S) {0,1} keep-masks -> (N, S, S, 3) uint8.

        Kept pixels are copied from the input in uint8, so they are bit-exact whatever the
        device or precision the generator ran at."""
        from facectx.masks.ops import apply_mask
        from facectx.pixels import from_uint8, to_uint8

        image = from_uint8(np.stack(images))
        mask = torch.stack([torch.from_numpy((k > 0).astype(np.float32))[None] for k in keeps])
        out = to_uint8(self(apply_mask(image, mask), mask))
        keep = np.stack([(k > 0) for k in keeps])[..., None]
        return np.where(keep, np.stack(images), out)

    def hallucinate_photo(
        self, photo: str | os.PathLike | np.ndarray, faces: str = "all", **prepare: str
    ) -> list[np.ndarray]:
        """Photo in, portraits out: every kept face aligned, masked to its landmark hull and
        given hallucinated context. Returns (S, S, 3) uint8 RGB images, largest face first
        (empty when no face is found). ``faces`` and ``prepare`` go to :meth:`prepare_photo`;
        ``faces="all"`` as on the command line: a user's photo gets a portrait per face."""
        found = self.prepare_photo(photo, faces=faces, **prepare)
        if not found:
            return []
        return list(
            self.hallucinate_uint8([f.image for f in found], [f.mask * f.valid for f in found])
        )
