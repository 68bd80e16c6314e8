"""Inference without Lightning: load a trained generator (or a shipped model) and hallucinate
context. :func:`load_hallucinator` is the one reading of a ``ckpt=`` value every tool shares;
it gives a :class:`Hallucinator` (cascade) or an ``ExemplarHallucinator``
(:mod:`facectx.inference.exemplar`), both :class:`~facectx.inference.portrait_model.PortraitModel`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from facectx.checkpoint import CheckpointError, check_finished, load_checkpoint, read_meta
from facectx.inference.portrait_model import PortraitModel


def pretrained_name(ckpt: str | os.PathLike | None, default: str | None = None) -> str | None:
    """The shipped model a ``ckpt=`` value names (None, ``pretrained`` or ``pretrained:NAME``),
    or None when it is a file: the one reading of that value every tool shares. ``default``:
    the tool's model for a bare value (None = ``DEFAULT_PRETRAINED``, the cascade)."""
    from facectx.pretrained.hallucinators import DEFAULT_PRETRAINED

    text = "" if ckpt is None else str(ckpt).strip()
    if text in ("", "pretrained") or text.startswith("pretrained:"):
        return text.partition(":")[2] or default or DEFAULT_PRETRAINED
    return None


def load_hallucinator(
    ckpt: str | os.PathLike | None,
    device: str | torch.device = "cpu",
    use_ema: bool = True,
    samples: int = 1,
    seed: int = 0,
    top: int = 1,
    default: str | None = None,
) -> PortraitModel:
    """What the command-line tools run: a checkpoint, packed generator or packed exemplar bank,
    or, when ``ckpt`` is None (or ``pretrained`` / ``pretrained:NAME``), a model shipped with
    facectx, saying so. ``samples``, ``seed`` and ``top`` as in :meth:`Hallucinator.from_pretrained`;
    ``default`` as in :func:`pretrained_name`.
    """
    import logging

    text = "" if ckpt is None else str(ckpt).strip()
    name = pretrained_name(text, default)
    options = {"samples": samples, "seed": seed, "top": top}
    if name is not None:
        model = Hallucinator.from_pretrained(name, device=device, **options)
        msg = (
            f"no ckpt= given: using the pretrained model '{name}' shipped with facectx"
            if not text
            else f"using the pretrained model '{name}' shipped with facectx"
        )
        logging.getLogger("facectx").info("%s (%s, %s)", msg, model.source, model.file)
        return model
    return Hallucinator.from_checkpoint(text, device=device, use_ema=use_ema, **options)


def cascade_generator(model: PortraitModel, what: str) -> torch.nn.Module:
    """The generator of a cascade model, or a ``ConfigError`` saying that ``what`` (a tool)
    needs one (the exemplar model has no network to run or export)."""
    from facectx._conf import ConfigError

    generator = getattr(model, "generator", None)
    if generator is None:
        raise ConfigError(
            f"{what} needs a cascade generator, and {model.source} is an exemplar model (it "
            "retrieves training faces, it has no network): use ckpt=pretrained:lfw-128 or a "
            "checkpoint"
        )
    return generator


class Hallucinator(PortraitModel):
    """Hallucinate context and background around masked faces with a trained cascade.

    Input: canonical aligned faces (see ``facectx.geometry.frame``) as ``masked`` (B,3,S,S) in
    [-1, 1] (black, i.e. -1, outside the face) and ``mask`` (B,1,S,S) keep-masks (1 = face).
    Output: (B,3,S,S) in [-1, 1]; face pixels are the input's, exactly. The cascade is
    deterministic: one portrait per face (``samples`` 1; for several, the exemplar model
    ``pretrained:exemplar-lfw-128``, :class:`facectx.inference.exemplar.ExemplarHallucinator`).

    Args:
        generator: the cascade generator.
        device: where to run it.
        samples: portraits per face: 1 (more raises ValueError; the argument is shared with
            the exemplar model).
        seed: unused (the cascade draws nothing); shared with the exemplar model.
    """

    def __init__(
        self,
        generator: torch.nn.Module,
        device: str | torch.device = "cpu",
        samples: int = 1,
        seed: int = 0,
    ) -> None:
        self.samples, self.seed = 1, int(seed)
        self.check_samples(samples)
        self.device = torch.device(device)
        self.generator = generator.to(self.device).eval().requires_grad_(False)
        self.size = int(generator.sizes[-1])
        self.ema = False  # whether the weights are a checkpoint's EMA weights
        self.source = "in-memory generator"  # what the weights are (shown by the CLIs)
        self.frame: dict | None = None  # canonical frame of the training data, when known
        self.file: Path | None = None  # the weights file, for shipped models

    @staticmethod
    def _one_sample(k: int) -> int:
        """``k`` if 1, else the error (a ``ConfigError``, so a ``ValueError``) that names the
        model that gives several."""
        from facectx._conf import ConfigError

        if k > 1:
            raise ConfigError(
                f"samples={k}: the cascade is deterministic and gives one portrait per face; "
                "for several per face use the exemplar model (ckpt=pretrained:exemplar-lfw-128, "
                "Hallucinator.from_pretrained('exemplar-lfw-128', samples=K))"
            )
        return k

    def check_samples(self, samples: int | None) -> int:
        return self._one_sample(super().check_samples(samples))

    def digest(self) -> str:
        from facectx._jobrecord import weights_digest

        return weights_digest(self.generator)

    @classmethod
    def from_pretrained(
        cls,
        name: str | None = None,
        device: str | torch.device = "cpu",
        path: str | os.PathLike | None = None,
        samples: int = 1,
        seed: int = 0,
        top: int = 1,
    ) -> PortraitModel:
        """A model that ships with facectx (offline; sha256-verified): a ``Hallucinator`` for a
        cascade, an ``ExemplarHallucinator`` for an exemplar model (``exemplar-lfw-128``).

        Args:
            name: shipped model (``facectx.pretrained.hallucinators.PRETRAINED``); None =
                ``DEFAULT_PORTRAIT`` (``exemplar-lfw-128``); ``lfw-128`` is the cascade.
            device: where to run it.
            path: use this copy of the file instead of the packaged one (still verified).
            samples: portraits per face; > 1 only for exemplar models (ValueError otherwise).
            seed: exemplar models: seed of the draw among the best ``top`` candidates.
            top: exemplar models: draw among the best ``top`` (<= samples: the best by rank).

        Raises:
            UnknownModelError: (``facectx.pretrained``; a ``KeyError``) ``name`` is not a
                shipped model; the message lists those that are.
        """
        from facectx.pretrained.hallucinators import (
            DEFAULT_PORTRAIT,
            PRETRAINED,
            load_packed_record,
            resolve_pretrained,
        )
        from facectx.pretrained.registry import sha256sum

        name = name or DEFAULT_PORTRAIT
        exemplar = name in PRETRAINED and PRETRAINED[name].kind == "exemplar"
        if not exemplar:
            cls._one_sample(int(samples))  # before loading anything
        file = resolve_pretrained(name, path)
        out: PortraitModel
        if exemplar:
            from facectx.inference.exemplar import ExemplarHallucinator

            out = ExemplarHallucinator.from_file(file, device, samples=samples, seed=seed, top=top)
        else:
            generator, meta = load_packed_record(file)
            out = cls(generator, device, samples=samples, seed=seed)
            out.ema, out.frame, out.file = meta.ema, meta.frame, file
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
        samples: int = 1,
        seed: int = 0,
        top: int = 1,
    ) -> PortraitModel:
        """Rebuild the generator from a ``facectx.train`` checkpoint (EMA weights if present);
        a packed exemplar bank file gives an ``ExemplarHallucinator``.

        Args:
            path: a checkpoint written by ``python -m facectx.train``, a packed generator, or
                a packed exemplar bank (``python -m facectx.bank``).
            device: where to run.
            use_ema: prefer the EMA weights when the checkpoint has them.
            allow_unfinished: load a ProGAN checkpoint saved before the network grew to its
                final size (it makes smaller portraits); False raises ``CheckpointError``.
            samples, seed, top: as in :meth:`from_pretrained`.
        """
        from facectx.pretrained.exemplar_bank import PackedBank, is_bank
        from facectx.pretrained.hallucinators import is_packed, load_packed_record
        from facectx.zoo import CascadeGenerator

        ckpt = load_checkpoint(path)
        if is_bank(ckpt):
            from facectx.inference.exemplar import ExemplarHallucinator

            bank = PackedBank(ckpt, path)
            return ExemplarHallucinator(bank, device, samples=samples, seed=seed, top=top)
        if is_packed(ckpt):
            generator, meta = load_packed_record(path)
            out = cls(generator, device, samples=samples, seed=seed)
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
        out = cls(generator, device, samples=samples, seed=seed)
        out.ema = prefix == "generator_ema."
        out.frame = meta.frame
        out.source = str(path)
        return out

    def _portraits(
        self, masked: Tensor, mask: Tensor, samples: int, seed: int | None, **known: Tensor | None
    ) -> Tensor:
        """(B, 3, S, S) portraits; ``seed`` and the ``known`` landmarks and valid masks are not
        used (the exemplar model's arguments), ``samples`` is 1."""
        out = self.generator.hallucinate(masked.to(self.device), mask.to(self.device))
        return out.clamp(-1, 1)
