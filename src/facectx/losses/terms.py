"""Loss terms as small pure functions on tensors. No weights are applied here.

Each returns a scalar (mean over the batch) unless stated. ``weight`` arguments are optional
(B, 1, H, W) masks in [0, 1] that restrict a pixel loss to a region (e.g. pixels that came from
inside the source photo); the mean is then taken over the weighted pixels only.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _weighted_mean(x: Tensor, weight: Tensor | None) -> Tensor:
    if weight is None:
        return x.mean()
    w = weight.expand_as(x)
    return (x * w).sum() / w.sum().clamp_min(1.0)


def pixel_l1(pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean absolute error (paper eq. 1)."""
    return _weighted_mean((pred - target).abs(), weight)


def pixel_l2(pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean squared error (the paper's l2 ablation)."""
    return _weighted_mean((pred - target).square(), weight)


PIXEL_LOSSES = {"l1": pixel_l1, "l2": pixel_l2}


def lsgan_generator(d_fake: Tensor, target: float = 1.0) -> Tensor:
    """LSGAN generator term (paper eq. 3): mean (D(G(x)) - c)^2 with c = 1."""
    return (d_fake - target).square().mean()


def lsgan_discriminator(d_out: Tensor, target: float) -> Tensor:
    """LSGAN discriminator term for one minibatch (all real or all fake): mean (D(x) - t)^2.

    The discriminator sees real and fake images in separate minibatches; the real target is
    smoothed (e.g. 0.9) to keep D from becoming over-confident.
    """
    return (d_out - target).square().mean()


def identity_mse(feat_fake: Tensor, feat_real: Tensor) -> Tensor:
    """Mean squared difference of identity features (paper eq. 4), averaged over batch and dims."""
    if feat_fake.shape != feat_real.shape:
        raise ValueError(
            f"identity features differ in shape: {feat_fake.shape} vs {feat_real.shape}"
        )
    return (feat_fake - feat_real).square().mean()


def total_variation(x: Tensor) -> Tensor:
    """Squared total variation (paper eq. 5): per image the sum over pixels and channels of the
    squared horizontal and vertical neighbour differences, then the mean over the batch.

    Unnormalised by image size, as in the paper, which is why its weight is tiny (1e-6).
    """
    dh = (x[..., :, 1:] - x[..., :, :-1]).square().sum(dim=(1, 2, 3))
    dv = (x[..., 1:, :] - x[..., :-1, :]).square().sum(dim=(1, 2, 3))
    return (dh + dv).mean()


def ssim_distance(pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """1 - SSIM (the evaluation's SSIM: Gaussian 11 px window, sigma 1.5, on [0, 1] images),
    its map averaged over the (optionally weighted) pixels. Unlike L1 it scores local
    contrast and structure, so texture drawn in the wrong place costs more than a flat guess
    (the recipe's last stage: docs/results.md)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    if min(pred.shape[-2:]) < 11:
        raise ValueError(
            f"SSIM needs images of at least 11 px (its window), got {tuple(pred.shape)}"
        )
    _, full = structural_similarity_index_measure(
        (pred + 1) * 0.5, (target + 1) * 0.5, data_range=1.0, return_full_image=True
    )
    return 1.0 - _weighted_mean(full, weight)


def perceptual(lpips_net: torch.nn.Module, pred: Tensor, target: Tensor) -> Tensor:
    """Mean LPIPS distance (paper eq. 2); ``lpips_net(a, b)`` returns one distance per image."""
    return lpips_net(pred, target).mean()


def hinge_generator(d_fake: Tensor, weight: Tensor | None = None) -> Tensor:
    """Hinge-GAN generator term: mean -D(G(x)) over (optionally weighted) patch logits."""
    return _weighted_mean(-d_fake, weight)


def hinge_discriminator(d_out: Tensor, real: bool, weight: Tensor | None = None) -> Tensor:
    """Hinge-GAN discriminator term for one minibatch: mean relu(1 - D(x)) for real patches,
    mean relu(1 + D(x)) for fake ones (optionally weighted per patch)."""
    margin = 1.0 - d_out if real else 1.0 + d_out
    return _weighted_mean(torch.relu(margin), weight)


def weighted_lsgan(d_out: Tensor, target: float, weight: Tensor | None = None) -> Tensor:
    """LSGAN term mean (D(x) - t)^2 over (optionally weighted) patch outputs."""
    return _weighted_mean((d_out - target).square(), weight)


def feature_matching(feats_fake: list[list[Tensor]], feats_real: list[list[Tensor]]) -> Tensor:
    """Discriminator feature matching (pix2pixHD): mean L1 between the intermediate features of
    D on the fake and on the real image, averaged over layers and scales. Logits (the last
    item of each scale) are excluded; the real features are taken as constants."""
    if len(feats_fake) != len(feats_real):
        raise ValueError(f"feature matching: {len(feats_fake)} vs {len(feats_real)} scales")
    total, n = None, 0
    for ff, fr in zip(feats_fake, feats_real):
        for a, b in zip(ff[:-1], fr[:-1]):
            t = (a - b.detach()).abs().mean()
            total = t if total is None else total + t
            n += 1
    if total is None:
        raise ValueError("feature matching needs discriminators that return intermediate features")
    return total / n
