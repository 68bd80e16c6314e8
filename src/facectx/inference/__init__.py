"""Inference without Lightning: trained models as plain objects.

* :class:`Hallucinator` (context hallucination; ``from_pretrained("lfw-128")``,
  ``from_checkpoint(path)``) in ``inference.hallucinator``, and the exemplar model
  :class:`ExemplarHallucinator` (``from_pretrained("exemplar-lfw-128", samples=K)``; its bank
  file from :func:`pack_bank`) in ``inference.exemplar``, both a :class:`PortraitModel`;
* :class:`Inpainter` (SwapInpaint, identity-specific inpainting; ``from_pretrained("lfw-swap-128")``,
  ``from_checkpoint(path)``) in ``inference.inpainter``;
* the checkpoint contract's reader (``load_checkpoint``, ``CheckpointError``) from
  ``facectx.checkpoint``.

The command-line front doors (``hallucinate``, ``inpaint``, ``augment``, ``background``,
``export``, ``evaluate``, ``app``) are built on these; nothing here imports them.
Names load on first use.
"""

from __future__ import annotations

from facectx._lazy import lazy_exports

_LAZY = {
    "CheckpointError": "facectx.checkpoint",
    "check_finished": "facectx.checkpoint",
    "checkpoint_error": "facectx.checkpoint",
    "load_checkpoint": "facectx.checkpoint",
    "Hallucinator": "facectx.inference.hallucinator",
    "load_hallucinator": "facectx.inference.hallucinator",
    "PortraitModel": "facectx.inference.portrait_model",
    "ExemplarHallucinator": "facectx.inference.exemplar",
    "pack_bank": "facectx.inference.exemplar",
    "AlignedResult": "facectx.inference.inpainter",
    "InpaintError": "facectx.inference.inpainter",
    "Inpainter": "facectx.inference.inpainter",
    "PhotoResult": "facectx.inference.inpainter",
    "load_inpainter": "facectx.inference.inpainter",
    "mask_kind": "facectx.inference.inpainter",
    "read_hole_file": "facectx.inference.inpainter",
}

__getattr__, __all__ = lazy_exports(__name__, _LAZY)
