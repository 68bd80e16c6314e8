"""Face detection, landmarks, alignment into the canonical frame.

The common names are importable from here; submodules load on first use, so importing
``facectx.faces`` stays cheap (no dlib, OpenCV or torch until a name is used).
"""

from __future__ import annotations

from facectx._lazy import lazy_exports

_LAZY = {
    "CanonicalFrame": "facectx.geometry.frame",
    "alignment_matrix": "facectx.geometry.frame",
    "AlignedFace": "facectx.faces.pipeline",
    "FacePreparer": "facectx.faces.pipeline",
    "PrepareResult": "facectx.faces.pipeline",
    "ImageReadError": "facectx.faces.io",
    "read_image": "facectx.faces.io",
    "warp_to_source": "facectx.faces.align",
}

__getattr__, __all__ = lazy_exports(__name__, _LAZY)
