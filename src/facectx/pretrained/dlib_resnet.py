"""PyTorch port of dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``).

dlib's descriptor is the one identity network whose weights ship in a registry package
(``face_recognition_models``), so it is the identity loss and metric that works offline. The
weights are read straight from dlib's ``.dat`` file (``facectx.pretrained.dlib_dat``); dlib
itself is not needed. Layout, file format and measured parity: ``docs/dlib_resnet.md``.

* :class:`DlibFaceResNet`: the network as dlib runs it, (B, 3, 150, 150) input already
  normalised the dlib way (``(rgb - mean) / 256``) -> the raw (B, 128) fc output, which is what
  ``compute_face_descriptor`` returns (no L2 normalisation; same person below distance 0.6).
* :class:`DlibResNetIdentity`: facectx's identity interface. Canonical [-1, 1] frames of any size
  are warped (differentiably) into dlib's 150 px face chip, then normalised and embedded.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facectx.pretrained.adapters import CanonicalCrop, IdentityNet
from facectx.pretrained.dlib_dat import DlibFormatError, read_network

INPUT_SIZE = 150
FEATURE_DIM = 128
# (in channels, out channels, downsampling) of the 14 residual blocks, input to output:
# dlib's alevel4 (3 x 32), alevel3 (64, down first), alevel2 (128), alevel1 (256), alevel0.
BLOCKS: tuple[tuple[int, int, bool], ...] = (
    *[(32, 32, False)] * 3,
    (32, 64, True), *[(64, 64, False)] * 3,
    (64, 128, True), *[(128, 128, False)] * 2,
    (128, 256, True), *[(256, 256, False)] * 2,
    (256, 256, True),
)  # fmt: skip

# Where the canonical frame's eye centres land in dlib's 150 px chip (get_face_chip, padding
# 0.25, 68 landmarks), in chip pixels (pixel centres at integers): the mean over 1,483 LFW
# train-split faces, fitted by ``scripts/verify_dlib_port.py --fit-adapter``; see the docs.
DLIB_CHIP_EYES: tuple[tuple[float, float], tuple[float, float]] = (
    (47.11, 46.28),
    (99.84, 46.36),
)
_DAT_EXPECTED = (
    "dlib's dlib_face_recognition_resnet_model_v1.dat (22,466,066 bytes, shipped by the "
    "face_recognition_models package or dlib.net/files/...dat.bz2)"
)


class Affine(nn.Module):
    """Per-channel ``x * weight + bias``: dlib's ``affine`` layer, i.e. batch norm folded.

    Args:
        channels: number of channels (one scale and one shift each).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def add_zero_padded(a: Tensor, b: Tensor) -> Tensor:
    """``a + b`` the way dlib's ``add_prev`` does it when shapes differ.

    The output takes the larger size in every dimension and each input counts as zero where it
    does not reach (extra channels, the last rows/columns). The down-sampling blocks need it:
    the shortcut has fewer channels, and at 8x8 the stride-2 conv gives 3x3 while the 2x2
    average pool gives 4x4.
    """
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: Tensor) -> Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class ResBlock(nn.Module):
    """dlib's ``ares`` / ``ares_down``: relu(shortcut + affine(conv(relu(affine(conv(x)))))).

    Args:
        cin: input channels.
        cout: output channels.
        down: halve the resolution: the first conv has stride 2 and no padding (dlib's default
            padding is k // 2 only for stride 1) and the shortcut is a 2x2, stride-2 average pool.
    """

    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.affine1 = Affine(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1)
        self.affine2 = Affine(cout)

    def forward(self, x: Tensor) -> Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2) if self.down else x
        return F.relu(add_zero_padded(y, shortcut))


class DlibFaceResNet(nn.Module):
    """dlib's ``anet_type`` (29 convolutions), normalised 150 px chip -> raw 128-D descriptor.

    conv 7x7/2 (32) -> affine -> relu -> max pool 3x3/2 -> 14 residual blocks (``BLOCKS``)
    -> global average pool -> fc 256->128 without bias. Sizes: 150 -> 72 -> 35 -> 17 -> 8 ->
    4 -> 2 -> 1. Input: ``normalize(rgb)`` of a (B, 3, 150, 150) RGB chip in 0..255.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem_conv = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        self.stem_affine = Affine(32)
        self.blocks = nn.Sequential(*(ResBlock(*spec) for spec in BLOCKS))
        self.fc = nn.Linear(BLOCKS[-1][1], FEATURE_DIM, bias=False)
        # dlib's input layer subtracts these (its defaults, re-read from the file on load)
        self.register_buffer("input_mean", torch.tensor([122.782, 117.001, 104.298]))

    def normalize(self, rgb: Tensor) -> Tensor:
        """(B, 3, H, W) RGB in 0..255 -> what dlib's ``input_rgb_image_sized`` feeds the net."""
        return (rgb - self.input_mean.view(1, 3, 1, 1)) / 256.0

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"DlibFaceResNet expects (B, 3, 150, 150), got {tuple(x.shape)}")
        x = F.max_pool2d(F.relu(self.stem_affine(self.stem_conv(x))), 3, stride=2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))


def _dat_kinds() -> list[str]:
    """The layer kinds of dlib's ``anet_type``, loss first, input last (the C++ type's order)."""
    # ares = relu<add_prev1<affine<con<relu<affine<con<tag1<...>>>>>>>>; ares_down adds
    # avg_pool<skip1<tag2<...>>> between add_prev2 and the block.
    ares = ["relu", "add_prev", "affine", "con", "relu", "affine", "con", "tag"]
    ares_down = ["relu", "add_prev", "avg_pool", "skip", "tag", *ares[2:]]
    body = [k for _, _, down in reversed(BLOCKS) for k in (ares_down if down else ares)]
    stem = ["max_pool", "relu", "affine", "con"]
    return ["loss_metric", "fc", "avg_pool", *body, *stem, "input_rgb_image_sized"]


def _expected_layers() -> list[tuple[str, str | None, dict]]:
    """(dlib kind, state-dict prefix or None, hyperparameters to check), input to output."""

    def con(n: int, k: int, stride: int, pad: int) -> dict:
        return {"num_filters": n, "nr": k, "nc": k, "stride_y": stride, "stride_x": stride,
                "padding_y": pad, "padding_x": pad}  # fmt: skip

    def pool(k: int, stride: int) -> dict:
        return {"nr": k, "nc": k, "stride_y": stride, "stride_x": stride,
                "padding_y": 0, "padding_x": 0}  # fmt: skip

    out = [
        ("con", "stem_conv", con(32, 7, 2, 0)),
        ("affine", "stem_affine", {"num_channels": 32}),
        ("relu", None, {}),
        ("max_pool", None, pool(3, 2)),
    ]
    for i, (_, cout, down) in enumerate(BLOCKS):
        p = f"blocks.{i}."
        out += [
            ("con", p + "conv1", con(cout, 3, 2, 0) if down else con(cout, 3, 1, 1)),
            ("affine", p + "affine1", {"num_channels": cout}),
            ("relu", None, {}),
            ("con", p + "conv2", con(cout, 3, 1, 1)),
            ("affine", p + "affine2", {"num_channels": cout}),
            *([("avg_pool", None, pool(2, 2))] if down else []),
            ("add_prev", None, {}),
            ("relu", None, {}),
        ]
    out += [("avg_pool", None, pool(0, 1)), ("fc", "fc", {"num_outputs": FEATURE_DIM})]
    return out


def read_dlib_resnet_dat(path: str | Path) -> dict[str, Tensor]:
    """State dict for :class:`DlibFaceResNet` from dlib's ``.dat`` (or ``.dat.bz2``) file.

    Raises ``FileNotFoundError`` when the file is missing and ``DlibFormatError`` (a
    ``ValueError``) naming the file, byte offset and layer when it is truncated or not this
    network.
    """
    net = read_network(path, _dat_kinds(), _DAT_EXPECTED)
    if (net.input["nr"], net.input["nc"]) != (INPUT_SIZE, INPUT_SIZE):
        raise DlibFormatError(f"{path}: input is {net.input['nr']}x{net.input['nc']}, not 150x150")
    state: dict[str, Tensor] = {"input_mean": torch.from_numpy(net.input["mean_rgb"].copy())}
    for i, ((kind, details), (want_kind, prefix, want)) in enumerate(
        zip(net.layers, _expected_layers(), strict=True)
    ):
        found = {k: details[k] for k in want}
        if kind != want_kind or found != want:
            raise DlibFormatError(
                f"{path}: layer {i} from the input is {kind} {found}, expected {want_kind} {want}. "
                f"Expected {_DAT_EXPECTED}."
            )
        if prefix is None:
            continue
        if kind == "fc":
            if details["bias"] is not None:
                raise DlibFormatError(f"{path}: the fc layer has a bias; dlib's model has none")
            state["fc.weight"] = torch.from_numpy(details["weight"])
            continue
        state[prefix + ".weight"] = torch.from_numpy(np.ascontiguousarray(details["weight"]))
        state[prefix + ".bias"] = torch.from_numpy(np.ascontiguousarray(details["bias"]))
    return state


class DlibResNetIdentity(IdentityNet):
    """dlib's descriptor of canonical frames: (B, 3, S, S) in [-1, 1], any S -> (B, 128).

    The canonical frame is warped into dlib's 150 px chip by the fixed similarity that takes
    the canonical eye centres to ``chip_eyes`` (bilinear ``grid_sample``, antialiased first when
    the chip shrinks the face), scaled to 0..255 and normalised as dlib does. Outputs are raw
    dlib descriptors: compare them with Euclidean distance (dlib's threshold: 0.6).

    Args:
        backbone: a :class:`DlibFaceResNet` with dlib's weights.
        chip_eyes: ((x, y), (x, y)) image-left then image-right canonical eye centre in chip
            pixels; the default is fitted to dlib's own 68-landmark chips on LFW.
    """

    name = "dlib-resnet"
    feature_dim = FEATURE_DIM
    input_size = INPUT_SIZE

    def __init__(
        self,
        backbone: DlibFaceResNet,
        chip_eyes: tuple[tuple[float, float], tuple[float, float]] = DLIB_CHIP_EYES,
    ) -> None:
        super().__init__(backbone)
        self.crop = CanonicalCrop(INPUT_SIZE, chip_eyes)

    def preprocess(self, x: Tensor) -> Tensor:
        return self.backbone.normalize((self.crop(x) + 1.0) * 127.5)


def dlib_resnet_default_path() -> Path | None:
    """The ``.dat`` inside the installed ``face_recognition_models`` package, else None."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / "dlib_face_recognition_resnet_model_v1.dat"
        if path.is_file():
            return path
    return None


def build_dlib_resnet(weights_path: str | Path) -> DlibResNetIdentity:
    """:class:`DlibResNetIdentity` with dlib's weights from ``weights_path``, frozen, eval mode."""
    backbone = DlibFaceResNet()
    backbone.load_state_dict(read_dlib_resnet_dat(weights_path), strict=True)
    backbone.requires_grad_(False)
    return DlibResNetIdentity(backbone).eval()


def build_dlib(fetch) -> nn.Module:
    """Registry builder (``fn(fetch)``): dlib's ResNet descriptor from its verified ``.dat``."""
    path = fetch("weights")
    if path is None:
        raise ValueError("dlib-resnet cannot be built with random weights")
    net = build_dlib_resnet(path)
    if not getattr(net, "name", None):
        net.name = "dlib-resnet"
    return net
