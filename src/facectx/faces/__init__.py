"""Face detection, landmarks, alignment into the canonical frame.

The common names are importable from here; submodules load on first use, so importing
``facectx.faces.frame`` stays cheap (no dlib, OpenCV or torch).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "CanonicalFrame": "facectx.faces.frame",
    "alignment_matrix": "facectx.faces.frame",
    "AlignedFace": "facectx.faces.pipeline",
    "FacePreparer": "facectx.faces.pipeline",
    "PrepareResult": "facectx.faces.pipeline",
    "ImageReadError": "facectx.faces.io",
    "read_image": "facectx.faces.io",
    "warp_to_source": "facectx.faces.align",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'facectx.faces' has no attribute {name!r}")
