"""Mask generators: pure functions of (shape, landmarks, generator).

All masks are keep masks: 1 = pixel given to the model, 0 = pixel to generate. See docs/masks.md.
Names load lazily: importing the package costs nothing until a mask is used. The hull mask itself
lives in ``facectx.geometry.hull`` (numpy and OpenCV only), below faces/ and masks/.
"""

from __future__ import annotations

from facectx._lazy import lazy_exports

_LAZY = {
    "hull_mask": "facectx.geometry.hull",
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
    "downsample_keep": "facectx.zoo.pyramid",
    "feather": "facectx.masks.ops",
    "MaskFn": "facectx.masks.sampler",
    "MaskSampler": "facectx.masks.sampler",
    "sample_batch": "facectx.masks.sampler",
}

__getattr__, __all__ = lazy_exports(__name__, _LAZY)
