"""ProGAN module: schedule, gradients at every scale, a run that grows to block_128 and loads into
the Hallucinator, exact resume from a mid-growth checkpoint, fade-in."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from torch import nn

from facectx.inference import Hallucinator, load_checkpoint
from facectx.losses import CascadeLoss
from facectx.modules.progan import ProGAN
from facectx.train import run
from facectx.zoo import CasiaDiscriminator
from facectx.zoo.pyramid import build_pyramid

from .conftest import TINY, compose_train, needs_sample

SIZES = (8, 16, 32, 64, 128)
RUN = [
    "experiment=progan_quickstart",
    *TINY,
    "identity=none",
    "model.epochs_per_scale=1",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "data.batch_size=2",
]


class MeanFeatures(nn.Module):
    """A stand-in identity network: pooled 4x4 colour features, differentiable."""

    def forward(self, x):
        return nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)


def _module(**kw) -> ProGAN:
    loss = CascadeLoss(identity=MeanFeatures(), lpips=None)
    return ProGAN(
        lambda size: CasiaDiscriminator(size, width=1 / 16), loss, generator_width=1 / 16, **kw
    )


def _batch(n=2, s=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, s, s, generator=g) * 2 - 1
    mask = torch.zeros(n, 1, s, s)
    mask[..., s // 4 : 3 * s // 4, s // 4 : 3 * s // 4] = 1
    masked = image * mask - (1 - mask)
    valid = torch.ones(n, 1, s, s)
    return {"pyramid": build_pyramid(image, masked, mask, SIZES, valid)}


def test_schedule_and_argument_checks():
    m = _module(epochs_per_scale=[1, 2, 1, 1, 3])
    assert m.scales == SIZES and m.current_size == 8 and m.schedule_epochs == 8
    assert [m.scale_at_epoch(e) for e in range(10)] == [8, 16, 16, 32, 64, 128, 128, 128, 128, 128]
    assert _module(epochs_per_scale=2, start_size=32).scales == (32, 64, 128)
    with pytest.raises(ValueError, match="one int >= 1 per scale"):
        _module(epochs_per_scale=[1, 2])
    with pytest.raises(ValueError, match="start_size"):
        _module(start_size=128, final_size=64)
    with pytest.raises(ValueError, match="shrink"):
        m2 = _module(start_size=16)
        m2.grow_to(32)
        m2.grow_to(16)


def test_gradients_reach_every_parameter_of_the_current_block_at_every_scale():
    m = _module(ema_decay=0.9)
    batch = _batch()
    for size in SIZES:
        m.grow_to(size)
        assert m.current_size == size and m.generator.sizes == (size,)
        assert m.discriminator.size == size
        assert list(m.generator_ema.state_dict()) == list(m.generator.state_dict())
        g_ids = {id(p) for p in m.generator_parameters()}
        assert g_ids and not g_ids & {id(p) for p in m.discriminator_parameters()}

        out = m.generate(batch)
        assert list(out) == [size] and out[size].shape == (2, 3, size, size)
        lvl = batch["pyramid"][size]
        inside = lvl["mask"].expand_as(out[size]) == 1
        assert torch.equal(out[size][inside], lvl["masked"][inside])  # face pixels kept

        m.zero_grad(set_to_none=True)
        loss, logs = m.generator_loss(batch, out)
        loss.backward()
        assert {f"g{size}/pixel", f"g{size}/adv", f"g{size}/id", f"g{size}/tv"} <= set(logs)
        blocks = {k.split("/")[0][1:] for k in logs} - {""}
        assert blocks == {str(size)}  # only the current block is trained
        for name, p in m.generator.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, (size, name)

        m.zero_grad(set_to_none=True)
        d_loss, _ = m.discriminator_loss(batch, {s: o.detach() for s, o in out.items()})
        d_loss.backward()
        for name, p in m.discriminator.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, (size, name)
    assert m.hallucinate(batch)[128].shape == (2, 3, 128, 128)


def test_conditional_patch_discriminator_recipe_at_every_scale():
    """The lfw_cpu recipe's pieces in ProGAN: a conditional PatchGAN gets the face mask as a 4th
    channel, hinge + feature matching weighted to the context, and no D below adv_min_size."""
    from facectx.zoo import PatchDiscriminator

    seen = []

    class Spy(PatchDiscriminator):
        def forward(self, x):
            seen.append(x.shape[1])
            return super().forward(x)

    loss = CascadeLoss(
        identity=MeanFeatures(),
        lpips=None,
        adversarial="hinge",
        lambda_fm=1.0,
        adv_min_size=64,
        adv_context_only=True,
    )
    m = ProGAN(
        lambda size: Spy(size, width=1 / 16),
        loss,
        generator_width=1 / 16,
        transfer_discriminator=False,
        shuffle_blur=True,
        ema_decay=0.9,
    )
    batch = _batch()
    for size in SIZES:
        m.grow_to(size)
        for g in (m.generator, m.generator_ema):  # the fixed blur survives every growth
            assert g.blocks[f"block_{size}"].shuffle_blur and g.init_args()["shuffle_blur"]
        seen.clear()
        out = m.generate(batch)
        _, logs = m.generator_loss(batch, out)
        if size < 64:
            assert not m.uses_discriminator and not seen
            assert f"g{size}/adv" not in logs
            continue
        assert m.uses_discriminator and seen and set(seen) == {4}  # image + mask
        assert {f"g{size}/adv", f"g{size}/fm"} <= set(logs)
        d_loss, _ = m.discriminator_loss(batch, {s: o.detach() for s, o in out.items()})
        d_loss.backward()
        assert all(p.grad is not None for p in m.discriminator.parameters())


def test_lfw_cpu_progan_shares_the_cascade_recipe(tmp_path):
    from omegaconf import OmegaConf

    cascade = compose_train(tmp_path, ["experiment=lfw_cpu"])
    cfg = compose_train(tmp_path, ["experiment=lfw_cpu_progan"])
    assert cfg.model._target_ == "facectx.modules.progan.ProGAN"
    for key in ("data", "mask", "identity", "generator", "discriminator"):
        assert OmegaConf.to_container(cfg[key]) == OmegaConf.to_container(cascade[key]), key
    # the loss too, except the cascade's late SSIM stage, which came after ProGAN's run
    loss, cascade_loss = (OmegaConf.to_container(c.loss) for c in (cfg, cascade))
    assert loss.pop("lambda_ssim") == 0.0 and cascade_loss.pop("lambda_ssim") == 3.0
    assert loss == cascade_loss
    for key in ("optimizer_g", "optimizer_d", "ema_decay", "ema_start", "adv_start"):
        assert cfg.model[key] == cascade.model[key], key
    assert cascade.trainer.max_steps == 7000 and cfg.trainer.max_steps == 5000
    assert cfg.model.transfer_discriminator is False  # PatchGAN has no CASIA stages to carry


@pytest.mark.parametrize(
    "progan", [["experiment=paper_progan"], ["experiment=paper_cascaded", "ablation=progan"]]
)
def test_paper_configs_change_only_the_training_regime(tmp_path, progan):
    from omegaconf import OmegaConf

    cascade = compose_train(tmp_path, ["experiment=paper_cascaded"])
    cfg = compose_train(tmp_path, progan)
    assert cfg.model._target_ == "facectx.modules.progan.ProGAN"
    assert cfg.trainer.max_epochs == 5 * cfg.model.epochs_per_scale == 250
    for key in ("data", "mask", "loss", "identity", "lpips", "generator", "discriminator"):
        assert OmegaConf.to_container(cfg[key]) == OmegaConf.to_container(cascade[key]), key
    for key in ("optimizer_g", "optimizer_d", "grad_clip_g", "grad_clip_d", "ema_decay"):
        assert cfg.model[key] == cascade.model[key], key
    assert cfg.model.generator_width == cascade.generator.width


def _meta(path) -> dict:
    return load_checkpoint(path)["facectx"]


@needs_sample
def test_run_grows_to_128_and_last_checkpoint_loads_into_hallucinator(tmp_path):
    summary = run(compose_train(tmp_path, [*RUN, "trainer.max_epochs=5"]))
    assert summary["epochs"] == 5 and summary["iterations"] == 5
    assert summary["metrics"]["val/size"] == 128.0
    meta = _meta(summary["last_checkpoint"])
    assert meta["progan"]["size"] == 128 and meta["progan"]["final"]
    assert meta["generator"]["sizes"] == [128]
    # the training data's canonical frame, so `hallucinate` aligns raw photos the same way (it
    # aligns in Hallucinator.frame: tests/usage/test_hallucinate.py::test_photos_are_aligned_*)
    import json

    from facectx.assets import sample_root

    frame = json.loads((Path(sample_root()) / "meta.json").read_text())["frame"]
    assert meta["frame"] == frame
    assert Hallucinator.from_checkpoint(summary["last_checkpoint"]).frame == frame
    # best-by-val/context_l1 is tracked per scale: the run's best is a block_128 checkpoint
    assert _meta(summary["best_checkpoint"])["progan"]["size"] == 128
    ckpt_dir = Path(summary["last_checkpoint"]).parent
    snaps = [_meta(ckpt_dir / f"epoch{e:03d}.ckpt")["progan"]["size"] for e in range(5)]
    assert snaps == list(SIZES)  # one snapshot at the end of each scale
    state = load_checkpoint(summary["last_checkpoint"])["state_dict"]
    gen_keys = [k for k in state if k.startswith("generator.")]
    assert gen_keys and all(k.startswith("generator.blocks.block_128.") for k in gen_keys)

    h = Hallucinator.from_checkpoint(summary["last_checkpoint"])
    assert h.size == 128
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 128, 128, generator=g) * 2 - 1
    mask = torch.zeros(2, 1, 128, 128)
    mask[..., 40:90, 40:90] = 1
    masked = image * mask - (1 - mask)
    out = h(masked, mask)
    assert out.shape == (2, 3, 128, 128)
    inside = mask.expand_as(out) == 1
    assert torch.equal(out[inside], masked[inside])


def _losses(metrics_csv: Path) -> dict[int, tuple[float, float]]:
    with open(metrics_csv, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/g/total_step")]
    return {int(r["step"]): (float(r["train/g/total_step"]), float(r["progan/size"])) for r in rows}


@needs_sample
def test_resume_from_mid_growth_checkpoint_continues_at_the_right_scale(tmp_path):
    common = [*RUN, "trainer.log_every_n_steps=1"]
    straight = run(compose_train(tmp_path / "a", [*common, "trainer.max_epochs=3"]))
    first = run(compose_train(tmp_path / "b", [*common, "trainer.max_epochs=2"]))
    assert _meta(first["last_checkpoint"])["progan"]["size"] == 16
    resumed = run(
        compose_train(
            tmp_path / "c",
            [*common, "trainer.max_epochs=3", f"ckpt_path={first['last_checkpoint']}"],
        )
    )
    assert resumed["iterations"] == straight["iterations"] == 3
    assert _meta(resumed["last_checkpoint"])["progan"]["size"] == 32
    full = _losses(Path(straight["output_dir"]) / "metrics.csv")
    second = _losses(Path(resumed["output_dir"]) / "metrics.csv")
    assert sorted(second) == sorted(full)[-1:] and {v[1] for v in second.values()} == {32.0}
    for step, (value, _) in second.items():
        assert value == pytest.approx(full[step][0], rel=1e-5, abs=1e-6), step


@needs_sample
def test_fade_in_ramps_and_survives_resume_mid_fade(tmp_path):
    common = [
        *RUN,
        "model.final_size=16",
        "model.epochs_per_scale=[1,2]",
        "model.fade_epochs=2.5",  # 5 iterations at 2 per epoch: still fading after epoch 1
        "trainer.limit_train_batches=2",
        "trainer.log_every_n_steps=1",
        "callbacks.checkpoint_snapshots.every_n_epochs=1",
    ]
    first = run(compose_train(tmp_path / "a", [*common, "trainer.max_epochs=2"]))
    fade = _meta(first["last_checkpoint"])["progan"]["fade"]
    assert fade == {"start": 2, "iterations": 5}
    assert any(
        k.startswith("fade.") for k in load_checkpoint(first["last_checkpoint"])["state_dict"]
    )
    resumed = run(
        compose_train(
            tmp_path / "b",
            [*common, "trainer.max_epochs=3", f"ckpt_path={first['last_checkpoint']}"],
        )
    )
    with open(Path(resumed["output_dir"]) / "metrics.csv", newline="") as f:
        alphas = [
            float(r["progan/fade_alpha"]) for r in csv.DictReader(f) if r["progan/fade_alpha"]
        ]
    assert alphas == pytest.approx([0.6, 0.8])  # continues where the checkpoint stopped
    meta = _meta(resumed["last_checkpoint"])["progan"]
    assert meta["size"] == 16 and meta["fade"] is None  # fade finished: plain block_16
    assert not any(
        k.startswith("fade.") for k in load_checkpoint(resumed["last_checkpoint"])["state_dict"]
    )
    with open(Path(first["output_dir"]) / "metrics.csv", newline="") as f:
        alphas = [
            float(r["progan/fade_alpha"]) for r in csv.DictReader(f) if r["progan/fade_alpha"]
        ]
    assert alphas == pytest.approx([0.2, 0.4])


def test_ema_restarts_at_every_growth_and_copies_for_ema_start_iterations():
    """After a growth the EMA copies the generator for ``ema_start`` iterations (counted from
    the growth), then averages: the new layers are never blended with their random init."""
    m = _module(ema_decay=0.5, ema_start=2)
    m.iteration.fill_(10)
    m.grow_to(16)

    def step(it: int) -> bool:
        m.iteration.fill_(it)
        with torch.no_grad():
            for p in m.generator.parameters():
                p.add_(0.1)
        m._update_ema()
        pairs = zip(m.generator_ema.parameters(), m.generator.parameters())
        return all(torch.equal(a, b) for a, b in pairs)

    assert step(10) and step(11)  # copies during the scale's first ema_start iterations
    assert not step(12)  # then averages
    ckpt: dict = {}
    m.on_save_checkpoint(ckpt)
    assert ckpt["facectx"]["progan"]["scale_start"] == 10
