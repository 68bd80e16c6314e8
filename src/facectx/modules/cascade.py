"""LightningModule for the cascaded multi-scale GAN (paper §3): all blocks, every iteration."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from facectx.checkpoint import CheckpointMeta
from facectx.losses.cascade import CascadeLoss
from facectx.modules.gan_base import GANModule


def context_l1(pred: Tensor, target: Tensor, mask: Tensor, valid: Tensor | None = None) -> Tensor:
    """Per-image mean |pred - target| over context pixels (mask = 0) that are valid."""
    w = 1.0 - mask
    if valid is not None:
        w = w * valid
    err = (pred - target).abs().mean(dim=1, keepdim=True) * w
    return err.sum(dim=(1, 2, 3)) / w.sum(dim=(1, 2, 3)).clamp_min(1.0)


class PyramidGAN(GANModule):
    """The adversarial step shared by the cascade and its progressive variant: real and fake
    discriminator inputs per block size, the conditional mask channel, the context weighting
    and the loss calls. Subclasses say which sizes train now and which D judges each size."""

    loss: CascadeLoss

    def trained_sizes(self) -> tuple[int, ...]:
        """Block sizes whose outputs the generator produces (and the losses see) now."""
        raise NotImplementedError

    def discriminator_at(self, size: int) -> nn.Module:
        """The discriminator for block ``size``."""
        raise NotImplementedError

    @property
    def uses_discriminator(self) -> bool:
        return super().uses_discriminator and bool(self._d_sizes())

    def _d_sizes(self) -> tuple[int, ...]:
        return tuple(s for s in self.trained_sizes() if self.loss.uses_discriminator_at(s))

    def _disc(self, images: dict[int, Tensor], batch: dict) -> dict[int, Tensor | list]:
        """D on each adversarial block's image; a conditional D also gets the face mask."""
        out = {}
        for s, x in images.items():
            d = self.discriminator_at(s)
            if getattr(d, "conditional", False):
                x = torch.cat([x, batch["pyramid"][s]["mask"].to(x.dtype)], dim=1)
            out[s] = d(x)
        return out

    def _d_inputs(self, batch: dict, outputs: dict[int, Tensor]) -> tuple[dict, dict]:
        """Real and fake D inputs. Pixels outside the source photo (valid = 0) carry no
        information in the real image, so the fake gets the real's pixels there: D cannot tell
        the two apart by the photo's border."""
        pyr = batch["pyramid"]
        real, fake = {}, {}
        for s in self._d_sizes():
            real[s] = pyr[s]["image"]
            v = pyr[s].get("valid")
            fake[s] = outputs[s] if v is None else v * outputs[s] + (1 - v) * real[s]
        return real, fake

    def _context(self, batch: dict) -> dict[int, Tensor]:
        return {s: 1 - batch["pyramid"][s]["mask"] for s in self.trained_sizes()}

    def discriminator_loss(self, batch: dict, outputs: dict[int, Tensor]):
        real, fake = self._d_inputs(batch, outputs)
        # separate real and fake minibatches: batch-norm statistics never mix the two
        return self.loss.discriminator_loss(
            self._disc(real, batch), self._disc(fake, batch), self._context(batch)
        )

    def generator_loss(self, batch: dict, outputs: dict[int, Tensor]):
        pyr = batch["pyramid"]
        sizes = self.trained_sizes()
        real = {s: pyr[s]["image"] for s in sizes}
        d_fake = d_real = None
        adversarial = self.uses_discriminator
        if adversarial:
            d_in_real, d_in_fake = self._d_inputs(batch, outputs)
            d_fake = self._disc(d_in_fake, batch)
            if self.loss.weights["fm"] > 0:
                with torch.no_grad():
                    d_real = self._disc(d_in_real, batch)
        valid = {s: pyr[s]["valid"] for s in sizes if "valid" in pyr[s]} or None
        return self.loss.generator_loss(
            outputs,
            real,
            d_fake,
            valid,
            d_real,
            self._context(batch),
            adversarial,
            int(self.iteration),
        )

    def hallucinate(self, batch: dict) -> dict[int, Tensor]:
        """``{size: output}`` of the blocks the inference generator (EMA when enabled) runs now."""
        raise NotImplementedError

    grid_keys = ("pyramid",)

    def grid_columns(self, batch: dict) -> list[Tensor]:
        """Masked input | every block's output | ground truth, at the largest block's level."""
        outs = self.hallucinate(batch)
        top = max(outs)
        pyr = batch["pyramid"][top]
        return [pyr["masked"], *[outs[s] for s in sorted(outs)], pyr["image"]]

    def checkpoint_meta(self) -> CheckpointMeta:
        # what facectx.Hallucinator needs to rebuild the generator without Lightning or Hydra
        return self.make_meta("cascade", self.generator.init_args())


class CascadeGAN(PyramidGAN):
    """Cascade of generator blocks with one discriminator per block.

    Args:
        generator: a ``facectx.zoo.CascadeGenerator`` (its ``sizes`` fix the blocks).
        discriminator: factory ``size -> nn.Module`` (Hydra partial), one D per block size.
        loss: the ``CascadeLoss`` holding the weights and frozen loss networks.
        optimizer_g / optimizer_d / grad_clip_* / ema_* / nan_policy / adv_start: see
            ``GANModule``.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: Callable[..., nn.Module],
        loss: CascadeLoss,
        optimizer_g: Callable[..., torch.optim.Optimizer] | None = None,
        optimizer_d: Callable[..., torch.optim.Optimizer] | None = None,
        grad_clip_g: float | None = None,
        grad_clip_d: float | None = None,
        ema_decay: float | None = None,
        ema_start: int = 0,
        nan_policy: str = "raise",
        adv_start: int = 0,
        nan_max_skips: int = 10,
    ) -> None:
        super().__init__(
            optimizer_g,
            optimizer_d,
            grad_clip_g,
            grad_clip_d,
            ema_decay,
            ema_start,
            nan_policy,
            adv_start,
            nan_max_skips,
        )
        self.generator = generator
        self.sizes = tuple(int(s) for s in generator.sizes)
        # one D per block with an adversarial term (loss.adv_min_size); without any adversarial
        # term every block keeps its (unused) D, so such checkpoints keep their layout
        d_sizes = [s for s in self.sizes if loss.uses_discriminator_at(s)] or self.sizes
        self.discriminators = nn.ModuleDict({str(s): discriminator(size=s) for s in d_sizes})
        self.loss = loss
        self.setup_ema()

    # ---- GANModule / PyramidGAN hooks ------------------------------------------------------
    def discriminator_parameters(self) -> Iterator[nn.Parameter]:
        return self.discriminators.parameters()

    def generate(self, batch: dict) -> dict[int, Tensor]:
        return self.generator(batch["pyramid"])

    def trained_sizes(self) -> tuple[int, ...]:
        return self.sizes

    def discriminator_at(self, size: int) -> nn.Module:
        return self.discriminators[str(size)]

    # ---- evaluation -----------------------------------------------------------------------
    @torch.no_grad()
    def hallucinate(self, batch: dict) -> dict[int, Tensor]:
        """All block outputs from the inference generator (EMA when enabled)."""
        return self.inference_generator()(batch["pyramid"])

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        out = self.hallucinate(batch)
        top = self.sizes[-1]
        pyr = batch["pyramid"][top]
        ctx = context_l1(out[top], pyr["image"], pyr["mask"], pyr.get("valid"))
        n = ctx.shape[0]
        self.log("val/context_l1", ctx.mean(), prog_bar=True, batch_size=n, sync_dist=True)
        l1 = (out[top] - pyr["image"]).abs().mean()
        self.log("val/l1", l1, batch_size=n, sync_dist=True)

    def predict_step(self, batch: dict, batch_idx: int) -> Tensor:
        return self.hallucinate(batch)[self.sizes[-1]]
