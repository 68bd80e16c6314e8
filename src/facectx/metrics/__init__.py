"""Evaluation metrics: pure functions on tensors / landmarks, and a registry by name.

* ``image``: ``mse``, ``psnr``, ``ssim`` per image, on the frame or a region (torchmetrics), and
  ``colour_detail`` (fine-scale colour, for colour noise), ``edge_strength`` (for seams).
* ``identity``: ``pearson`` (the mean match score of eq. 7), ``cosine``, dlib's own descriptor.
* ``verification``: ``tpr_at_fpr``, ``best_threshold``, ``accuracy``, LFW ``pairs.csv`` helpers.
* ``retrieval``: top-1 and TPR at FPR against a gallery (``retrieval.retrieval``), ``pick_gallery``.
* ``fid``: ``frechet_distance`` of precomputed features through torchmetrics' FID.
* ``landmarks``: ``pose_error``, ``expression_error``, ``head_pose``, canonical-frame landmarks.
* ``registry``: ``get_metric(name)``, ``list_metrics(kind)``, ``describe()``.

The harness that scores methods with these functions is ``facectx.evaluation``.

Formulas and choices: ``docs/evaluation.md``. Names load lazily: importing this package
imports neither torchmetrics nor OpenCV nor dlib.
"""

from __future__ import annotations

from facectx._lazy import lazy_exports

_LAZY = {
    "mse": "facectx.metrics.image",
    "psnr": "facectx.metrics.image",
    "ssim": "facectx.metrics.image",
    "colour_detail": "facectx.metrics.image",
    "edge_strength": "facectx.metrics.image",
    "region_mean": "facectx.metrics.image",
    "pearson": "facectx.metrics.identity",
    "cosine": "facectx.metrics.identity",
    "mean_match_score": "facectx.metrics.identity",
    "DlibNativeDescriptor": "facectx.metrics.identity",
    "tpr_at_fpr": "facectx.metrics.verification",
    "best_threshold": "facectx.metrics.verification",
    "accuracy": "facectx.metrics.verification",
    "read_pairs": "facectx.metrics.verification",
    "pairs_in_set": "facectx.metrics.verification",
    "pick_gallery": "facectx.metrics.retrieval",
    "Retrieval": "facectx.metrics.retrieval",
    "frechet_distance": "facectx.metrics.fid",
    "PrecomputedFeatures": "facectx.metrics.fid",
    "head_pose": "facectx.metrics.landmarks",
    "pose_error": "facectx.metrics.landmarks",
    "pose_difference": "facectx.metrics.landmarks",
    "expression_error": "facectx.metrics.landmarks",
    "CanonicalLandmarks": "facectx.metrics.landmarks",
    "MetricSpec": "facectx.metrics.registry",
    "describe": "facectx.metrics.registry",
    "get_metric": "facectx.metrics.registry",
    "list_metrics": "facectx.metrics.registry",
    "register_metric": "facectx.metrics.registry",
}

__getattr__, __all__ = lazy_exports(__name__, _LAZY)
