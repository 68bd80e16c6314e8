"""Mask generators: pure functions of (shape, landmarks, generator).

All masks are keep masks: 1 = pixel given to the model, 0 = pixel to generate. See docs/masks.md.
"""

from facectx.masks.hull import hull_mask
from facectx.masks.irregular import IrregularMask, irregular_strokes
from facectx.masks.kinds import (
    CenterMask,
    FaceHullMask,
    FacialMask,
    MaskKind,
    OcularMask,
    face_hull,
)
from facectx.masks.ops import apply_mask, dilate_hole, downsample_keep, feather
from facectx.masks.sampler import MaskFn, MaskSampler, sample_batch

__all__ = [
    "CenterMask",
    "FaceHullMask",
    "FacialMask",
    "IrregularMask",
    "MaskFn",
    "MaskKind",
    "MaskSampler",
    "OcularMask",
    "apply_mask",
    "dilate_hole",
    "downsample_keep",
    "face_hull",
    "feather",
    "hull_mask",
    "irregular_strokes",
    "sample_batch",
]
