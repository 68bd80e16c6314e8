"""Mask generators: pure functions of (shape, landmarks, generator).

All masks are keep masks: 1 = pixel given to the model, 0 = pixel to generate. See docs/masks.md.
Names load lazily so that ``facectx.masks.hull`` (used by preparation workers) needs no torch.
"""

from __future__ import annotations

from facectx._lazy import lazy_exports

_LAZY = {
    "hull_mask": "facectx.masks.hull",
    "IrregularMask": "facectx.masks.irregular",
    "irregular_strokes": "facectx.masks.irregular",
    "CenterMask": "facectx.masks.kinds",
    "FaceHullMask": "facectx.masks.kinds",
    "FacialMask": "facectx.masks.kinds",
    "MaskKind": "facectx.masks.kinds",
    "OcularMask": "facectx.masks.kinds",
    "face_hull": "facectx.masks.kinds",
    "apply_mask": "facectx.masks.ops",
    "dilate_hole": "facectx.masks.ops",
    "downsample_keep": "facectx.masks.ops",
    "feather": "facectx.masks.ops",
    "MaskFn": "facectx.masks.sampler",
    "MaskSampler": "facectx.masks.sampler",
    "sample_batch": "facectx.masks.sampler",
}

__getattr__, __all__ = lazy_exports(__name__, _LAZY)
