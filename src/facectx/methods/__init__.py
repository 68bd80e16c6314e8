"""Methods that ``python -m facectx.evaluate`` compares: baselines, checkpoints, output folders.

Every method maps a batch of masked faces to completed faces (``base.Method.predict``); see
``base`` for the interface and ``baselines`` for the non-learned baselines (``mask_only``,
``mean_context``, ``telea``, ``navier_stokes``, ``nearest_neighbour``; configs in
``conf/method/``) and ``swapinpaint`` for the reference-guided rows (SwapInpaint checkpoints,
``paste_reference``). Names load lazily.
"""

from __future__ import annotations

from facectx._lazy import lazy_exports

_LAZY = {
    "Method": "facectx.methods.base",
    "Prediction": "facectx.methods.base",
    "MaskOnly": "facectx.methods.baselines",
    "MeanContext": "facectx.methods.baselines",
    "CvInpaint": "facectx.methods.baselines",
    "NearestNeighbour": "facectx.methods.baselines",
    "CheckpointMethod": "facectx.methods.external",
    "PredDirMethod": "facectx.methods.external",
    "SwapInpaintMethod": "facectx.methods.swapinpaint",
    "PasteReference": "facectx.methods.swapinpaint",
}

__getattr__, __all__ = lazy_exports(__name__, _LAZY)
