"""Identity networks behind one interface: canonical [-1, 1] face in, (B, D) descriptor out.

Every facectx image is a canonical aligned frame (``facectx.geometry.frame``): square, any size S,
eye centres at ((0.5 -/+ 0.135) S, 0.43 S). Each identity network was trained on its own crop,
so each adapter warps the canonical frame into that crop with one fixed similarity transform,
differentiably (antialiased resize + ``grid_sample``), then applies the network's own pixel
normalisation. Losses therefore swap networks by config alone
(``identity=vggface-fc7|arcface-r100|dlib-resnet``).

Crops:

* VGG-Face: trained on loosely cropped faces (detector boxes enlarged to keep the whole head),
  where the eyes sit slightly above the centre and are roughly a quarter of the side apart.
  The canonical frame (eye distance 0.27 S, eyes at 0.43 S) is already such a crop, so by
  default the whole frame is resized to 224 (no pixel outside the frame is needed). Then RGB
  0..255 minus the VGG-Face mean.
* ArcFace: insightface aligns to a 5-point template in 112 px; its eye centres are
  (38.2946, 51.6963) and (73.5318, 51.5014). The canonical frame fixes only the eyes, so the
  crop is the exact similarity taking our two eye centres onto those two (the face is 1.165 x
  larger than in a 112 px canonical frame, and turned by the template's 0.32 deg eye-line
  tilt); nose and mouth then land where the face puts them, as in any eye-based alignment.
  The crop covers [0.07, 0.92] x [0.03, 0.90] of the canonical frame, so nothing outside the
  frame is sampled.
  Pixels: (x - 127.5) / 127.5, i.e. facectx's [-1, 1] unchanged.
* dlib-resnet: implemented in ``facectx.pretrained.dlib_resnet`` (its own 150 px crop).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facectx.geometry.frame import CanonicalFrame, similarity_from_points

ARCFACE_EYES_112 = ((38.2946, 51.6963), (73.5318, 51.5014))


class Frozen(nn.Module):
    """A pretrained network that never leaves eval mode.

    A parent's ``.train()`` would otherwise switch BatchNorm back to batch statistics and
    silently change what an identity or perceptual loss measures.
    """

    def __init__(self) -> None:
        super().__init__()
        self.training = False

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, nn.Module):
            value.eval()  # children join in eval mode, from construction on
        super().__setattr__(name, value)

    def add_module(self, name: str, module: nn.Module | None) -> None:
        if module is not None:
            module.eval()
        super().add_module(name, module)

    def train(self, mode: bool = True) -> Frozen:
        return super().train(False)


def _pixel_to_normalised(size: float) -> np.ndarray:
    """3x3: pixel index coordinate -> grid_sample coordinate (align_corners=False)."""
    return np.array(
        [[2.0 / size, 0.0, 1.0 / size - 1.0], [0.0, 2.0 / size, 1.0 / size - 1.0], [0.0, 0.0, 1.0]]
    )


class CanonicalCrop(nn.Module):
    """Warp canonical frames (any size S) into a network's ``out_size`` crop.

    The warp is the similarity that takes the canonical eye centres onto ``eye_targets`` (in
    output pixels). When the crop shrinks the face, the input is first resized with an
    antialiasing filter so that ``grid_sample`` never skips pixels.

    Args:
        out_size: side of the network's input in pixels.
        eye_targets: ((x, y), (x, y)) image-left then image-right eye centre in output pixels.
        frame: the canonical frame's geometry (only its fractions are used; S comes from x).
    """

    def __init__(
        self,
        out_size: int,
        eye_targets: tuple[tuple[float, float], tuple[float, float]],
        frame: CanonicalFrame | None = None,
    ) -> None:
        super().__init__()
        self.out_size = int(out_size)
        self.eye_targets = np.asarray(eye_targets, dtype=np.float64)
        if self.eye_targets.shape != (2, 2):
            raise ValueError(f"eye_targets must be two (x, y) points, got {eye_targets}")
        self.frame = frame or CanonicalFrame()
        self._theta: dict[int, tuple[int, np.ndarray | None]] = {}

    def _plan(self, size: int) -> tuple[int, np.ndarray | None]:
        """(working size, 2x3 theta or None for a plain resize) for input side ``size``."""
        if size not in self._theta:
            fr = self.frame
            src = CanonicalFrame(size, fr.eye_distance, fr.eye_y).eye_targets
            # input pixels per output pixel at full resolution
            scale = np.linalg.norm(src[1] - src[0]) / np.linalg.norm(
                self.eye_targets[1] - self.eye_targets[0]
            )
            work = size if scale <= 1.0 else max(8, round(size / scale))
            src = CanonicalFrame(work, fr.eye_distance, fr.eye_y).eye_targets
            m = similarity_from_points(self.eye_targets, src)  # output px -> working px
            m3 = np.vstack([m, [0.0, 0.0, 1.0]])
            theta = (
                _pixel_to_normalised(work) @ m3 @ np.linalg.inv(_pixel_to_normalised(self.out_size))
            )
            plain = work == self.out_size and np.allclose(theta, np.eye(3), atol=1e-6)
            self._theta[size] = (work, None if plain else theta[:2])
        return self._theta[size]

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != x.shape[3]:
            raise ValueError(f"expected canonical frames (B, 3, S, S), got {tuple(x.shape)}")
        work, theta = self._plan(int(x.shape[-1]))
        if work != x.shape[-1]:
            x = F.interpolate(
                x, size=(work, work), mode="bilinear", align_corners=False, antialias=True
            )
        if theta is None:
            return x
        t = torch.as_tensor(theta, dtype=x.dtype, device=x.device).expand(x.shape[0], 2, 3)
        grid = F.affine_grid(t, [x.shape[0], 3, self.out_size, self.out_size], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class IdentityNet(Frozen):
    """Common interface of identity networks: canonical [-1, 1] (B, 3, S, S) -> (B, D).

    Subclasses set ``name``, ``feature_dim``, ``input_size`` and implement ``preprocess``
    (canonical frame -> the backbone's input) ; ``backbone`` is the raw pretrained network.
    """

    name: str = "identity"
    feature_dim: int
    input_size: int

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def preprocess(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        out = self.backbone(self.preprocess(x))
        if out.shape != (x.shape[0], self.feature_dim):
            raise RuntimeError(f"{self.name}: expected (B, {self.feature_dim}), got {out.shape}")
        return out


class VGGFaceIdentity(IdentityNet):
    """VGG-Face descriptor (fc7 after ReLU by default) of canonical frames.

    Args:
        backbone: a ``VGGFace16``.
        eye_distance: inter-ocular distance in the 224 px crop, as a fraction of 224.
        eye_y: eye row in the 224 px crop, as a fraction of 224. The defaults equal the
            canonical frame's, i.e. the whole frame resized (see the module docstring).
    """

    name = "vggface-fc7"
    input_size = 224

    def __init__(self, backbone: nn.Module, eye_distance: float = 0.27, eye_y: float = 0.43):
        super().__init__(backbone)
        from facectx.pretrained.vggface import VGGFACE_MEAN_RGB

        self.feature_dim = int(backbone.feature_dim)
        self.name = f"vggface-{backbone.layer}"
        eyes = CanonicalFrame(self.input_size, eye_distance, eye_y).eye_targets
        self.crop = CanonicalCrop(self.input_size, tuple(map(tuple, eyes)))
        mean = torch.tensor(VGGFACE_MEAN_RGB).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)

    def preprocess(self, x: Tensor) -> Tensor:
        return (self.crop(x) + 1.0) * 127.5 - self.mean


class ArcFaceIdentity(IdentityNet):
    """ArcFace (IResNet) 512-D embedding of canonical frames, not L2-normalised.

    Args:
        backbone: an ``IResNet``.
        name: registry name for logs ("arcface-r50", "arcface-r100").
    """

    input_size = 112

    def __init__(self, backbone: nn.Module, name: str = "arcface") -> None:
        super().__init__(backbone)
        self.name = name
        self.feature_dim = int(backbone.num_features)
        self.crop = CanonicalCrop(self.input_size, ARCFACE_EYES_112)

    def preprocess(self, x: Tensor) -> Tensor:
        return self.crop(x)  # (x - 127.5) / 127.5 is facectx's [-1, 1] already


def crop_box(crop: CanonicalCrop, size: int = 1000) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1): the crop's corners in canonical-frame fractions (for docs and tests)."""
    _, theta = crop._plan(size)
    if theta is None:
        return 0.0, 0.0, 1.0, 1.0
    corners = np.array([[-1.0, -1.0, 1.0], [1.0, 1.0, 1.0]]) @ theta.T  # normalised coords
    frac = (corners + 1.0) / 2.0
    return float(frac[0, 0]), float(frac[0, 1]), float(frac[1, 0]), float(frac[1, 1])


def crop_rotation_deg(crop: CanonicalCrop) -> float:
    _, theta = crop._plan(1000)
    return 0.0 if theta is None else math.degrees(math.atan2(theta[1, 0], theta[0, 0]))


# ---------------------------------------------------------------------------------------------
# registry builders: fn(fetch, **kwargs); fetch(role) -> verified Path, or None = random init


def _build_loaded(factory, path: Path | None) -> nn.Module:
    """``factory()`` with random weights, or built on the meta device and filled from ``path``
    (strict keys; skips a random init that would be thrown away: seconds for VGG-16)."""
    if path is None:
        return factory()
    from facectx.pretrained.registry import load_state_dict

    state = load_state_dict(path)
    with torch.device("meta"):
        net = factory()
    net.load_state_dict(state, strict=True, assign=True)
    left = [n for n, t in [*net.named_parameters(), *net.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"{path}: no values for {left[:5]}")
    return net


def build_vggface(fetch, layer: str = "fc7", eye_distance: float = 0.27, eye_y: float = 0.43):
    from facectx.pretrained.vggface import VGGFace16

    path = fetch("weights")
    net = _build_loaded(lambda: VGGFace16(layer=layer), path)
    return VGGFaceIdentity(net, eye_distance=eye_distance, eye_y=eye_y)


def _build_arcface(fetch, arch: str) -> ArcFaceIdentity:
    from facectx.pretrained.iresnet import iresnet

    path = fetch("weights")
    net = _build_loaded(lambda: iresnet(arch), path)
    return ArcFaceIdentity(net, name=f"arcface-{arch}")


def build_arcface_r50(fetch) -> ArcFaceIdentity:
    return _build_arcface(fetch, "r50")


def build_arcface_r100(fetch) -> ArcFaceIdentity:
    return _build_arcface(fetch, "r100")
