"""LightningModule for the cascaded multi-scale GAN (paper §3): all blocks, every iteration."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from facectx.losses.cascade import CascadeLoss
from facectx.modules.gan_base import GANModule


def context_l1(pred: Tensor, target: Tensor, mask: Tensor, valid: Tensor | None = None) -> Tensor:
    """Per-image mean |pred - target| over context pixels (mask = 0) that are valid."""
    w = 1.0 - mask
    if valid is not None:
        w = w * valid
    err = (pred - target).abs().mean(dim=1, keepdim=True) * w
    return err.sum(dim=(1, 2, 3)) / w.sum(dim=(1, 2, 3)).clamp_min(1.0)


class CascadeGAN(GANModule):
    """Cascade of generator blocks with one discriminator per block.

    Args:
        generator: a ``facectx.zoo.CascadeGenerator`` (its ``sizes`` fix the blocks).
        discriminator: factory ``size -> nn.Module`` (Hydra partial), one D per block size.
        loss: the ``CascadeLoss`` holding the weights and frozen loss networks.
        optimizer_g / optimizer_d / grad_clip_* / ema_* / nan_policy: see ``GANModule``.
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
    ) -> None:
        super().__init__(
            optimizer_g, optimizer_d, grad_clip_g, grad_clip_d, ema_decay, ema_start, nan_policy
        )
        self.generator = generator
        self.sizes = tuple(int(s) for s in generator.sizes)
        self.discriminators = nn.ModuleDict({str(s): discriminator(size=s) for s in self.sizes})
        self.loss = loss
        self.setup_ema()

    # ---- GANModule hooks ------------------------------------------------------------------
    def discriminator_parameters(self) -> Iterator[nn.Parameter]:
        return self.discriminators.parameters()

    def generate(self, batch: dict) -> dict[int, Tensor]:
        return self.generator(batch["pyramid"])

    def _disc(self, images: dict[int, Tensor]) -> dict[int, Tensor]:
        return {s: self.discriminators[str(s)](x) for s, x in images.items()}

    def discriminator_loss(self, batch: dict, outputs: dict[int, Tensor]):
        real = {s: batch["pyramid"][s]["image"] for s in self.sizes}
        # separate real and fake minibatches: batch-norm statistics never mix the two
        return self.loss.discriminator_loss(self._disc(real), self._disc(outputs))

    def generator_loss(self, batch: dict, outputs: dict[int, Tensor]):
        real = {s: batch["pyramid"][s]["image"] for s in self.sizes}
        d_fake = self._disc(outputs) if self.loss.uses_adversarial else None
        pyr = batch["pyramid"]
        valid = {s: pyr[s]["valid"] for s in self.sizes if "valid" in pyr[s]} or None
        return self.loss.generator_loss(outputs, real, d_fake, valid)

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

    # ---- checkpoints ----------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # What facectx.Hallucinator needs to rebuild the generator without Lightning or Hydra.
        checkpoint["facectx"] = {
            "kind": "cascade",
            "version": __import__("facectx").__version__,
            "generator": self.generator.init_args(),
            "ema": self.ema_decay is not None,
            "frame": self._training_frame(),
        }

    def _training_frame(self) -> dict | None:
        """The canonical frame of the training data (from its meta.json), so inference on raw
        photos aligns faces exactly as the model saw them."""
        import json
        from pathlib import Path

        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if dm is None or not hasattr(dm, "resolve_root"):
            return None
        meta = Path(dm.resolve_root()) / "meta.json"
        if not meta.exists():
            return None
        return json.loads(meta.read_text()).get("frame")
