"""CascadeGAN: wiring of generator, discriminators and loss; gradients; overfitting real faces."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from facectx.losses import CascadeLoss
from facectx.modules.cascade import CascadeGAN, context_l1
from facectx.zoo import CascadeGenerator, CasiaDiscriminator
from facectx.zoo.pyramid import build_pyramid

from .conftest import needs_sample


class MeanFeatures(nn.Module):
    """A stand-in identity network: pooled 4x4 colour features, differentiable."""

    def forward(self, x):
        return nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)


def _module(sizes=(8, 16, 32), identity=None, **loss_kw):
    gen = CascadeGenerator(sizes=sizes, width=1 / 16)
    loss = CascadeLoss(identity=identity, lpips=None, **loss_kw)
    return CascadeGAN(gen, lambda size: CasiaDiscriminator(size, width=1 / 16), loss)


def _batch(n=2, s=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, s, s, generator=g) * 2 - 1
    mask = torch.zeros(n, 1, s, s)
    mask[..., s // 4 : 3 * s // 4, s // 4 : 3 * s // 4] = 1
    masked = image * mask - (1 - mask)
    valid = torch.ones(n, 1, s, s)
    return {
        "image": image,
        "mask": mask,
        "masked": masked,
        "valid": valid,
        "pyramid": build_pyramid(image, masked, mask, (8, 16, 32)),
    }


def test_one_discriminator_per_block_and_parameter_groups_disjoint():
    m = _module()
    assert sorted(m.discriminators.keys(), key=int) == ["8", "16", "32"]
    g_ids = {id(p) for p in m.generator_parameters()}
    d_ids = {id(p) for p in m.discriminator_parameters()}
    assert g_ids and d_ids and not g_ids & d_ids


def test_generator_loss_reaches_every_generator_parameter():
    m = _module(identity=MeanFeatures())
    batch = _batch()
    loss, logs = m.generator_loss(batch, m.generate(batch))
    loss.backward()
    for name, p in m.generator.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert {"g8/id", "g32/adv_w", "g16/tv"} <= set(logs)


def test_outputs_keep_face_pixels_exactly():
    m = _module()
    batch = _batch()
    out = m.generate(batch)
    for s, o in out.items():
        lvl = batch["pyramid"][s]
        inside = lvl["mask"].expand_as(o) == 1
        assert torch.equal(o[inside], lvl["masked"][inside])


def test_discriminator_sees_separate_real_and_fake_batches():
    m = _module()
    seen = []
    d = m.discriminators["32"]
    d.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[0]))
    batch = _batch(n=3)
    m.discriminator_loss(batch, {k: v.detach() for k, v in m.generate(batch).items()})
    assert seen == [3, 3]  # two minibatches of 3, never one of 6


def test_context_l1_ignores_face_and_invalid_pixels():
    pred = torch.zeros(1, 3, 4, 4)
    target = torch.zeros(1, 3, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1  # top half is face
    target[..., :2, :] = 5.0  # errors inside the face don't count
    target[..., 2:, :2] = 1.0
    valid = torch.ones(1, 1, 4, 4)
    valid[..., 3:, :] = 0  # last row invalid
    assert context_l1(pred, target, mask, valid).item() == pytest.approx(0.5)


@needs_sample
def test_overfit_eight_real_faces_halves_context_l1(tmp_path):
    """8 real LFW faces (the embedded sample) at small width: context L1 falls >= 50%."""
    from facectx.assets import sample_root
    from facectx.data.datamodule import FaceDataModule
    from facectx.data.manifest import link_prepared

    pl.seed_everything(0)
    root = link_prepared(sample_root(), tmp_path / "eight", 8 * 50, faces=8)
    dm = FaceDataModule(
        root=root, batch_size=8, mirror=False, val_fraction=0.0, pyramid_sizes=(8, 16, 32)
    )
    dm.setup("fit")
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    m = _module(sizes=(8, 16, 32), lambda_adv=0.0, lambda_tv=0.0)
    m._optimizer_g = lambda p: torch.optim.Adam(p, lr=1e-3)

    def ctx(module):
        out = module.hallucinate(batch)[32]
        lvl = batch["pyramid"][32]
        return context_l1(out, lvl["image"], lvl["mask"]).mean().item()

    before = ctx(m)
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(m, dm)
    after = ctx(m)
    assert int(m.iteration) == 100
    assert after <= 0.5 * before, (before, after)
