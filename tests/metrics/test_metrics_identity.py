"""Mean match score (Pearson, eq. 7), cosine, TPR@FPR, accuracy, FID and the registry."""

from __future__ import annotations

import math

import pytest
import torch

from facectx.metrics import (
    accuracy,
    best_threshold,
    cosine,
    frechet_distance,
    get_metric,
    list_metrics,
    mean_match_score,
    pairs_in_set,
    pearson,
    tpr_at_fpr,
)


def test_pearson_hand_cases():
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 7.0]])
    assert torch.allclose(pearson(x, 2 * x + 1), torch.ones(2, dtype=torch.float64))
    assert torch.allclose(pearson(x, -x), -torch.ones(2, dtype=torch.float64))
    # orthogonal centred vectors: 0
    assert (
        pearson(torch.tensor([1.0, -1.0, 1.0, -1.0]), torch.tensor([1.0, 1.0, -1.0, -1.0])).item()
        == 0
    )
    assert torch.isnan(pearson(torch.ones(1, 4), x[:1])).all()  # constant vector
    assert mean_match_score(x, 2 * x + 1) == pytest.approx(1.0)


def test_cosine_is_not_shift_invariant_unlike_pearson():
    x = torch.tensor([[1.0, 2.0, 3.0]])
    assert cosine(x, 3 * x).item() == pytest.approx(1.0)
    assert cosine(x, x + 10).item() < 1.0
    assert pearson(x, x + 10).item() == pytest.approx(1.0)


def test_tpr_at_fpr_on_a_hand_built_list():
    # 100 negatives scoring 0.00..0.99, positives scoring 0.5, 0.985, 0.995, 1.2
    neg = [i / 100 for i in range(100)]
    pos = [0.5, 0.985, 0.995, 1.2]
    scores, same = neg + pos, [False] * 100 + [True] * 4
    # FPR 0.01 of 100 negatives allows 1 false accept: threshold = 2nd highest negative, 0.98
    tpr, t = tpr_at_fpr(scores, same, 0.01)
    assert t == pytest.approx(0.98)
    assert tpr == pytest.approx(3 / 4)
    # FPR 0 (k = 0): above every negative
    tpr0, t0 = tpr_at_fpr(scores, same, 0.0)
    assert (tpr0, t0) == (pytest.approx(2 / 4), pytest.approx(0.99))
    tpr1, _ = tpr_at_fpr(scores, same, 1.0)  # everything accepted
    assert tpr1 == 1.0
    assert math.isnan(tpr_at_fpr([0.1], [True])[0])  # no negatives


def test_best_threshold_and_accuracy():
    scores = [0.1, 0.2, 0.3, 0.7, 0.8, 0.25]
    same = [False, False, False, True, True, True]
    t, acc = best_threshold(scores, same)
    assert acc == pytest.approx(5 / 6)
    assert accuracy(scores, same, t) == pytest.approx(acc)
    # t = 0.225 (between 0.2 and 0.25) and any t in (0.3, 0.7) both err once: the lowest wins
    assert t == pytest.approx(0.225)
    assert accuracy([0.9, 0.1], [True, False], 0.5) == 1.0
    t_sep, acc_sep = best_threshold([0.1, 0.9], [False, True])
    assert acc_sep == 1.0 and 0.1 < t_sep < 0.9


def test_pairs_in_set_keeps_pairs_wholly_inside():
    pairs = [("A_0001.jpg", "A_0002.jpg", True), ("A_0001.jpg", "B_0001.jpg", False)]
    ids = {"A_0001.jpg": "A_0001_0", "A_0002.jpg": "A_0002_0"}
    assert pairs_in_set(pairs, ids) == [("A_0001_0", "A_0002_0", True)]


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(64, 8, generator=g)
    for backend in ("svd", "torchmetrics"):
        assert frechet_distance(feats, feats, backend) == pytest.approx(0.0, abs=1e-6)
    shifted = feats + torch.tensor([3.0] + [0.0] * 7)
    assert frechet_distance(feats, shifted) == pytest.approx(9.0, rel=1e-6)  # |mu diff|^2


def test_fid_backends_agree():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(40, 32, generator=g), 1.5 * torch.randn(30, 32, generator=g) + 0.3
    assert frechet_distance(a, b, "svd") == pytest.approx(
        frechet_distance(a, b, "torchmetrics"), rel=1e-6
    )


def test_fid_needs_two_images():
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(torch.zeros(1, 4), torch.zeros(3, 4))


def test_registry_names_directions_and_functions():
    assert get_metric("ssim").higher_is_better and not get_metric("fid").higher_is_better
    assert [m.name for m in list_metrics("pixel")] == ["mse", "psnr", "ssim"]
    assert get_metric("rho").resolve() is pearson
    with pytest.raises(KeyError, match="known"):
        get_metric("nope")


def test_dlib_library_descriptor_agrees_with_the_port():
    """identity_backend=dlib (dlib's C++ descriptor) and the PyTorch port see the same faces."""
    from torch.utils.data import DataLoader

    from facectx.assets import sample_root
    from facectx.data.datasets import PreparedFaces
    from facectx.metrics import DlibNativeDescriptor
    from facectx.pixels import to_uint8
    from facectx.pretrained import load

    faces = PreparedFaces(sample_root(), split="train")
    b = next(iter(DataLoader(faces, batch_size=4)))
    native = DlibNativeDescriptor()(to_uint8(b["image"]), b["landmarks"].numpy())
    port = load("dlib-resnet")(b["image"])
    assert native.shape == port.shape == (4, 128)
    assert cosine(native, port).min() > 0.97
    assert (native - port).norm(dim=1).max() < 0.3  # dlib's same-person threshold is 0.6
