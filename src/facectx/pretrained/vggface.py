"""VGG-Face (Parkhi, Vedaldi, Zisserman, BMVC 2015): VGG-16 trained on 2,622 identities.

Module names follow the widely used PyTorch conversion of the MatConvNet release
(``vgg_face_dag.pth``: ``conv1_1`` ... ``conv5_3``, ``fc6``, ``fc7``, ``fc8``), so that file
loads with ``strict=True`` and no renaming. ``fc6`` is a ``Linear`` on the NCHW-flattened
pool5 map (25088 = 512 x 7 x 7), exactly as in the conversion.

Input convention of the raw network: RGB, 224 x 224, 0..255 minus the per-channel training
mean ``VGGFACE_MEAN_RGB``. ``facectx.pretrained.adapters.VGGFaceIdentity`` does that from
facectx's canonical [-1, 1] frames.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# the conversion's meta['mean'] (RGB, 0..255 scale; std is 1)
VGGFACE_MEAN_RGB = (129.186279296875, 104.76238250732422, 93.59396362304688)
INPUT_SIZE = 224
NUM_IDENTITIES = 2622

# (block, convs in block, channels)
_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))
LAYERS = ("fc6", "fc7", "fc8")


class VGGFace16(nn.Module):
    """VGG-16 face network returning one of fc6 / fc7 (both after ReLU) / fc8 (logits).

    Args:
        layer: which activation ``forward`` returns: "fc6" or "fc7" (4096-D, after ReLU; the
            identity descriptor of the paper is fc7) or "fc8" (2622 identity logits).
    """

    def __init__(self, layer: str = "fc7") -> None:
        super().__init__()
        if layer not in LAYERS:
            raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
        self.layer = layer
        cin = 3
        for block, n, cout in _BLOCKS:
            for i in range(1, n + 1):
                self.add_module(f"conv{block}_{i}", nn.Conv2d(cin, cout, 3, padding=1))
                self.add_module(f"relu{block}_{i}", nn.ReLU(inplace=True))
                cin = cout
            self.add_module(f"pool{block}", nn.MaxPool2d(2, 2))
        self.fc6 = nn.Linear(512 * 7 * 7, 4096)
        self.relu6 = nn.ReLU(inplace=True)
        self.dropout6 = nn.Dropout(0.5)
        self.fc7 = nn.Linear(4096, 4096)
        self.relu7 = nn.ReLU(inplace=True)
        self.dropout7 = nn.Dropout(0.5)
        self.fc8 = nn.Linear(4096, NUM_IDENTITIES)

    @property
    def feature_dim(self) -> int:
        return NUM_IDENTITIES if self.layer == "fc8" else 4096

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, 224, 224) mean-subtracted 0..255 RGB -> (B, feature_dim)."""
        if x.shape[1:] != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"VGGFace16 expects (B, 3, 224, 224), got {tuple(x.shape)}")
        for block, n, _ in _BLOCKS:
            for i in range(1, n + 1):
                x = getattr(self, f"relu{block}_{i}")(getattr(self, f"conv{block}_{i}")(x))
            x = getattr(self, f"pool{block}")(x)
        x = self.relu6(self.fc6(torch.flatten(x, 1)))
        if self.layer == "fc6":
            return x
        x = self.relu7(self.fc7(self.dropout6(x)))
        if self.layer == "fc7":
            return x
        return self.fc8(self.dropout7(x))
