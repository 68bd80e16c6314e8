"""The SwapInpaint LightningModule: stage logic (content → generator with C and I frozen and
bit-identical), the joint schedule, overfitting a tiny set, checkpoints and the experiments."""

from __future__ import annotations

import copy

import pytest
import pytorch_lightning as pl
import torch

from facectx.modules.swapinpaint import SwapInpaintGAN

from .conftest import (
    PairBatches,
    TinyIdentity,
    compose_train,
    make_module,
    needs_dlib,
    needs_sample,
    random_pairs,
    tiny_trainer,
)


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class ModeSpy(pl.Callback):
    """Records whether C was in training mode each time it ran during training steps."""

    def __init__(self) -> None:
        self.modes: list[bool] = []
        self.stages: list[str] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.stages.append(pl_module.stage)
        if not hasattr(self, "_hook"):
            self._hook = pl_module.content.register_forward_pre_hook(
                lambda m, args: self.modes.append(m.training)
            )


def test_generator_stage_leaves_c_and_i_bit_identical(tmp_path):
    identity = TinyIdentity()
    model = make_module(identity=identity, content_iterations=0)
    c0, i0, g0 = _state(model.content), _state(identity), _state(model.swap)
    spy = ModeSpy()
    tiny_trainer(tmp_path, 2, max_epochs=2, callbacks=[spy]).fit(model, PairBatches())
    assert spy.stages == ["generator"] * 4
    assert spy.modes and not any(spy.modes)  # C always ran in eval mode
    assert _same(_state(model.content), c0)  # C bit-identical
    assert _same(_state(identity), i0)  # I bit-identical
    assert not identity.training and not any(p.requires_grad for p in identity.parameters())
    assert not _same(_state(model.swap), g0)  # G did train
    assert bool(model.content_frozen) and int(model.iteration) == 4


def test_content_stage_trains_c_only_then_switches(tmp_path):
    model = make_module(content_iterations=2)
    c0, g0 = _state(model.content), _state(model.swap)
    snaps = {}

    class Snap(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            snaps[int(pl_module.iteration)] = (_state(pl_module.content), _state(pl_module.swap))

    tiny_trainer(tmp_path, 2, max_epochs=2, callbacks=[Snap()]).fit(model, PairBatches())
    c2, g2 = snaps[2]
    assert not _same(c2, c0) and _same(g2, g0)  # stage 1: C trains, G untouched
    c4, g4 = snaps[4]
    assert _same(c4, c2) and not _same(g4, g2)  # stage 2: C frozen, G trains


def test_joint_schedule_trains_both_every_iteration(tmp_path):
    model = make_module(schedule="joint")
    c0, g0 = _state(model.content), _state(model.swap)
    tiny_trainer(tmp_path, 1).fit(model, PairBatches(n=2))
    assert model.stage == "joint"
    assert not _same(_state(model.content), c0) and not _same(_state(model.swap), g0)


def _losses(model, stage_iterations, tmp_path, key, n_iter=30):
    seen = []

    class Rec(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.append(float(trainer.callback_metrics[key]))

    tiny_trainer(tmp_path, 1, max_epochs=n_iter, callbacks=[Rec()]).fit(
        model, PairBatches(n=2, batch_size=2)
    )
    return seen


def test_overfitting_a_tiny_set_lowers_the_losses(tmp_path):
    c_model = make_module(content_iterations=10_000, loss_kw={"lambda_content_adv": 0.0})
    c_model._optimizer_g = lambda p: torch.optim.Adam(p, lr=2e-3)
    rec = _losses(c_model, None, tmp_path / "c", "train/c/rec_step")
    assert sum(rec[-5:]) / 5 < 0.75 * sum(rec[:5]) / 5

    g_model = make_module(content_iterations=0, loss_kw={"lambda_adv": 0.0, "lambda_id": 0.0})
    g_model._optimizer_g = lambda p: torch.optim.Adam(p, lr=2e-3)
    total = _losses(g_model, None, tmp_path / "g", "train/g/total_step")
    assert sum(total[-5:]) / 5 < 0.6 * sum(total[:5]) / 5


def test_hole_term_reaches_the_generator_from_the_module(tmp_path):
    """λ_hole: the module hands the real face to the loss, and G learns its hole from it."""
    model = make_module(
        content_iterations=0,
        loss_kw={"lambda_adv": 0.0, "lambda_id": 0.0, "lambda_att": 0.0, "lambda_hole": 10.0},
    )
    model._optimizer_g = lambda p: torch.optim.Adam(p, lr=2e-3)
    hole = _losses(model, None, tmp_path, "train/g/hole_step")
    assert hole[0] > 0
    assert sum(hole[-5:]) / 5 < 0.75 * sum(hole[:5]) / 5


def test_late_weights_switch_at_late_start_from_the_module(tmp_path):
    """loss.swap_late: the module hands its iteration to the loss, which switches weights."""
    model = make_module(
        content_iterations=0,
        loss_kw={"lambda_adv": 0.0, "lambda_id": 0.0, "swap_late": {"rec": 1.0}, "late_start": 2},
    )
    ratio = []

    class Rec(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            m = trainer.callback_metrics
            ratio.append(float(m["train/g/rec_w_step"] / m["train/g/rec_step"]))

    tiny_trainer(tmp_path, 1, max_epochs=4, callbacks=[Rec()]).fit(
        model, PairBatches(n=2, batch_size=2)
    )
    assert ratio == pytest.approx([10, 10, 1, 1])  # iterations 0 and 1, then 2 on


def test_checkpoint_round_trip_into_the_inpainter(tmp_path):
    from facectx.inference import Inpainter

    identity = TinyIdentity()
    model = make_module(identity=identity, content_iterations=1, ema_decay=0.9)
    trainer = tiny_trainer(tmp_path, 2)
    trainer.fit(model, PairBatches())
    path = tmp_path / "last.ckpt"
    trainer.save_checkpoint(path)
    meta = torch.load(path, weights_only=True)["facectx"]
    assert meta["kind"] == "swapinpaint" and meta["ema"] and meta["stage"] == "generator"
    assert meta["identity"] == {"name": "tiny-identity", "feature_dim": 16}
    state = torch.load(path, weights_only=True)["state_dict"]
    assert not any(k.startswith("identity") for k in state)  # I is not saved

    inp = Inpainter.from_checkpoint(path, identity=TinyIdentity())
    b = random_pairs(2)
    ours = inp(b["masked"], b["mask"], b["reference"])
    model.eval()
    theirs = model.inpaint_batch(b)
    for k in ("content", "swapped", "output"):
        assert torch.allclose(ours[k], theirs[k].clamp(-1, 1), atol=1e-6)

    # a later run takes C from this checkpoint and skips the content stage
    again = make_module(content_checkpoint=str(path), seed=5)
    assert again.stage == "generator"
    assert _same(_state(again.content), _state(model.generator_ema.content))


def test_batches_without_references_are_rejected_clearly(tmp_path):
    model = make_module()
    batch = random_pairs(2)
    del batch["reference"]
    with pytest.raises(KeyError, match="data=pairs"):
        model._check_batch(batch)
    with pytest.raises(ValueError, match="identity"):
        SwapInpaintGAN(
            content=copy.deepcopy(model.content),
            content_discriminator=model.content_discriminator,
            swap=model.swap,
            discriminator=model.discriminator,
            identity=None,
            loss=model.loss,
            size=64,
        )


@needs_sample
@needs_dlib
@pytest.mark.parametrize(
    "experiment",
    [
        "swapinpaint_quickstart",
        "paper_swapinpaint",
        "lfw_swap_cpu_composite_d",
        "lfw_swap_cpu_wide",
    ],
)
def test_experiments_compose_and_run_one_iteration(tmp_path, experiment):
    from facectx.train import run

    overrides = [
        f"experiment={experiment}",
        "debug=fdr",
        "model.width=0.0625",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "~callbacks.progress_bar",
    ]
    if experiment.startswith("paper"):
        # 256 px data and ArcFace weights are not here: the sample at 128 px and dlib-resnet
        overrides += [
            "data=pairs_sample",
            "data.batch_size=2",
            "model.size=128",
            "identity=dlib-resnet",
        ]
    if experiment.startswith("lfw_swap"):  # LFW is not here: the embedded sample's pairs
        overrides += ["data=pairs_sample", "data.batch_size=2", "model.content_iterations=0"]
    cfg = compose_train(tmp_path, overrides)
    summary = run(cfg)
    assert summary["iterations"] == 1


@needs_sample
def test_paper_experiment_holds_the_paper_settings(tmp_path):
    cfg = compose_train(tmp_path, ["experiment=paper_swapinpaint", "data.root=/prepared256"])
    assert cfg.model.size == 256 and cfg.model.width == 1.0
    assert cfg.data.batch_size == 16 and cfg.model.optimizer_g.lr == 1.0e-4
    assert cfg.model.schedule == "separate" and cfg.identity.name == "arcface-r100"
    loss = cfg.loss
    assert (loss.lambda_content_rec, loss.lambda_content_kl) == (20.0, 20.0)
    assert (loss.lambda_rec, loss.lambda_id, loss.lambda_att) == (10.0, 5.0, 10.0)
    assert cfg.mask._target_ == "facectx.masks.MaskSampler"


def test_max_iterations_stops_the_run(tmp_path):
    model = make_module(content_iterations=1, max_iterations=3)
    tiny_trainer(tmp_path, 2, max_epochs=10).fit(model, PairBatches())
    assert int(model.iteration) == 3


def test_generator_ema_can_start_counting_from_the_switch():
    """ema_start governs C; ema_start_generator counts G's EMA start from the switch, so a
    long content stage leaves none of G's untrained weights in its average."""
    model = make_module(content_iterations=4, ema_decay=0.9, ema_start=2, ema_start_generator=3)

    def decay_after(step: int) -> float:  # the decay applied after training iteration `step`
        model.iteration.fill_(step + 1)
        return model.ema_decay_now()

    assert [decay_after(s) for s in range(4)] == [0.0, 0.9, 0.9, 0.9]  # C: from ema_start
    # G trains iterations 4, 5, 6, ...: copied until 4 + 3 = 7, then averaged
    assert [decay_after(s) for s in range(4, 9)] == [0.0, 0.0, 0.9, 0.9, 0.9]

    same = make_module(content_iterations=4, ema_decay=0.9, ema_start=2)  # None: one start
    same.iteration.fill_(6)
    assert same.ema_decay_now() == 0.9
    with pytest.raises(ValueError, match="ema_start_generator"):
        make_module(ema_decay=0.9, ema_start_generator=-1)


def test_generator_ema_start_keeps_the_trained_content_average(tmp_path):
    """C's EMA at the switch is the average from ema_start, not a plain copy of the last C."""
    model = make_module(content_iterations=3, ema_decay=0.5, ema_start=0, ema_start_generator=1)
    model._optimizer_g = lambda p: torch.optim.Adam(p, lr=1e-2)
    tiny_trainer(tmp_path, 3).fit(model, PairBatches(n=6, batch_size=2))
    assert int(model.iteration) == 3 and model.stage == "generator"
    assert not _same(_state(model.content), _state(model.generator_ema.content))
    tiny_trainer(tmp_path, 1).fit(model, PairBatches(n=2, batch_size=2))  # the switch
    assert _same(_state(model.content), _state(model.generator_ema.content))


class _Recorder(torch.nn.Module):
    """Wraps G's discriminator and keeps every input it is given."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.seen = inner, []
        self.in_channels = inner.in_channels

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.inner(x)


def test_composite_discriminator_judges_only_the_painted_pixels(tmp_path, caplog):
    """discriminator_input=composite: D sees Y and real faces with the hole as a 4th channel;
    outside the hole the two are the same pixels, so only the fill can tell them apart."""
    from facectx.zoo.swapinpaint import MultiScalePatchDiscriminator

    with pytest.raises(ValueError, match="in_channels=4"):
        make_module(discriminator_input="composite")
    with pytest.raises(ValueError, match="discriminator_input"):
        make_module(discriminator_input="hole")
    d = _Recorder(MultiScalePatchDiscriminator(0.0625, num_scales=2, in_channels=4))
    model = make_module(content_iterations=0, discriminator_input="composite", discriminator=d)
    d0 = _state(d.inner)
    with caplog.at_level("INFO", logger="facectx.modules.swapinpaint"):
        tiny_trainer(tmp_path, 1).fit(model, PairBatches())
    assert "discriminator judges Y and the hole" in caplog.text
    assert not _same(_state(d.inner), d0)  # D trained on 4-channel inputs
    real, fake = d.seen[0], d.seen[1]  # the D step: real first, then the detached fake
    assert real.shape[1] == fake.shape[1] == 4
    hole = real[:, 3:]
    assert torch.equal(hole, fake[:, 3:]) and 0 < hole.mean() < 1
    known = (hole < 0.5).expand(-1, 3, -1, -1)
    assert torch.allclose(real[:, :3][known], fake[:, :3][known], atol=1e-6)
    assert not torch.allclose(real[:, :3][~known], fake[:, :3][~known])
    with pytest.raises(ValueError, match="4"):
        MultiScalePatchDiscriminator(0.0625, in_channels=5)
