"""The manual-optimisation GAN base class on a toy GAN."""

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from facectx.modules.gan_base import GANModule, NonFiniteLossError, NonFiniteModelError


class Points(Dataset):
    def __init__(self, n=32):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 2, generator=g) + 3

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"real": self.x[i], "z": torch.randn(2, generator=torch.Generator().manual_seed(i))}


class ToyGAN(GANModule):
    def __init__(self, nan_at=None, use_d=True, **kw):
        super().__init__(**kw)
        self.g = nn.Linear(2, 2)
        self.d = nn.Linear(2, 1)
        self.frozen_net = nn.Linear(2, 2).requires_grad_(False)  # stands in for a loss net
        self.nan_at = nan_at
        self.use_d = use_d
        self.setup_ema()

    @property
    def generator_module(self):
        return self.g

    @property
    def uses_discriminator(self):
        return self.use_d

    def generator_parameters(self):
        return self.g.parameters()

    def discriminator_parameters(self):
        return self.d.parameters()

    def generate(self, batch):
        return self.g(batch["z"])

    def discriminator_loss(self, batch, fake):
        assert not fake.requires_grad, "D must see detached fakes"
        real_t = (self.d(batch["real"]) - 1).square().mean()
        fake_t = self.d(fake).square().mean()
        return real_t + fake_t, {"d": real_t + fake_t}

    def generator_loss(self, batch, fake):
        loss = (self.d(fake) - 1).square().mean() + 0.1 * fake.square().mean()
        if self.nan_at is not None and int(self.iteration) == self.nan_at:
            loss = loss * float("nan")
        return loss, {"g": loss}


def _fit(model, steps=5):
    trainer = pl.Trainer(
        max_steps=2 * steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, DataLoader(Points(), batch_size=4))
    return trainer


def test_own_iteration_counter_vs_global_step():
    model = ToyGAN()
    trainer = _fit(model, steps=5)
    assert int(model.iteration) == 5
    assert trainer.global_step == 10  # Lightning counts each optimiser step


def test_each_optimizer_updates_only_its_network_and_frozen_net_untouched():
    model = ToyGAN()
    g0 = [p.detach().clone() for p in model.g.parameters()]
    d0 = [p.detach().clone() for p in model.d.parameters()]
    f0 = model.frozen_net.weight.detach().clone()
    trainer = _fit(model, steps=3)
    opt_g, opt_d = trainer.optimizers
    g_ids = {id(p) for grp in opt_g.param_groups for p in grp["params"]}
    d_ids = {id(p) for grp in opt_d.param_groups for p in grp["params"]}
    assert g_ids == {id(p) for p in model.g.parameters()}
    assert d_ids == {id(p) for p in model.d.parameters()}
    assert id(model.frozen_net.weight) not in g_ids | d_ids
    assert any(not torch.equal(a, b) for a, b in zip(g0, model.g.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, model.d.parameters()))
    assert torch.equal(f0, model.frozen_net.weight)
    # toggling restored requires_grad everywhere
    assert all(p.requires_grad for p in model.g.parameters())
    assert all(p.requires_grad for p in model.d.parameters())


def test_discriminator_skipped_when_adversarial_off():
    model = ToyGAN(use_d=False)
    d0 = [p.detach().clone() for p in model.d.parameters()]
    _fit(model, steps=2)
    assert all(torch.equal(a, b) for a, b in zip(d0, model.d.parameters()))


def test_nan_loss_raises_clear_error():
    with pytest.raises(NonFiniteLossError, match=r"iteration 2.*grad_clip"):
        _fit(ToyGAN(nan_at=2), steps=5)


def test_nan_policy_skip_counts_and_continues():
    model = ToyGAN(nan_at=2, nan_policy="skip")
    _fit(model, steps=4)
    assert int(model.skipped_iterations) >= 1
    assert torch.isfinite(model.g.weight).all()


def test_ema_tracks_generator():
    model = ToyGAN(ema_decay=0.5)
    _fit(model, steps=3)
    assert model.inference_generator() is model.generator_ema
    assert not any(p.requires_grad for p in model.generator_ema.parameters())
    assert not torch.equal(model.generator_ema.weight, model.g.weight)  # lags behind


def test_grad_clipping_runs():
    model = ToyGAN(grad_clip_g=1e-3, grad_clip_d=1e-3)
    _fit(model, steps=2)
    assert int(model.iteration) == 2


def test_bad_nan_policy():
    with pytest.raises(ValueError, match="nan_policy"):
        ToyGAN(nan_policy="ignore")


class DivergingGAN(ToyGAN):
    """Every loss is NaN from ``nan_at`` on, as after a step that blew the weights up."""

    def generator_loss(self, batch, outputs):
        loss, logs = super().generator_loss(batch, outputs)
        if self.nan_at is not None and int(self.iteration) >= self.nan_at:
            loss = loss * float("nan")
        return loss, logs


def test_nan_policy_skip_gives_up_after_n_consecutive_bad_batches():
    model = DivergingGAN(nan_at=2, nan_policy="skip", nan_max_skips=3)
    with pytest.raises(NonFiniteLossError, match=r"gave up after 3 consecutive.*nan_max_skips=3"):
        _fit(model, steps=10)
    assert int(model.iteration) == 2 and int(model.skipped_iterations) == 3


class FlakyGAN(ToyGAN):
    """A non-finite generator loss on every other batch, never two in a row."""

    calls = 0

    def generator_loss(self, batch, outputs):
        loss, logs = super().generator_loss(batch, outputs)
        self.calls += 1
        return (loss * float("nan") if self.calls % 2 == 0 else loss), logs


def test_isolated_bad_batches_do_not_add_up_to_giving_up():
    model = FlakyGAN(nan_policy="skip", nan_max_skips=2)
    _fit(model, steps=6)  # the consecutive count resets after every good batch
    assert int(model.skipped_iterations) >= 2 and int(model.iteration) >= 2


def test_a_model_with_non_finite_parameters_is_never_saved(tmp_path):
    model = ToyGAN()
    _fit(model, steps=1)
    with torch.no_grad():
        model.g.weight[0, 0] = float("nan")
    checkpoint = {"state_dict": model.state_dict()}
    with pytest.raises(NonFiniteModelError, match=r"not saving a checkpoint.*g\.weight"):
        model.on_save_checkpoint(checkpoint)
