"""LightningModule for SwapInpaint (Li et al. 2022): content inference C, then the generative
module G guided by a frozen identity encoder I.

Training schedules (paper §III-D, "two training strategies"):

* ``schedule="separate"`` (strategy 2, the paper's choice, default): the **content** stage trains
  C and its discriminator D_C for ``content_iterations`` iterations; then the **generator**
  stage trains G (attribute encoder + AAD generator) and its discriminator D with C frozen in
  eval mode (deterministic latent mean) and I frozen. Both stages run in one ``fit`` (the switch
  happens at an iteration, mid-epoch if need be), or the content stage is skipped by loading a
  trained C from ``content_checkpoint``.
* ``schedule="joint"`` (strategy 1): every iteration trains C (with D_C) and then G (with D) on
  C's sampled output, detached: each module is trained by its own losses only.

Each part's step is ``GANModule.adversarial_update``: generator forward, discriminator step on
real and (detached) fake minibatches, generator step against the updated discriminator. The
module's ``iteration`` counter counts iterations (one per batch, whatever the stage).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facectx.checkpoint import CheckpointError, CheckpointMeta, load_checkpoint, read_meta
from facectx.losses.swapinpaint import SwapInpaintLoss
from facectx.modules.gan_base import GANModule
from facectx.zoo.swapinpaint import ContentInference, SwapGenerator, SwapInpaint

log = logging.getLogger(__name__)

SCHEDULES = ("separate", "joint")
#: what G's discriminator judges (``SwapInpaintGAN(discriminator_input=...)``)
DISCRIMINATOR_INPUTS = ("swapped", "composite")
STAGES = ("content", "generator", "joint")


def _hole_l1(pred: Tensor, target: Tensor, hole: Tensor) -> Tensor:
    """Per-image mean |pred − target| over the pixels where ``hole`` is 1."""
    err = (pred - target).abs().mean(dim=1, keepdim=True) * hole
    return err.sum(dim=(1, 2, 3)) / hole.sum(dim=(1, 2, 3)).clamp_min(1.0)


class SwapInpaintGAN(GANModule):
    """SwapInpaint's C, G, their discriminators and the frozen identity encoder.

    Args:
        content: the content inference VAE C (``facectx.zoo.swapinpaint.ContentInference``).
        content_discriminator: C's discriminator (sees X̂ against real images).
        swap: the generative module G, or a factory ``id_dim -> SwapGenerator`` (Hydra partial)
            called with the identity network's feature size.
        discriminator: G's discriminator (sees Y_sp against real images, or see
            ``discriminator_input``).
        identity: the identity encoder I (``facectx.pretrained.load``); canonical [-1, 1]
            faces in, (B, D) out. The loss holds it frozen; the module conditions G with it.
        loss: the ``SwapInpaintLoss`` holding every weight.
        size: image side the model works at (checked against every batch).
        width: channel multiplier the config passes to the nested modules (recorded only).
        schedule: ``separate`` (strategy 2: content stage, then generator stage) or ``joint``.
        content_iterations: iterations of the content stage under ``separate``.
        content_checkpoint: a SwapInpaint checkpoint whose C (EMA weights when present) is loaded
            at construction; the content stage is then skipped. None = train C here.
        max_iterations: stop the run after this many iterations (both stages together); None =
            the trainer's limits decide (``trainer.max_steps`` counts every optimiser step, two
            or four per iteration, so it is not used for this).
        cpu_threads: torch intra-op threads while fitting on a CPU (restored afterwards); None =
            torch's default. The CPU quickstart uses 1: its small convolutions gain nothing from
            more threads, and on a busy machine extra threads make each step several times slower.
        optimizer_g: partial optimiser, used for C and for G (one instance each).
        optimizer_d: partial optimiser, used for D_C and for D.
        grad_clip_g / grad_clip_d / ema_decay / ema_start / nan_policy: see ``GANModule``; the EMA
            tracks C and G together; at the switch to the generator stage C takes its EMA
            weights (when enabled), so the frozen C that trains G is the one inference uses.
        ema_start_generator: under ``separate``, G's EMA starts this many iterations after the
            switch to the generator stage (``ema_start`` then only governs C). None = one
            ``ema_start`` for the whole run. Why: with a long content stage an ``ema_start``
            below the switch leaves G's untrained initial weights in its average (0.999^n of
            them after n G iterations: 22 % after 1,500).
        discriminator_input: what G's discriminator judges. ``swapped`` (the paper's): Y_sp,
            the whole generated face, against real faces. ``composite`` (not in the paper): the
            composite Y with the hole mask stacked as a 4th channel, against the real face with
            the same mask (``discriminator.in_channels=4``). Outside the hole Y is the real
            face, so the critic's only cue is the painted pixels, as with the patch
            discriminator of ``lfw-128``.
    """

    def __init__(
        self,
        content: ContentInference,
        content_discriminator: nn.Module,
        swap: SwapGenerator | Callable[..., SwapGenerator],
        discriminator: nn.Module,
        identity: nn.Module | None,
        loss: SwapInpaintLoss,
        size: int = 256,
        width: float | None = None,
        schedule: str = "separate",
        content_iterations: int = 100_000,
        content_checkpoint: str | os.PathLike | None = None,
        max_iterations: int | None = None,
        cpu_threads: int | None = None,
        optimizer_g: Callable[..., torch.optim.Optimizer] | None = None,
        optimizer_d: Callable[..., torch.optim.Optimizer] | None = None,
        grad_clip_g: float | None = None,
        grad_clip_d: float | None = None,
        ema_decay: float | None = None,
        ema_start: int = 0,
        ema_start_generator: int | None = None,
        nan_policy: str = "raise",
        nan_max_skips: int = 10,
        discriminator_input: str = "swapped",
    ) -> None:
        super().__init__(
            optimizer_g,
            optimizer_d,
            grad_clip_g,
            grad_clip_d,
            ema_decay,
            ema_start,
            nan_policy,
            nan_max_skips=nan_max_skips,
        )
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        if discriminator_input not in DISCRIMINATOR_INPUTS:
            raise ValueError(
                f"discriminator_input must be one of {DISCRIMINATOR_INPUTS}, got "
                f"{discriminator_input!r}"
            )
        wants = 4 if discriminator_input == "composite" else 3
        has = getattr(discriminator, "in_channels", 3)
        if has != wants:
            raise ValueError(
                f"discriminator_input={discriminator_input} needs a {wants}-channel "
                f"discriminator, got {has}: set model.discriminator.in_channels={wants}"
            )
        self.discriminator_input = discriminator_input
        if identity is None:
            raise ValueError(
                "SwapInpaint needs an identity encoder I: set identity=dlib-resnet (offline, "
                "128-D) or identity=arcface-r100 (the paper's, weights by hand; see "
                "docs/pretrained.md)"
            )
        #: what checkpoints record of I, to load the same network at inference
        self.identity_name = getattr(identity, "name", type(identity).__name__)
        self.identity_dim = int(getattr(identity, "feature_dim", 0)) or None
        if self.identity_dim is None:
            raise ValueError(
                f"identity network {self.identity_name} has no feature_dim; use a network from "
                "facectx.pretrained.load"
            )
        if not isinstance(swap, nn.Module):
            swap = swap(id_dim=self.identity_dim)
        if swap.id_dim != self.identity_dim:
            raise ValueError(
                f"generator id_dim {swap.id_dim} != identity feature size "
                f"{self.identity_dim} ({self.identity_name})"
            )
        self.size = int(size)
        if content.size != self.size or swap.size != self.size:
            raise ValueError(
                f"model.size={self.size} but content.size={content.size}, swap.size={swap.size}"
            )
        self.width = width
        self.generator = SwapInpaint(content, swap)
        self.content_discriminator = content_discriminator
        self.discriminator = discriminator
        self.loss = loss
        loss.use_identity(identity)  # the loss holds I frozen; G's conditioning uses it too
        self.schedule = schedule
        self.content_checkpoint = str(content_checkpoint) if content_checkpoint else None
        self.content_iterations = 0 if self.content_checkpoint else int(content_iterations)
        self.max_iterations = None if max_iterations is None else int(max_iterations)
        if ema_start_generator is not None and int(ema_start_generator) < 0:
            raise ValueError(f"ema_start_generator must be >= 0, got {ema_start_generator}")
        self.ema_start_generator = None if ema_start_generator is None else int(ema_start_generator)
        self.cpu_threads = None if cpu_threads is None else int(cpu_threads)
        self._threads_before: int | None = None
        # 1 once C has been frozen for the generator stage (saved, so resume knows)
        self.register_buffer("content_frozen", torch.zeros((), dtype=torch.bool))
        if self.content_checkpoint:
            self._load_content(self.content_checkpoint)
        self.setup_ema()

    # ---- parts and stages -----------------------------------------------------------------
    @property
    def content(self) -> ContentInference:
        return self.generator.content

    @property
    def swap(self) -> SwapGenerator:
        return self.generator.swap

    @property
    def identity(self) -> nn.Module:
        """The identity encoder I, held frozen by the loss (outside parameters and state dict;
        gradients still flow to its input for L_id)."""
        return self.loss.identity

    @property
    def generator_module(self) -> nn.Module:
        return self.generator

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        return self.generator.parameters()

    def discriminator_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.content_discriminator.parameters()
        yield from self.discriminator.parameters()

    @property
    def stage(self) -> str:
        """``content``, ``generator`` or ``joint``: what the next training iteration trains."""
        if self.schedule == "joint":
            return "joint"
        return "content" if int(self.iteration) < self.content_iterations else "generator"

    def ema_decay_now(self) -> float:
        """As ``GANModule``'s, but in the generator stage G's EMA may count from the switch.

        Only the trained part matters in each stage: in the content stage G is untouched, and in
        the generator stage C already equals its EMA weights, so one decay serves both."""
        # called after the step's iteration count was advanced: the step trained iteration - 1
        trained = int(self.iteration) - 1
        if (
            self.ema_start_generator is not None
            and self.schedule == "separate"
            and trained >= self.content_iterations
        ):
            start = self.content_iterations + self.ema_start_generator
            return 0.0 if int(self.iteration) < start else float(self.ema_decay)
        return super().ema_decay_now()

    def _load_content(self, path: str) -> None:
        ckpt = load_checkpoint(path)
        try:
            meta = read_meta(ckpt, path, "swapinpaint")
        except CheckpointError as e:
            raise CheckpointError(f"content_checkpoint: {e}") from None
        want = self.content.config
        have = meta.init_args["content"]
        if {k: have.get(k) for k in want} != want:
            raise CheckpointError(
                f"content_checkpoint {path} holds C with {have}, this model's C is {want}; "
                "set model.size / model.width to match"
            )
        prefix = "generator_ema.content." if meta.ema else "generator.content."
        state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
        try:
            self.content.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"{path}: content weights do not match: {e}") from e
        log.info("loaded C from %s (%s weights)", path, "EMA" if meta.ema else "raw")

    def _freeze_content(self) -> None:
        """Generator stage: C in eval mode with no gradients (and its EMA weights, if any)."""
        if not bool(self.content_frozen):
            if self.ema_decay is not None:
                with torch.no_grad():
                    for p, q in zip(
                        self.content.parameters(), self.generator_ema.content.parameters()
                    ):
                        p.copy_(q)
            self.content_frozen.fill_(True)
            log.info("iteration %d: C frozen; training G", int(self.iteration))
        self.content.requires_grad_(False)
        self.content.eval()

    def train(self, mode: bool = True) -> SwapInpaintGAN:
        super().train(mode)
        if bool(self.content_frozen):
            self.content.eval()
        if self.ema_decay is not None:
            self.generator_ema.eval()
        return self

    # ---- optimisation ---------------------------------------------------------------------
    def configure_optimizers(self):
        return [
            self._optimizer_g(list(self.content.parameters())),
            self._optimizer_d(list(self.content_discriminator.parameters())),
            self._optimizer_g(list(self.swap.parameters())),
            self._optimizer_d(list(self.discriminator.parameters())),
        ]

    def _check_batch(self, batch: dict) -> None:
        missing = [k for k in ("image", "mask", "masked", "reference", "same") if k not in batch]
        if missing:
            raise KeyError(
                f"SwapInpaint batches need (image, reference) pairs; missing {missing}. Use "
                "data=pairs_sample or data=pairs (facectx.data.pairs.PairDataModule)."
            )
        s = batch["image"].shape[-1]
        if s != self.size:
            raise ValueError(
                f"the data holds {s} px faces but model.size={self.size}; prepare the photos "
                f"with size={self.size} or set model.size={s}"
            )

    def _content_part(self, batch: dict, opt_c, opt_dc, logs: dict) -> Tensor | None:
        """C and D_C's update; X̂ (detached) for the swap part, or None when skipped."""
        loss = self.loss
        real = batch["image"]

        def d_loss(out):
            d = self.content_discriminator
            return loss.content_discriminator_loss(d(real), d(out.image.detach()))

        def g_loss(out):
            d_fake = (
                self.content_discriminator(out.image)
                if loss.uses_discriminator("content")
                else None
            )
            return loss.content_loss(out.scales, real, out.mu, out.std, d_fake, batch.get("valid"))

        stepped, out = self.adversarial_update(
            opt_c,
            opt_dc,
            lambda: self.content(batch["masked"], batch["mask"]),
            d_loss,
            g_loss,
            loss.uses_discriminator("content"),
            logs,
            part="content",
        )
        return out.image.detach() if stepped else None

    def _swap_part(self, batch: dict, x_hat: Tensor, opt_g, opt_d, logs: dict) -> bool:
        """G and D's update on X̂ with C frozen; False when skipped."""
        loss = self.loss
        real, mask = batch["image"], batch["mask"]
        with torch.no_grad():
            z_id = self.identity(batch["reference"])

        def generate():
            out = self.swap(x_hat, z_id)
            return out, self.swap.compose(out.swapped, x_hat, mask)

        composite = self.discriminator_input == "composite"

        def seen(image: Tensor) -> Tensor:
            """What D is shown of an image: itself, or with the hole stacked on."""
            return torch.cat([image, 1.0 - mask], 1) if composite else image

        def judged(outputs) -> Tensor:
            """The fake D judges: Y_sp, or the composite Y."""
            out, y = outputs
            return seen(y if composite else out.swapped)

        real_in = seen(real)

        def d_loss(outputs):
            fake = judged(outputs).detach()
            return loss.swap_discriminator_loss(
                self.discriminator(real_in), self.discriminator(fake)
            )

        def g_loss(outputs):
            out, y = outputs
            d_fake = (
                self.discriminator(judged(outputs)) if loss.uses_discriminator("swap") else None
            )
            return loss.swap_loss(
                out.swapped,
                x_hat,
                mask,
                batch["same"],
                id_reference=z_id,
                att_content=out.attributes,
                d_fake=d_fake,
                valid=batch.get("valid"),
                output=y,
                attributes=self.swap.attributes,
                real=real,
                iteration=int(self.iteration),
            )

        stepped, _ = self.adversarial_update(
            opt_g,
            opt_d,
            generate,
            d_loss,
            g_loss,
            loss.uses_discriminator("swap"),
            logs,
            part="generator",
        )
        return stepped

    def training_step(self, batch: dict, batch_idx: int) -> None:
        self._check_batch(batch)
        stage = self.stage
        if stage == "generator":
            self._freeze_content()
        opt_c, opt_dc, opt_g, opt_d = self.optimizers()
        logs: dict[str, Tensor] = {}
        x_hat = None
        if stage in ("content", "joint"):
            x_hat = self._content_part(batch, opt_c, opt_dc, logs)
            if x_hat is None:
                return
        if stage in ("generator", "joint"):
            if x_hat is None:
                with torch.no_grad():
                    x_hat = self.content(batch["masked"], batch["mask"]).image
            if not self._swap_part(batch, x_hat, opt_g, opt_d, logs):
                return
        self.end_iteration(batch, logs, stage=float(STAGES.index(stage)))
        if self.max_iterations is not None and int(self.iteration) >= self.max_iterations:
            self.trainer.should_stop = True

    def on_fit_start(self) -> None:
        if self.cpu_threads is not None and self.device.type == "cpu":
            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(self.cpu_threads)
        log.info(
            "SwapInpaint %d px, schedule=%s, stage at start: %s (content stage: %d iterations), "
            "identity: %s (%d-D), G's discriminator judges %s; loss weights:\n%s",
            self.size,
            self.schedule,
            self.stage,
            self.content_iterations,
            self.identity_name,
            self.identity_dim,
            "Y and the hole" if self.discriminator_input == "composite" else "Y_sp",
            self.loss.describe(),
        )

    def on_fit_end(self) -> None:
        if self._threads_before is not None:
            torch.set_num_threads(self._threads_before)
            self._threads_before = None

    # ---- inference and validation ---------------------------------------------------------
    @torch.no_grad()
    def inpaint_batch(self, batch: dict) -> dict[str, Tensor]:
        """``{"content": X̂, "swapped": Y_sp, "output": Y}`` from the inference networks (EMA
        when enabled), in eval mode."""
        net = self.inference_generator()
        was_training = net.training
        net.eval()
        try:
            z_id = self.identity(batch["reference"])
            return net(batch["masked"], batch["mask"], z_id)
        finally:
            net.train(was_training)
            if bool(self.content_frozen):
                self.content.eval()

    def generate(self, batch: dict) -> dict[str, Tensor]:
        return self.inpaint_batch(batch)

    grid_keys = ("masked", "mask", "reference", "image")

    def grid_columns(self, batch: dict) -> list[Tensor]:
        """Masked | X̂ | reference | Y_sp | Y | ground truth."""
        out = self.inpaint_batch(batch)
        return [
            batch["masked"],
            out["content"],
            batch["reference"],
            out["swapped"],
            out["output"],
            batch["image"],
        ]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._check_batch(batch)
        out = self.inpaint_batch(batch)
        hole = 1.0 - batch["mask"]
        if "valid" in batch:
            hole = hole * batch["valid"]
        n = batch["image"].shape[0]
        self.log(
            "val/content_l1", _hole_l1(out["content"], batch["image"], hole).mean(), batch_size=n
        )
        self.log(
            "val/hole_l1",
            _hole_l1(out["output"], batch["image"], hole).mean(),
            prog_bar=True,
            batch_size=n,
        )
        with torch.no_grad():
            cos = F.cosine_similarity(
                self.identity(out["output"]), self.identity(batch["reference"]), dim=1
            )
        self.log("val/id_cos", cos.mean(), batch_size=n)

    def predict_step(self, batch: dict, batch_idx: int) -> Tensor:
        return self.inpaint_batch(batch)["output"]

    # ---- checkpoints ----------------------------------------------------------------------
    def checkpoint_meta(self) -> CheckpointMeta:
        # what facectx.inference.Inpainter needs to rebuild C and G without Lightning or Hydra
        return self.make_meta(
            "swapinpaint",
            self.generator.config,
            identity={"name": self.identity_name, "feature_dim": self.identity_dim},
            schedule=self.schedule,
            stage=self.stage,
            content_iterations=self.content_iterations,
        )


__all__ = ["DISCRIMINATOR_INPUTS", "SCHEDULES", "SwapInpaintGAN"]
