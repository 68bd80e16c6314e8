"""Scoring context hallucination and inpainting: the harness, its methods and its tables.

The floor above ``metrics`` (pure metric functions) and beside ``inference``:

* ``method``: the ``Method`` interface every row implements (``predict`` masked faces).
* ``baselines``: the non-learned rows (``mask_only``, ``mean_context``, ``telea``,
  ``navier_stokes``, ``nearest_neighbour``; configs in ``conf/method/``).
* ``exemplar``: ``exemplar``, retrieved training contexts fitted to the face (issue 28).
* ``external``: a checkpoint (``CheckpointMethod``) or a folder of outputs (``PredDirMethod``).
* ``swapinpaint``: the reference-guided rows (SwapInpaint checkpoints, ``paste_reference``).
* ``harness``: ``Evaluator`` (scores methods on a prepared folder), ``EvaluationResult``.
* ``tables``: the results files (``results.md``/``.csv``, ``per_image.csv``, samples).
* ``from_config``: an evaluation described by ``conf/eval.yaml`` (``evaluate_config``), and the
  settings that make two evaluations comparable (``settings_key``).
* ``sweep``: the table of an ablation sweep (``facectx.report``).

``python -m facectx.evaluate`` and ``python -m facectx.report`` are the front doors. Names load
lazily: importing this package imports neither torch nor OpenCV.
"""

from __future__ import annotations

from facectx._lazy import lazy_exports

_LAZY = {
    "Method": "facectx.evaluation.method",
    "Prediction": "facectx.evaluation.method",
    "MaskOnly": "facectx.evaluation.baselines",
    "MeanContext": "facectx.evaluation.baselines",
    "CvInpaint": "facectx.evaluation.baselines",
    "NearestNeighbour": "facectx.evaluation.baselines",
    "Exemplar": "facectx.evaluation.exemplar",
    "CheckpointMethod": "facectx.evaluation.external",
    "PredDirMethod": "facectx.evaluation.external",
    "SwapInpaintMethod": "facectx.evaluation.swapinpaint",
    "PasteReference": "facectx.evaluation.swapinpaint",
    "Evaluator": "facectx.evaluation.harness",
    "EvaluationResult": "facectx.evaluation.harness",
    "Instruments": "facectx.evaluation.harness",
    "evaluate_config": "facectx.evaluation.from_config",
    "settings_key": "facectx.evaluation.from_config",
    "build_report": "facectx.evaluation.sweep",
}

__getattr__, __all__ = lazy_exports(__name__, _LAZY)
