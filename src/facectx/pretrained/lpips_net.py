"""LPIPS with the AlexNet trunk (Zhang et al., CVPR 2018), built without hidden downloads.

The ``lpips`` package would let torchvision fetch AlexNet's ImageNet weights on its own; here
the trunk is built empty and its weights (``alexnet-owt-7be5be79.pth``) come through the
registry's resolution rule like every other file. The linear heads are the ``.pth`` files the
lpips package ships (``lpips/weights/v0.x/alex.pth``, keys ``lin{k}.model.1.weight``).

Versions, as in the lpips package:

* "0.0": the paper's first release; images go to AlexNet as [-1, 1] without the ImageNet
  rescaling (the package calls this a normalisation bug, but it is what the paper measured);
* "0.1": the package default; [-1, 1] is shifted/scaled towards ImageNet statistics first.

Distance: features of the 5 ReLU taps (after conv1..conv5) are unit-normalised over channels,
their squared difference is weighted per channel by the head, averaged over space and summed.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from facectx.pretrained.adapters import Frozen

VERSIONS = ("0.0", "0.1")
CHANNELS = (64, 192, 384, 256, 256)
# indices of torchvision's alexnet().features after which LPIPS taps a ReLU output
TAPS = (1, 4, 7, 9, 11)


def alexnet_features() -> nn.Sequential:
    """torchvision's AlexNet ``features`` (same indices, so ``features.N.*`` keys load)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
    )


class _Head(nn.Module):
    """1x1 conv to one channel; ``model.1`` so the lpips package's keys load unchanged."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class LPIPSAlex(Frozen):
    """LPIPS distance between two [-1, 1] image batches -> (B,).

    Args:
        version: "0.0" (paper) or "0.1" (lpips package default); see the module docstring.
    """

    def __init__(self, version: str = "0.0") -> None:
        super().__init__()
        if version not in VERSIONS:
            raise ValueError(f"LPIPS version must be one of {VERSIONS}, got {version!r}")
        self.version = version
        self.features = alexnet_features()
        for k, c in enumerate(CHANNELS):
            self.add_module(f"lin{k}", _Head(c))
        shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
        scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
        self.register_buffer("shift", shift, persistent=False)
        self.register_buffer("scale", scale, persistent=False)

    def load_backbone(self, state: dict[str, Tensor]) -> None:
        """Load torchvision AlexNet weights (``features.*``; ``classifier.*`` is ignored)."""
        feats = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        self.features.load_state_dict(feats, strict=True)

    def load_heads(self, state: dict[str, Tensor]) -> None:
        """Load an lpips package head file (``lin{k}.model.1.weight``)."""
        heads = nn.ModuleDict({f"lin{k}": getattr(self, f"lin{k}") for k in range(len(CHANNELS))})
        heads.load_state_dict(state, strict=True)

    def _taps(self, x: Tensor) -> list[Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                out.append(x)
        return out

    def forward(self, x0: Tensor, x1: Tensor) -> Tensor:
        if x0.shape != x1.shape or x0.ndim != 4 or x0.shape[1] != 3:
            raise ValueError(f"LPIPS needs two (B, 3, H, W) batches, got {x0.shape}, {x1.shape}")
        if self.version == "0.1":
            x0, x1 = (x0 - self.shift) / self.scale, (x1 - self.shift) / self.scale
        total = x0.new_zeros(x0.shape[0])
        for k, (f0, f1) in enumerate(zip(self._taps(x0), self._taps(x1))):
            f0 = f0 / (f0.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            f1 = f1 / (f1.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + getattr(self, f"lin{k}")((f0 - f1).pow(2)).mean((1, 2, 3))
        return total


def build_lpips_alex(fetch, version: str = "0.0") -> LPIPSAlex:
    """Registry builder: trunk from the ``backbone`` file, heads from ``head-v<version>``."""
    from facectx.pretrained.registry import load_state_dict

    version = str(version)
    if version not in VERSIONS:
        raise ValueError(f"LPIPS version must be one of {VERSIONS}, got {version!r}")
    backbone: Path | None = fetch("backbone")
    heads: Path | None = fetch(f"head-v{version}")
    net = LPIPSAlex(version=version)
    if backbone is not None:
        net.load_backbone(load_state_dict(backbone))
    if heads is not None:
        net.load_heads(load_state_dict(heads))
    return net
