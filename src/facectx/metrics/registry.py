"""Metrics by name: what each measures, its direction and the function that computes it.

``get_metric("ssim").fn(pred, target, region)`` etc. ``facectx.evaluate`` computes every
``per_image`` metric of the registry on the whole frame and on the context region, and names
its columns and table arrows from here. ``python -c "import facectx.metrics as m;
print(m.describe())"`` lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    """One metric.

    Args:
        name: registry key and column name.
        fn: the function, ``"module:attr"`` (imported on use) or a callable.
        kind: ``"pixel"`` (fn(pred, target, region) -> (B,) on [-1, 1] images),
            ``"identity"`` (fn(features_a, features_b) -> (B,)), ``"network"`` (a module
            called as net(pred, target) -> (B,)), ``"landmarks"``
            (fn(landmarks_a, landmarks_b[, image_size]) -> (N,)), ``"set"`` (one number per set)
            or ``"pairs"`` (verification over image pairs).
        higher_is_better: direction, for the table arrows.
        summary: one line: what it is and its unit.
    """

    name: str
    fn: str | Callable
    kind: str
    higher_is_better: bool
    summary: str

    def resolve(self) -> Callable:
        if callable(self.fn):
            return self.fn
        import importlib

        module, _, attr = self.fn.partition(":")
        return getattr(importlib.import_module(module), attr)

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


_METRICS: dict[str, MetricSpec] = {}


def register_metric(spec: MetricSpec, *, replace: bool = False) -> MetricSpec:
    """Add a metric; refuse to shadow an existing name unless ``replace``."""
    if spec.name in _METRICS and not replace:
        raise KeyError(f"metric {spec.name!r} already registered")
    _METRICS[spec.name] = spec
    return spec


def get_metric(name: str) -> MetricSpec:
    try:
        return _METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(sorted(_METRICS))}") from None


def list_metrics(kind: str | None = None) -> list[MetricSpec]:
    """Registered metrics (in registration order), optionally of one kind."""
    return [m for m in _METRICS.values() if kind is None or m.kind == kind]


def describe() -> str:
    """One line per metric: name, direction, kind, summary."""
    return "\n".join(f"{m.name:18s} {m.arrow} {m.kind:9s} {m.summary}" for m in _METRICS.values())


for _spec in (
    MetricSpec("mse", "facectx.metrics.image:mse", "pixel", False, "mean squared error, [0,1] units"),
    MetricSpec("psnr", "facectx.metrics.image:psnr", "pixel", True, "peak SNR, dB, data range 1"),
    MetricSpec("ssim", "facectx.metrics.image:ssim", "pixel", True, "SSIM, Gaussian 11 px, s 1.5"),
    MetricSpec(
        "rho", "facectx.metrics.identity:pearson", "identity", True,
        "Pearson correlation of identity features (mean = mean match score, eq. 7)",
    ),
    MetricSpec(
        "id_cos", "facectx.metrics.identity:cosine", "identity", True,
        "cosine similarity of identity features",
    ),
    MetricSpec(
        "pose_err", "facectx.metrics.landmarks:pose_error", "landmarks", False,
        "mean |yaw, pitch, roll| difference, degrees (solvePnP, generic 3-D face)",
    ),
    MetricSpec(
        "expr_err", "facectx.metrics.landmarks:expression_error", "landmarks", False,
        "brow/eye/mouth landmark distance after similarity alignment, / eye distance",
    ),
    MetricSpec(
        "lpips", "facectx.pretrained.lpips_net:LPIPSAlex", "network", False,
        "LPIPS (AlexNet, registry lpips-alex); stands in for PieAPP",
    ),
    MetricSpec(
        "fid", "facectx.metrics.fid:frechet_distance", "set", False,
        "Fréchet Inception Distance, registry inception-fid features",
    ),
    MetricSpec(
        "tpr_at_fpr", "facectx.metrics.verification:tpr_at_fpr", "pairs", True,
        "verification TPR at FPR = 0.01 (cosine scores)",
    ),
    MetricSpec(
        "accuracy", "facectx.metrics.verification:accuracy", "pairs", True,
        "verification accuracy at the originals' best threshold",
    ),
):  # fmt: skip
    register_metric(_spec)


__all__ = ["MetricSpec", "describe", "get_metric", "list_metrics", "register_metric"]
