"""What every model that gives faces a context offers, whatever makes the context.

:class:`PortraitModel` is the interface the tools use (``hallucinate``, the web demo, the
evaluation's ``ckpt=``): ``size``, ``frame``, ``source``, ``file``, ``ema``, ``samples``,
``seed``, ``__call__(masked, mask, ...)`` on tensors, :meth:`~PortraitModel.hallucinate_uint8` on
aligned uint8 faces and :meth:`~PortraitModel.prepare_photo` /
:meth:`~PortraitModel.hallucinate_photo` on photos. Two models implement it: the trained cascade
(``Hallucinator``, one deterministic portrait per face) and the exemplar model
(``ExemplarHallucinator``, ``samples=K`` portraits per face from K training exemplars).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor


class PortraitModel:
    """Base of the inference models (see the module docstring).

    Subclasses set the attributes below and implement :meth:`digest` and :meth:`_portraits`,
    the call on tensors ``__call__(masked, mask, landmarks=None, valid=None, samples=None,
    seed=None)`` once its arguments are checked: ``masked`` (B, 3, S, S) canonical faces in
    [-1, 1] (black outside the face), ``mask`` (B, 1, S, S) keep-masks, ``landmarks`` (B, 68, 2) aligned px and ``valid`` (B, 1, S, S) {0, 1} where
    known (a model that does not use them ignores them), ``samples`` and ``seed`` None = the
    model's; it returns (B, 3, S, S) in [-1, 1], or (B, K, 3, S, S) with ``samples`` K > 1, the
    kept face pixels equal to the input's.
    """

    #: whether ``samples`` > 1 gives several different portraits per face
    sampling: ClassVar[bool] = False
    #: whether the model uses the faces' landmarks (``landmarks=`` of the calls)
    uses_landmarks: ClassVar[bool] = False
    #: whether the web demo pastes the portraits' context back into the photo (the cascade's
    #: generated context, in a soft oval); False for a model whose context is a whole other head
    pastes_back: ClassVar[bool] = True

    size: int  # px side of the canonical faces it takes and makes
    frame: dict | None  # canonical frame of its training data, when known
    source: str  # what the model is (shown by the CLIs, recorded in output folders)
    file: Path | None  # the model's file, for shipped models
    ema: bool  # whether the weights are a checkpoint's EMA weights
    samples: int  # portraits per face (K); > 1: calls return (B, K, ...)
    seed: int  # seed of the choice among several candidates (sampling models)

    def digest(self) -> str:
        """16 hex digits identifying what the model computes (recorded in output folders)."""
        raise NotImplementedError

    @torch.inference_mode()
    def __call__(
        self,
        masked: Tensor,
        mask: Tensor,
        landmarks: Tensor | None = None,
        valid: Tensor | None = None,
        samples: int | None = None,
        seed: int | None = None,
    ) -> Tensor:
        """(B, 3, S, S) portraits, or (B, K, 3, S, S) with K = ``samples`` > 1 (None = the
        model's; see the class docstring): checks ``samples`` and the faces' shape, then runs
        the subclass's :meth:`_portraits`."""
        k = self.check_samples(samples)
        s = self.size
        if masked.ndim != 4 or masked.shape[1:] != (3, s, s):
            raise ValueError(
                f"masked must be (B, 3, {s}, {s}) canonical faces in [-1, 1], "
                f"got {tuple(masked.shape)}; prepare photos with `python -m facectx.prepare`."
            )
        return self._portraits(masked, mask, k, seed, landmarks=landmarks, valid=valid)

    def _portraits(
        self, masked: Tensor, mask: Tensor, samples: int, seed: int | None, **known: Tensor | None
    ) -> Tensor:
        """The call on checked arguments (``samples`` a count :meth:`check_samples` accepted;
        ``known``: ``landmarks`` and ``valid``, each None when not given)."""
        raise NotImplementedError

    def kept(self, masked: Tensor, mask: Tensor) -> Tensor:
        """(B, 1, S, S): the pixels of ``mask`` that the outputs keep exactly (all of them
        here; the exemplar model gives context to the rim pixels that are not face)."""
        return mask

    def kept_uint8(self, images: list[np.ndarray], keeps: list[np.ndarray]) -> np.ndarray:
        """(N, S, S) uint8 {0, 1}: the pixels of each keep-mask that :meth:`hallucinate_uint8`
        copies from the input (what a caller should record as the face kept)."""
        from facectx.masks.ops import apply_mask
        from facectx.pixels import from_uint8

        mask = _masks(keeps)
        kept = self.kept(apply_mask(from_uint8(np.stack(images)), mask), mask)
        return (kept[:, 0] > 0.5).numpy().astype(np.uint8)

    def check_samples(self, samples: int | None) -> int:
        """``samples`` (None = the model's) as a count this model can give, else a
        ``ConfigError`` (a ``ValueError``: the command line shows it as one line)."""
        from facectx._conf import ConfigError

        k = self.samples if samples is None else int(samples)
        if k < 1:
            raise ConfigError(f"samples must be >= 1, got {k}")
        return k

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

    def hallucinate_uint8(
        self,
        images: list[np.ndarray],
        keeps: list[np.ndarray],
        landmarks: list[np.ndarray] | None = None,
        valid: list[np.ndarray] | None = None,
        samples: int | None = None,
        seed: int | None = None,
    ) -> np.ndarray:
        """(S, S, 3) uint8 aligned faces and (S, S) {0,1} keep-masks -> (N, S, S, 3) uint8, or
        (N, K, S, S, 3) with ``samples`` K > 1 (None = the model's ``samples``).

        ``landmarks`` ((68, 2) aligned px each) and ``valid`` ((S, S) {0, 1}: inside the photo)
        are used by models that use them (the exemplar model; the cascade ignores them). Kept
        pixels (:meth:`kept`) are copied from the input in uint8, so they are bit-exact whatever
        the device or precision the model ran at."""
        from facectx.masks.ops import apply_mask
        from facectx.pixels import from_uint8, to_uint8

        k = self.check_samples(samples)
        image = from_uint8(np.stack(images))
        mask = _masks(keeps)
        extra = {}
        if landmarks is not None:
            extra["landmarks"] = torch.from_numpy(np.stack(landmarks).astype(np.float32))
        if valid is not None:
            extra["valid"] = _masks(valid)
        masked = apply_mask(image, mask)
        out = to_uint8(self(masked, mask, samples=k, seed=seed, **extra))
        keep = (self.kept(masked, mask)[:, 0] > 0.5).numpy()[..., None]
        if k > 1:
            keep = keep[:, None]
            return np.where(keep, np.stack(images)[:, None], out)
        return np.where(keep, np.stack(images), out)

    def hallucinate_photo(
        self, photo: str | os.PathLike | np.ndarray, faces: str = "all", **prepare: str
    ) -> list[np.ndarray]:
        """Photo in, portraits out: every kept face aligned, masked to its landmark hull and
        given hallucinated context. Returns (S, S, 3) uint8 RGB images, largest face first
        (empty when no face is found); with ``samples`` K > 1, a (K, S, S, 3) array per face.
        ``faces`` and ``prepare`` go to :meth:`prepare_photo`; ``faces="all"`` as on the command
        line: a user's photo gets a portrait per face."""
        found = self.prepare_photo(photo, faces=faces, **prepare)
        if not found:
            return []
        return list(
            self.hallucinate_uint8(
                [f.image for f in found],
                [f.mask * f.valid for f in found],
                landmarks=[f.landmarks for f in found],
                valid=[f.valid for f in found],
            )
        )


def _masks(arrays: list[np.ndarray]) -> Tensor:
    """(S, S) arrays, nonzero = 1 -> a (N, 1, S, S) float {0, 1} tensor."""
    return torch.stack([torch.from_numpy((m > 0).astype(np.float32))[None] for m in arrays])


__all__ = ["PortraitModel"]
