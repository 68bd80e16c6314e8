"""face_alignment's 2D-FAN (Bulat & Tzimiropoulos, ICCV 2017): 68-point heatmaps.

The architecture is face_alignment's own ``FAN`` class (4 stacked hourglasses); its weights,
``2DFAN4-11f355bf06.pth.tar`` (face_alignment >= 1.5 stores a plain state dict), are resolved
by the registry rule. face_alignment itself caches that file in ``torch.hub.get_dir()/
checkpoints``, which the rule checks, so a file it already downloaded is reused; building
here never downloads unless the registry may (see ``facectx.pretrained.registry``).

Input: a face crop in face_alignment's convention (256 x 256, RGB, here [-1, 1]): a square of
side 200 * scale centred on the detector box centre moved up by 0.12 box heights, with
scale = (box width + box height) / 195 for its default SFD detector. The canonical facectx
frame is tighter than that; warp into this convention before calling (not done here).
"""

from __future__ import annotations

import torch
from torch import Tensor

from facectx.pretrained.adapters import Frozen

INPUT_SIZE = 256
HEATMAP_SIZE = 64
NUM_POINTS = 68


class FAN68(Frozen):
    """2D-FAN: (B, 3, 256, 256) in [-1, 1] -> (B, 68, 64, 64) heatmaps of the last stack.

    Args:
        num_modules: stacked hourglasses (4 in the released 2D-FAN-4; fewer only for tests).
    """

    def __init__(self, num_modules: int = 4) -> None:
        super().__init__()
        from face_alignment.models.fan import FAN

        self.net = FAN(num_modules)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1:] != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"FAN68 expects (B, 3, 256, 256), got {tuple(x.shape)}")
        return self.net((x + 1.0) * 0.5)[-1]  # face_alignment feeds RGB / 255

    @torch.no_grad()
    def landmarks(self, x: Tensor) -> Tensor:
        """(B, 68, 2) (x, y) in input pixels (pixel i spans [i, i+1]), face_alignment's decode.

        Heatmap argmax, moved a quarter pixel towards the larger neighbour, at the cell centre.
        """
        return heatmaps_to_points(self(x)) * (x.shape[-1] / HEATMAP_SIZE)


def heatmaps_to_points(hm: Tensor) -> Tensor:
    """(B, N, H, W) heatmaps -> (B, N, 2) (x, y) in heatmap cells, cell centres at i + 0.5."""
    h, w = hm.shape[-2:]
    idx = hm.flatten(2).argmax(-1)
    px, py = idx % w, idx // w
    pts = torch.stack([px, py], -1).to(hm.dtype)
    inner = (px > 0) & (px < w - 1) & (py > 0) & (py < h - 1)
    flat = hm.flatten(2)

    def at(dx: int, dy: int) -> Tensor:
        j = (py + dy).clamp(0, h - 1) * w + (px + dx).clamp(0, w - 1)
        return flat.gather(-1, j.unsqueeze(-1)).squeeze(-1)

    diff = torch.stack([at(1, 0) - at(-1, 0), at(0, 1) - at(0, -1)], -1)
    pts = pts + 0.25 * torch.sign(diff) * inner.unsqueeze(-1)
    return pts + 0.5


def build_fan68(fetch, num_modules: int = 4) -> FAN68:
    from facectx.pretrained.registry import load_state_dict

    path = fetch("weights")
    net = FAN68(num_modules)
    if path is not None:
        net.net.load_state_dict(load_state_dict(path), strict=True)
    return net
