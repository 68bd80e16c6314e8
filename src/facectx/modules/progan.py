"""LightningModule for the progressively grown variant of the cascade (paper §3.1 "ProGAN", §4.3).

One generator block and its discriminator are trained at a time, on the pyramid level of their
size: block_8 with 8×8 masks for ``epochs_per_scale`` epochs, then the network grows into
block_16 (trained layers loaded, new layers added: :mod:`facectx.zoo.progan`) and training
resumes on 16×16 masks, and so on up to block_128, which alone is used at test time. Losses,
hyper-parameters and data are the cascade's (``CascadeLoss`` for one block at a time).

The current block lives in a one-block ``CascadeGenerator(sizes=(N,))`` at ``self.generator``, so
checkpoints hold ``generator.blocks.block_<N>.*`` plus the cascade metadata, and a final
(block_128) checkpoint loads unchanged into ``facectx.Hallucinator``. See ``docs/progan.md``.
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from facectx.checkpoint import CheckpointError, CheckpointMeta, read_meta
from facectx.losses.cascade import CascadeLoss
from facectx.modules.cascade import PyramidGAN, context_l1
from facectx.zoo.cascade import BLOCK_SIZES, CascadeGenerator
from facectx.zoo.discriminators import CasiaDiscriminator
from facectx.zoo.progan import (
    FadeIn,
    discriminator_key_map,
    grow_generator,
    transfer_weights,
)

log = logging.getLogger("facectx.progan")


def _scales(start_size: int, final_size: int) -> tuple[int, ...]:
    if start_size not in BLOCK_SIZES or final_size not in BLOCK_SIZES or start_size > final_size:
        raise ValueError(
            f"start_size and final_size must be in {BLOCK_SIZES} with start <= final, "
            f"got {start_size} and {final_size}"
        )
    return tuple(s for s in BLOCK_SIZES if start_size <= s <= final_size)


class ProGAN(PyramidGAN):
    """Progressively grown generator block with one discriminator at the current scale.

    Args:
        discriminator: factory ``size -> nn.Module`` (Hydra partial, e.g. ``CasiaDiscriminator``);
            called once per scale. With ``transfer_discriminator`` it must build
            ``CasiaDiscriminator`` instances.
        loss: the cascade's ``CascadeLoss`` (weights, frozen LPIPS/identity networks), applied to
            the current block only.
        generator_width: channel multiplier of every generator block (``${generator.width}``).
        epochs_per_scale: epochs trained at each scale before growing (paper: 50); an int for all
            scales, or one int per scale from ``start_size`` to ``final_size``. Training continues
            at ``final_size`` after its epochs until ``trainer.max_epochs``.
        start_size: size of the first block (8 in the paper).
        final_size: size of the last block, the one used at test time (128 in the paper).
        upscaler_channels: written into checkpoint metadata only (a one-block cascade has no
            upscaler); ``${generator.upscaler_channels}`` keeps it equal to the cascade's.
        transfer_discriminator: True: D_2N starts from D_N's trained stages
            (:func:`facectx.zoo.progan.discriminator_key_map`); False: a fresh D at every scale.
        fade_epochs: 0 = no fade-in (the paper); > 0: after each growth the new output layers
            are blended in over this many epochs (``FadeIn``; alpha ramps linearly per iteration).
        shuffle_blur: fixed blur after every pixel shuffle of the blocks
            (``${generator.shuffle_blur}``; see ``facectx.zoo.layers.ShuffleBlur``).
        optimizer_g / optimizer_d / grad_clip_* / ema_* / nan_* / adv_start: see ``GANModule``
            (``adv_start`` counts iterations over the whole run; ``ema_start`` from the start of
            each scale: the EMA copies the generator for that long after every growth).
            Optimisers are re-created after every growth: Adam state is reset for all parameters.
    """

    def __init__(
        self,
        discriminator: Callable[..., nn.Module],
        loss: CascadeLoss,
        generator_width: float = 1.0,
        epochs_per_scale: int | Sequence[int] = 50,
        start_size: int = 8,
        final_size: int = 128,
        upscaler_channels: int = 64,
        transfer_discriminator: bool = True,
        fade_epochs: float = 0.0,
        shuffle_blur: bool = False,
        optimizer_g: Callable[..., torch.optim.Optimizer] | None = None,
        optimizer_d: Callable[..., torch.optim.Optimizer] | None = None,
        grad_clip_g: float | None = None,
        grad_clip_d: float | None = None,
        ema_decay: float | None = None,
        ema_start: int = 0,
        nan_policy: str = "raise",
        nan_max_skips: int = 10,
        adv_start: int = 0,
    ) -> None:
        super().__init__(
            optimizer_g,
            optimizer_d,
            grad_clip_g,
            grad_clip_d,
            ema_decay,
            ema_start,
            nan_policy,
            adv_start=adv_start,
            nan_max_skips=nan_max_skips,
        )
        self.scales = _scales(int(start_size), int(final_size))
        #: every size trained during the run (for the start-up loss description)
        self.sizes = self.scales
        if isinstance(epochs_per_scale, int):
            epochs = (epochs_per_scale,) * len(self.scales)
        else:
            epochs = tuple(int(e) for e in epochs_per_scale)
        if len(epochs) != len(self.scales) or min(epochs) < 1:
            raise ValueError(
                f"epochs_per_scale must be an int >= 1 or one int >= 1 per scale {self.scales}, "
                f"got {epochs_per_scale}"
            )
        if fade_epochs < 0:
            raise ValueError(f"fade_epochs must be >= 0, got {fade_epochs}")
        self.epochs_per_scale = epochs
        self.generator_width = float(generator_width)
        self.upscaler_channels = int(upscaler_channels)
        self.transfer_discriminator = bool(transfer_discriminator)
        self.fade_epochs = float(fade_epochs)
        self.shuffle_blur = bool(shuffle_blur)
        self.loss = loss
        self._make_discriminator = discriminator
        self._fade_start = 0  # iteration at which the current fade began
        self._scale_start = 0  # iteration at which the current scale began (for ema_start)
        self._fade_iterations = 0  # its length in iterations
        self._build(self.scales[0])

    # ---- architecture ---------------------------------------------------------------------
    def _new_discriminator(self, size: int) -> nn.Module:
        d = self._make_discriminator(size=size)
        if self.transfer_discriminator and not isinstance(d, CasiaDiscriminator):
            raise TypeError(
                f"transfer_discriminator=True needs CasiaDiscriminator, the discriminator factory "
                f"built {type(d).__name__}; set model.transfer_discriminator=false"
            )
        return d

    def _build(self, size: int, fading: bool = False) -> None:
        """Fresh (untrained) networks at ``size``: the start, or before loading a checkpoint."""
        self.generator = CascadeGenerator(
            (size,),
            width=self.generator_width,
            detach_between_blocks=True,
            upscaler_channels=self.upscaler_channels,
            shuffle_blur=self.shuffle_blur,
        )
        self.discriminator = self._new_discriminator(size)
        self.fade = FadeIn.for_growth_into(size, self.generator_width) if fading else None
        self.setup_ema()

    @property
    def current_size(self) -> int:
        """Size of the block being trained now."""
        return int(self.generator.sizes[0])

    def scale_at_epoch(self, epoch: int) -> int:
        """The scale the schedule trains at in (0-based) ``epoch``."""
        for size, end in zip(self.scales, itertools.accumulate(self.epochs_per_scale)):
            if epoch < end:
                return size
        return self.scales[-1]

    @property
    def schedule_epochs(self) -> int:
        """Epochs until the final scale has had its ``epochs_per_scale``."""
        return sum(self.epochs_per_scale)

    def grow_to(self, size: int) -> None:
        """Grow (one doubling at a time) until the current block is ``block_<size>``; re-creates
        the optimisers when attached to a fitting trainer (Adam state starts afresh)."""
        if size not in self.scales:
            raise ValueError(f"size {size} is not one of this run's scales {self.scales}")
        if size < self.current_size:
            raise ValueError(f"cannot shrink from block_{self.current_size} to block_{size}")
        grew = False
        while self.current_size < size:
            self._grow_once()
            grew = True
        trainer = self._trainer
        if grew and trainer is not None and trainer.state.fn == "fit":
            trainer.strategy.setup_optimizers(trainer)

    @torch.no_grad()
    def _grow_once(self) -> None:
        n = self.current_size
        gen, transferred, fresh = grow_generator(self.generator)
        moved = sum(gen.blocks[f"block_{2 * n}"].state_dict()[k].numel() for k in transferred)
        total = sum(p.numel() for p in gen.parameters())
        if self.ema_decay is not None:
            # the EMA restarts from the grown generator and copies it for ema_start iterations
            # (ema_decay_now): averaging the new layers with their random init for the
            # ~1/(1 - decay) iterations after a growth gave a grey, contextless EMA output
            ema = copy.deepcopy(gen).eval().requires_grad_(False)
        self._scale_start = int(self.iteration)
        self.fade = (
            FadeIn.from_block(self.generator.blocks[f"block_{n}"]) if self.fade_epochs > 0 else None
        )
        if self.fade is not None:
            self._fade_start = int(self.iteration)
            self._fade_iterations = self._iterations_for(self.fade_epochs)
        self.generator = gen
        if self.ema_decay is not None:
            self.generator_ema = ema
        d = self._new_discriminator(2 * n).to(self.device)
        d_transferred: list[str] = []
        if self.transfer_discriminator:
            d_transferred, _ = transfer_weights(self.discriminator, d, discriminator_key_map(n))
        self.discriminator = d
        log.info(
            "grew block_%d -> block_%d: generator %d/%d tensors (%s of %s parameters) loaded "
            "from block_%d, %d new; discriminator %d tensors loaded; fade-in: %s",
            n,
            2 * n,
            len(transferred),
            len(transferred) + len(fresh),
            f"{moved:,}",
            f"{total:,}",
            n,
            len(fresh),
            len(d_transferred),
            f"{self._fade_iterations} iterations" if self.fade is not None else "off",
        )

    def _iterations_for(self, epochs: float) -> int:
        trainer = self._trainer
        per_epoch = getattr(trainer, "num_training_batches", None) if trainer else None
        if per_epoch is None or not math.isfinite(per_epoch):
            raise RuntimeError(
                "fade_epochs > 0 needs the number of training batches per epoch; it is unknown "
                "here (no trainer, or an iterable dataset without a length): set fade_epochs=0"
            )
        return max(1, round(epochs * per_epoch))

    def ema_decay_now(self) -> float:
        """``ema_start`` counts from the start of each scale, not of the run."""
        if int(self.iteration) - self._scale_start < self.ema_start:
            return 0.0
        return float(self.ema_decay)

    def fade_alpha(self) -> float:
        """Weight of the new output layers now (1.0 when not fading)."""
        if self.fade is None:
            return 1.0
        done = int(self.iteration) - self._fade_start
        return min(1.0, (done + 1) / max(1, self._fade_iterations))

    # ---- GANModule hooks ------------------------------------------------------------------
    def discriminator_parameters(self) -> Iterator[nn.Parameter]:
        return self.discriminator.parameters()

    def _run(self, generator: CascadeGenerator, pyramid: Mapping) -> dict[int, Tensor]:
        s = self.current_size
        if self.fade is None:
            return generator(pyramid)
        if s not in pyramid:
            raise KeyError(f"pyramid has no size {s} (has {sorted(pyramid)})")
        masked, mask = pyramid[s]["masked"], pyramid[s]["mask"].to(pyramid[s]["masked"].dtype)
        raw = self.fade(generator.blocks[f"block_{s}"], masked, self.fade_alpha())
        return {s: mask * masked + (1 - mask) * raw}

    def generate(self, batch: dict) -> dict[int, Tensor]:
        return self._run(self.generator, batch["pyramid"])

    def trained_sizes(self) -> tuple[int, ...]:
        return (self.current_size,)

    def discriminator_at(self, size: int) -> nn.Module:
        if size != self.current_size:
            raise KeyError(f"ProGAN has a discriminator for block_{self.current_size}, not {size}")
        return self.discriminator

    def training_step(self, batch: dict, batch_idx: int) -> None:
        alpha = self.fade_alpha() if self.fade is not None else None  # before `iteration` moves
        super().training_step(batch, batch_idx)
        self.log("progan/size", float(self.current_size), on_step=True, on_epoch=False)
        if alpha is not None:
            self.log("progan/fade_alpha", alpha, on_step=True, on_epoch=False)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        super().on_train_batch_end(outputs, batch, batch_idx)
        if self.fade is not None and self.fade_alpha() >= 1.0:
            self.fade = None  # fade complete: plain block_N from now on

    # ---- schedule -------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        trainer = self.trainer
        dm = getattr(trainer, "datamodule", None)
        have = getattr(dm, "pyramid_sizes", None)
        if have is not None and not set(self.scales) <= set(have):
            raise ValueError(
                f"ProGAN trains at sizes {list(self.scales)} but data.pyramid_sizes is "
                f"{list(have)}; set data.pyramid_sizes={list(self.scales)}"
            )
        remaining = [s for s in self.scales if s > self.current_size]
        if remaining and trainer.world_size > 1:
            raise NotImplementedError(
                "ProGAN replaces its networks when it grows, which multi-process strategies "
                f"(world size {trainer.world_size}) do not support; train on one device "
                "(trainer=default or trainer=gpu)"
            )
        max_epochs = trainer.max_epochs
        if (
            max_epochs is not None
            and max_epochs >= 0
            and max_epochs < self.schedule_epochs
            and not trainer.fast_dev_run
        ):
            last = self.scale_at_epoch(max_epochs - 1)
            log.warning(
                "trainer.max_epochs=%d < %d epochs of the growth schedule %s x %s: %s. "
                "Set trainer.max_epochs=%d.",
                max_epochs,
                self.schedule_epochs,
                list(self.scales),
                list(self.epochs_per_scale),
                f"training stops at block_{last}, not block_{self.scales[-1]}"
                if last != self.scales[-1]
                else f"block_{last} gets fewer than its {self.epochs_per_scale[-1]} epochs",
                self.schedule_epochs,
            )

    def on_train_epoch_start(self) -> None:
        target = self.scale_at_epoch(self.trainer.current_epoch)
        if target > self.current_size:
            self.grow_to(target)
        elif target < self.current_size:
            log.warning(
                "epoch %d is scheduled at size %d but the model is already block_%d (resumed "
                "with a different epochs_per_scale?); continuing at block_%d",
                self.trainer.current_epoch,
                target,
                self.current_size,
                self.current_size,
            )

    # ---- evaluation -----------------------------------------------------------------------
    @torch.no_grad()
    def hallucinate(self, batch: dict) -> dict[int, Tensor]:
        """``{current size: output}`` from the inference generator (EMA when enabled)."""
        return self._run(self.inference_generator(), batch["pyramid"])

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        s = self.current_size
        out = self.hallucinate(batch)[s]
        level = batch["pyramid"][s]
        ctx = context_l1(out, level["image"], level["mask"], level.get("valid"))
        n = ctx.shape[0]
        self.log("val/context_l1", ctx.mean(), prog_bar=True, batch_size=n)
        self.log("val/l1", (out - level["image"]).abs().mean(), batch_size=n)
        self.log("val/size", float(s), batch_size=n)

    def predict_step(self, batch: dict, batch_idx: int) -> Tensor:
        return self.hallucinate(batch)[self.current_size]

    # ---- checkpoints ----------------------------------------------------------------------
    def checkpoint_meta(self) -> CheckpointMeta:
        # a one-block cascade: facectx.Hallucinator loads it like any cascade checkpoint; the
        # growth state lets a run resume at the right scale
        return self.make_meta(
            "cascade",
            self.generator.init_args(),
            progan={
                "size": self.current_size,
                "scales": list(self.scales),
                "epochs_per_scale": list(self.epochs_per_scale),
                "final": self.current_size == self.scales[-1],
                "scale_start": self._scale_start,
                "fade": (
                    {"start": self._fade_start, "iterations": self._fade_iterations}
                    if self.fade is not None
                    else None
                ),
            },
        )

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Runs before the state dict is loaded: rebuild the architecture the checkpoint holds.
        try:
            progan = read_meta(checkpoint, "this checkpoint", "cascade").extra.get("progan")
        except CheckpointError:
            progan = None
        if not isinstance(progan, dict) or "size" not in progan:
            raise ValueError(
                "this checkpoint has no ProGAN metadata (checkpoint['facectx']['progan']); it was "
                "not written by model=progan, so it cannot resume a ProGAN run"
            )
        size = int(progan["size"])
        if size not in self.scales:
            raise ValueError(
                f"the checkpoint holds block_{size}, which is not one of this run's scales "
                f"{list(self.scales)} (model.start_size / model.final_size)"
            )
        # checkpoints from before scale_start was recorded restart the EMA warm-up here
        self._scale_start = int(
            progan.get("scale_start", int(checkpoint.get("state_dict", {}).get("iteration", 0)))
        )
        fade = progan.get("fade")
        self._build(size, fading=fade is not None)
        if fade is not None:
            self._fade_start, self._fade_iterations = int(fade["start"]), int(fade["iterations"])
