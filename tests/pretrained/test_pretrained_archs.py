"""Architectures: published key names/shapes load strictly, outputs have the right sizes,
adapters put the canonical eyes where each network expects them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from facectx.geometry.frame import CanonicalFrame
from facectx.pretrained import RandomWeightsWarning, load
from facectx.pretrained.adapters import (
    ARCFACE_EYES_112,
    ArcFaceIdentity,
    CanonicalCrop,
    VGGFaceIdentity,
    crop_box,
)
from facectx.pretrained.iresnet import iresnet
from facectx.pretrained.lpips_net import LPIPSAlex
from facectx.pretrained.vggface import VGGFace16

# --- published files, written out from the released checkpoints' layouts -------------------

# vgg_face_dag.pth (S. Albanie's conversion of the MatConvNet VGG-Face release)
VGG_FACE_DAG = {
    "conv1_1": (64, 3),
    "conv1_2": (64, 64),
    "conv2_1": (128, 64),
    "conv2_2": (128, 128),
    "conv3_1": (256, 128),
    "conv3_2": (256, 256),
    "conv3_3": (256, 256),
    "conv4_1": (512, 256),
    "conv4_2": (512, 512),
    "conv4_3": (512, 512),
    "conv5_1": (512, 512),
    "conv5_2": (512, 512),
    "conv5_3": (512, 512),
}
VGG_FACE_FC = {"fc6": (4096, 25088), "fc7": (4096, 4096), "fc8": (2622, 4096)}

# torchvision alexnet-owt-7be5be79.pth
ALEXNET = {
    "features.0": (64, 3, 11, 11),
    "features.3": (192, 64, 5, 5),
    "features.6": (384, 192, 3, 3),
    "features.8": (256, 384, 3, 3),
    "features.10": (256, 256, 3, 3),
    "classifier.1": (4096, 9216),
    "classifier.4": (4096, 4096),
    "classifier.6": (1000, 4096),
}


def vgg_face_dag_shapes() -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for name, (o, i) in VGG_FACE_DAG.items():
        out[f"{name}.weight"] = (o, i, 3, 3)
        out[f"{name}.bias"] = (o,)
    for name, (o, i) in VGG_FACE_FC.items():
        out[f"{name}.weight"] = (o, i)
        out[f"{name}.bias"] = (o,)
    return out


def _bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.{k}": (c,) for k in ("weight", "bias", "running_mean", "running_var")} | {
        f"{prefix}.num_batches_tracked": ()
    }


def arcface_backbone_shapes(depths: tuple[int, int, int, int]) -> dict[str, tuple[int, ...]]:
    """Keys of insightface arcface_torch ``backbone.pth`` (IResNet, 512-D, fc on 512x7x7)."""
    out: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 3, 3), "prelu.weight": (64,)}
    out |= _bn("bn1", 64)
    cin = 64
    for k, (n, c) in enumerate(zip(depths, (64, 128, 256, 512)), start=1):
        for i in range(n):
            p = f"layer{k}.{i}"
            out |= _bn(f"{p}.bn1", cin) | _bn(f"{p}.bn2", c) | _bn(f"{p}.bn3", c)
            out[f"{p}.conv1.weight"] = (c, cin, 3, 3)
            out[f"{p}.prelu.weight"] = (c,)
            out[f"{p}.conv2.weight"] = (c, c, 3, 3)
            if i == 0:
                out[f"{p}.downsample.0.weight"] = (c, cin, 1, 1)
                out |= _bn(f"{p}.downsample.1", c)
            cin = c
    out |= _bn("bn2", 512) | _bn("features", 512)
    out["fc.weight"] = (512, 25088)
    out["fc.bias"] = (512,)
    return out


def _fake(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}


# --- key compatibility --------------------------------------------------------------------


def test_vggface_loads_vgg_face_dag_keys_strictly():
    with torch.device("meta"):
        net = VGGFace16()
    net.load_state_dict(_fake(vgg_face_dag_shapes()), strict=True, assign=True)


@pytest.mark.parametrize(("arch", "depths"), [("r50", (3, 4, 14, 3)), ("r100", (3, 13, 30, 3))])
def test_iresnet_loads_arcface_torch_keys_strictly(arch, depths):
    with torch.device("meta"):
        net = iresnet(arch)
    net.load_state_dict(_fake(arcface_backbone_shapes(depths)), strict=True, assign=True)


def test_lpips_loads_torchvision_alexnet_and_package_heads():
    net = LPIPSAlex("0.0")
    state = {}
    for name, shape in ALEXNET.items():
        state[f"{name}.weight"] = torch.zeros(shape) if name.startswith("f") else torch.empty(shape)
        state[f"{name}.bias"] = torch.zeros(shape[0])
    net.load_backbone(state)
    assert net.features[10].weight.abs().sum() == 0
    for version in ("0.0", "0.1"):
        with pytest.warns(RandomWeightsWarning, match="backbone"):  # no AlexNet file here
            net = load("lpips-alex", version=version, allow_random_init=True)
        assert net.lin0.model[1].weight.shape == (1, 64, 1, 1)


# --- shapes at each network's input size ----------------------------------------------------


def test_full_size_networks_on_meta():
    with torch.device("meta"):
        vgg = VGGFace16().eval()
        assert vgg(torch.zeros(2, 3, 224, 224)).shape == (2, 4096)
        assert VGGFace16("fc8").eval()(torch.zeros(1, 3, 224, 224)).shape == (1, 2622)
        r100 = iresnet("r100").eval()
        assert r100(torch.zeros(2, 3, 112, 112)).shape == (2, 512)


def test_fan_on_meta():
    pytest.importorskip("face_alignment")
    from facectx.pretrained.fan import FAN68

    with torch.device("meta"):
        fan = FAN68().eval()
        assert fan(torch.zeros(1, 3, 256, 256)).shape == (1, 68, 64, 64)


@pytest.mark.parametrize("size", [8, 128])
def test_arcface_r50_random_init_forward(isolated, size):
    with pytest.warns(RandomWeightsWarning):
        net = load("arcface-r50", allow_random_init=True)
    assert net.feature_dim == 512 and net.name == "arcface-r50"
    with torch.no_grad():
        out = net(torch.rand(2, 3, size, size) * 2 - 1)
    assert out.shape == (2, 512) and torch.isfinite(out).all()


@pytest.mark.slow
def test_vggface_random_init_forward(isolated):
    with pytest.warns(RandomWeightsWarning):
        net = load("vggface-fc7", allow_random_init=True)
    with torch.no_grad():
        out = net(torch.rand(1, 3, 128, 128) * 2 - 1)
    assert out.shape == (1, 4096) and (out >= 0).all()  # fc7 after ReLU


@pytest.mark.slow
def test_arcface_r50_weights_round_trip(isolated, tmp_path):
    """A saved backbone state dict loads (meta build + assign) and reproduces the outputs."""
    torch.manual_seed(0)
    ref = iresnet("r50").eval()
    torch.save(ref.state_dict(), tmp_path / "backbone.pth")
    net = load("arcface-r50", path=str(tmp_path / "backbone.pth"))
    x = torch.rand(1, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(net.backbone(x), ref(x))


@pytest.mark.slow
def test_arcface_r100_random_init_forward(isolated):
    with pytest.warns(RandomWeightsWarning):
        net = load("arcface-r100", allow_random_init=True)
    with torch.no_grad():
        out = net(torch.rand(1, 3, 256, 256) * 2 - 1)
    assert out.shape == (1, 512) and torch.isfinite(out).all()


@pytest.mark.slow
def test_fan_random_init_forward_and_decode(isolated):
    with pytest.warns(RandomWeightsWarning):
        net = load("fan-68", allow_random_init=True)
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        assert net(x).shape == (1, 68, 64, 64)
    pts = net.landmarks(x)
    assert pts.shape == (1, 68, 2) and (pts >= 0).all() and (pts <= 256).all()


def test_heatmap_decode_matches_face_alignment_convention():
    from facectx.pretrained.fan import heatmaps_to_points

    hm = torch.zeros(1, 1, 64, 64)
    hm[0, 0, 20, 10] = 1.0  # row 20, column 10
    hm[0, 0, 20, 11] = 0.5  # right neighbour larger -> +0.25 in x
    pts = heatmaps_to_points(hm)
    assert torch.allclose(pts, torch.tensor([[[10.75, 20.5]]]))


# --- LPIPS matches the lpips package --------------------------------------------------------


@pytest.mark.filterwarnings("ignore::UserWarning")  # torchvision's deprecated `pretrained=`
@pytest.mark.parametrize("version", ["0.0", "0.1"])
def test_lpips_matches_reference_package(version):
    lpips = pytest.importorskip("lpips")
    torch.manual_seed(0)
    ref = lpips.LPIPS(net="alex", version=version, pnet_rand=True, verbose=False).eval()
    ours = LPIPSAlex(version)
    trunk = {}
    for k in range(1, 6):
        for name, t in getattr(ref.net, f"slice{k}").state_dict().items():
            trunk[f"features.{name}"] = t
    ours.load_backbone(trunk)
    heads = {k: v for k, v in ref.state_dict().items() if k.split(".")[0].startswith("lin")}
    ours.load_heads({k: v for k, v in heads.items() if not k.startswith("lins.")})
    a, b = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expect = ref(a, b).flatten()
        got = ours(a, b)
    assert got.shape == (2,)
    torch.testing.assert_close(got, expect, rtol=1e-5, atol=1e-6)


# --- adapter geometry -----------------------------------------------------------------------


def _dots(size: int, points: np.ndarray, sigma: float) -> torch.Tensor:
    """[-1, 1] image, background -1, a bright Gaussian dot at each (x, y) pixel-index point."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    img = np.zeros((size, size))
    for x, y in points:
        img = np.maximum(img, np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)))
    return torch.tensor(img * 2 - 1, dtype=torch.float32).expand(1, 3, size, size).clone()


def _centroids(img: torch.Tensor) -> np.ndarray:
    """Weighted centroid of the left and right half of channel 0 (background -1 -> weight 0)."""
    w = ((img[0, 0] + 1) / 2).numpy().astype(np.float64)
    h, width = w.shape
    out = []
    for sl in (slice(0, width // 2), slice(width // 2, width)):
        part = np.zeros_like(w)
        part[:, sl] = w[:, sl]
        part[part < 0.05] = 0
        yy, xx = np.mgrid[0:h, 0:width]
        out.append([(part * xx).sum() / part.sum(), (part * yy).sum() / part.sum()])
    return np.array(out)


@pytest.mark.parametrize("size", [128, 256])
def test_arcface_crop_puts_eyes_on_template(size):
    eyes = CanonicalFrame(size).eye_targets
    x = _dots(size, eyes, sigma=size / 40)
    out = CanonicalCrop(112, ARCFACE_EYES_112)(x)
    assert out.shape == (1, 3, 112, 112)
    np.testing.assert_allclose(_centroids(out), np.array(ARCFACE_EYES_112), atol=0.6)


def test_arcface_crop_stays_inside_frame():
    x0, y0, x1, y1 = crop_box(CanonicalCrop(112, ARCFACE_EYES_112))
    assert 0 < x0 < 0.1 and 0.9 < x1 < 1 and 0 < y0 < 0.05 and 0.85 < y1 < 0.9, (x0, y0, x1, y1)


@pytest.mark.parametrize("size", [64, 256])
def test_vggface_crop_is_whole_frame(size):
    eyes = CanonicalFrame(size).eye_targets
    x = _dots(size, eyes, sigma=size / 40)
    crop = CanonicalCrop(224, tuple(map(tuple, CanonicalFrame(224).eye_targets)))
    out = crop(x)
    assert out.shape == (1, 3, 224, 224)
    np.testing.assert_allclose(_centroids(out), CanonicalFrame(224).eye_targets, atol=0.8)
    np.testing.assert_allclose(crop_box(crop, size), (0, 0, 1, 1), atol=0.01)


class _Stub(nn.Module):
    """Stand-in backbone: mean colour per channel, padded to ``num_features``."""

    def __init__(self, num_features: int, size: int) -> None:
        super().__init__()
        self.num_features = num_features
        self.feature_dim = num_features
        self.layer = "fc7"
        self.size = size
        self.proj = nn.Linear(3, num_features)

    def forward(self, x):
        assert x.shape[-2:] == (self.size, self.size)
        return self.proj(x.mean((2, 3)))


def test_adapters_are_differentiable_and_normalise():
    arc = ArcFaceIdentity(_Stub(512, 112), name="arcface-stub")
    vgg = VGGFaceIdentity(_Stub(4096, 224))
    for net in (arc, vgg):
        x = (torch.rand(2, 3, 96, 96) * 2 - 1).requires_grad_(True)
        out = net(x)
        assert out.shape == (2, net.feature_dim)
        out.sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
    white = torch.ones(1, 3, 64, 64)
    assert torch.allclose(arc.preprocess(white), torch.ones(1, 3, 112, 112))
    mean = torch.tensor([129.186279296875, 104.76238250732422, 93.59396362304688])
    assert torch.allclose(vgg.preprocess(white)[0, :, 0, 0], 255.0 - mean)
    with pytest.raises(ValueError, match="canonical"):
        arc(torch.zeros(1, 3, 64, 48))
