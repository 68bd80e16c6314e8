"""IResNet backbones of insightface's arcface_torch (Deng et al., ArcFace, CVPR 2019).

Parameter names and shapes follow the ``backbone.pth`` files arcface_torch publishes
(``conv1``, ``bn1``, ``prelu``, ``layer{1-4}.{i}.{bn1,conv1,bn2,prelu,conv2,bn3}``,
``layer{k}.0.downsample.{0,1}``, ``bn2``, ``fc``, ``features``), so they load with
``strict=True``. The improved residual unit is BN-conv-BN-PReLU-conv(stride)-BN, with no
activation after the addition; the head is BN2d-flatten-dropout-FC-BN1d.

Raw input convention: RGB, 112 x 112, (pixel - 127.5) / 127.5, face aligned to insightface's
5-point template. ``facectx.pretrained.adapters.ArcFaceIdentity`` produces that from facectx's
canonical frames.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

INPUT_SIZE = 112
DEPTHS = {"r18": (2, 2, 2, 2), "r34": (3, 4, 6, 3), "r50": (3, 4, 14, 3), "r100": (3, 13, 30, 3)}


class IBasicBlock(nn.Module):
    """Improved residual unit; the stride sits on the second 3x3 conv."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.prelu = nn.PReLU(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout, eps=1e-5)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=1e-5)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """IResNet embedding network: (B, 3, 112, 112) -> (B, num_features), not L2-normalised.

    Args:
        depths: residual units per stage, e.g. (3, 4, 14, 3) for r50, (3, 13, 30, 3) for r100.
        num_features: embedding size (512 in every released arcface_torch model).
        dropout: dropout before the FC (0 in the released models; inactive in eval anyway).
    """

    def __init__(
        self, depths: tuple[int, ...], num_features: int = 512, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if len(depths) != 4:
            raise ValueError(f"IResNet needs 4 stage depths, got {depths}")
        self.num_features = num_features
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        cin = 64
        for k, (n, cout) in enumerate(zip(depths, (64, 128, 256, 512)), start=1):
            blocks = [IBasicBlock(cin, cout, stride=2)]
            blocks += [IBasicBlock(cout, cout) for _ in range(n - 1)]
            self.add_module(f"layer{k}", nn.Sequential(*blocks))
            cin = cout
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(512 * 7 * 7, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)
        nn.init.constant_(self.features.weight, 1.0)  # fixed to 1 during arcface training

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1:] != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"IResNet expects (B, 3, 112, 112), got {tuple(x.shape)}")
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def iresnet(arch: str) -> IResNet:
    """IResNet by arcface_torch's name ("r18", "r34", "r50", "r100")."""
    if arch not in DEPTHS:
        raise ValueError(f"unknown IResNet {arch!r}; choose from {sorted(DEPTHS)}")
    return IResNet(DEPTHS[arch])
