"""One manual-optimisation GAN training step, shared by every facectx GAN.

Lightning advances ``global_step`` on every ``optimizer.step()``, so with separate G and D
optimisers it counts two per iteration. The module therefore keeps its own ``iteration``
counter (a buffer, saved in checkpoints) and logs against it.

Subclasses implement:

* ``generate(batch) -> outputs``: the generator forward (with grad);
* ``discriminator_loss(batch, outputs) -> (loss, logs)``: outputs are detached by the base;
* ``generator_loss(batch, outputs) -> (loss, logs)``;
* ``generator_parameters()`` / ``discriminator_parameters()``;
* ``grid_keys`` / ``grid_columns(batch)``: what ``facectx.callbacks.ImageGrid`` draws;
* ``checkpoint_meta()``: the record inference rebuilds the model from.

A model with several generator/discriminator pairs overrides ``training_step`` and calls
``adversarial_update`` once per pair, then ``end_iteration``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from facectx.checkpoint import CheckpointMeta


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the message says which and at which iteration."""


class NonFiniteModelError(NonFiniteLossError):
    """The model's parameters hold NaN/Inf: no checkpoint of it may be written."""


def non_finite_tensors(state_dict: dict) -> list[str]:
    """Names of the floating-point tensors of ``state_dict`` that hold NaN or Inf."""
    return [
        k
        for k, v in state_dict.items()
        if isinstance(v, Tensor) and v.is_floating_point() and not torch.isfinite(v).all()
    ]


def _holds_non_finite(value: Any) -> bool:
    """Whether a batch entry (a tensor, or a dict/list of them, e.g. the pyramid) holds NaN/Inf."""
    if isinstance(value, Tensor):
        return value.is_floating_point() and not bool(torch.isfinite(value).all())
    if isinstance(value, dict):
        return any(_holds_non_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_non_finite(v) for v in value)
    return False


# what to do when the parameters themselves went non-finite
_LOWER_LR = (
    "lower the learning rates or enable gradient clipping (model.grad_clip_g / grad_clip_d), "
    "and resume from the last checkpoint."
)


def _hold(n: int, what: str) -> str:
    """ "1 buffer holds" / "3 buffers hold"."""
    return f"{n} {what} holds" if n == 1 else f"{n} {what}s hold"


def _detach(outputs: Any) -> Any:
    if isinstance(outputs, Tensor):
        return outputs.detach()
    if isinstance(outputs, dict):
        return {k: _detach(v) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(_detach(v) for v in outputs)
    return outputs


class GANModule(pl.LightningModule):
    """Base class for adversarial training with manual optimisation.

    Args:
        optimizer_g: partial optimiser for the generator (Hydra ``_partial_: true``).
        optimizer_d: partial optimiser for the discriminator(s).
        grad_clip_g: max gradient norm for the generator, None = no clipping.
        grad_clip_d: max gradient norm for the discriminator, None = no clipping.
        ema_decay: keep an exponential moving average of the generator (e.g. 0.999); None = off.
        ema_start: iteration after which the EMA starts tracking (copies weights before that).
        nan_policy: "raise" stops with a clear error; "skip" drops the whole iteration (its
            optimiser steps and the networks' buffer updates, e.g. BatchNorm statistics) and
            counts it in ``skipped_iterations``.
        nan_max_skips: under "skip", give up (``NonFiniteLossError``) after this many
            consecutive skipped batches: a model whose parameters diverged never recovers.
        adv_start: iteration from which the discriminator runs (0 = from the start). Before
            it the generator trains on its non-adversarial terms only, a warm start that
            keeps an untrained discriminator from steering a generator that draws nothing yet.
    """

    def __init__(
        self,
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
        super().__init__()
        self.automatic_optimization = False
        if adv_start < 0:
            raise ValueError(f"adv_start must be >= 0, got {adv_start}")
        self.adv_start = int(adv_start)
        if nan_policy not in ("raise", "skip"):
            raise ValueError(f"nan_policy must be 'raise' or 'skip', got {nan_policy!r}")
        self._optimizer_g = optimizer_g or (lambda p: torch.optim.Adam(p, lr=1e-4))
        self._optimizer_d = optimizer_d or (lambda p: torch.optim.Adam(p, lr=2e-4))
        self.grad_clip_g = grad_clip_g
        self.grad_clip_d = grad_clip_d
        self.ema_decay = ema_decay
        self.ema_start = ema_start
        self.nan_policy = nan_policy
        if nan_max_skips < 1:
            raise ValueError(f"nan_max_skips must be >= 1, got {nan_max_skips}")
        self.nan_max_skips = int(nan_max_skips)
        self._consecutive_skips = 0
        self._skipped_batch = False
        self._batch: Any = None  # the batch in flight, for the NaN message
        self._buffer_snapshot: list[tuple[list[str], list[int], Tensor]] = []
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))
        self.register_buffer("skipped_iterations", torch.zeros((), dtype=torch.long))

    # ---- hooks for subclasses -------------------------------------------------------------
    def generate(self, batch: dict) -> Any:
        raise NotImplementedError

    def discriminator_loss(self, batch: dict, outputs: Any) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def generator_loss(self, batch: dict, outputs: Any) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        return self.generator_module.parameters()

    def discriminator_parameters(self) -> Iterator[nn.Parameter]:
        raise NotImplementedError

    @property
    def generator_module(self) -> nn.Module:
        """The module the EMA tracks and G's optimiser trains: ``self.generator`` by default."""
        return self.generator

    @property
    def uses_discriminator(self) -> bool:
        """False when the adversarial term is off, or before ``adv_start``: D is then neither
        run nor stepped."""
        loss = getattr(self, "loss", None)
        if int(self.iteration) < self.adv_start:
            return False
        return bool(getattr(loss, "uses_adversarial", True))

    # ---- sample grids (facectx.callbacks.ImageGrid) ------------------------------------------
    #: batch entries ``ImageGrid`` keeps (first faces of the first validation batch) for grids
    grid_keys: tuple[str, ...] = ()

    def grid_columns(self, batch: dict) -> list[Tensor]:
        """The sample grid's columns, left to right, for a batch of ``grid_keys``: (B, 3, h, w)
        images in [-1, 1] from the inference networks (each is upsampled to the largest)."""
        raise NotImplementedError

    # ---- EMA ------------------------------------------------------------------------------
    def setup_ema(self) -> None:
        """Call at the end of the subclass constructor, after the generator exists."""
        if self.ema_decay is not None:
            self.generator_ema = copy.deepcopy(self.generator_module).eval().requires_grad_(False)

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.ema_decay is None:
            return
        decay = self.ema_decay_now()
        for p_ema, p in zip(self.generator_ema.parameters(), self.generator_module.parameters()):
            p_ema.lerp_(p.detach(), 1.0 - decay)
        for b_ema, b in zip(self.generator_ema.buffers(), self.generator_module.buffers()):
            b_ema.copy_(b)

    def ema_decay_now(self) -> float:
        """Decay of this iteration's EMA update: 0 (a plain copy) before ``ema_start``."""
        return 0.0 if int(self.iteration) < self.ema_start else float(self.ema_decay)

    def inference_generator(self) -> nn.Module:
        """The generator to use for validation and export: the EMA copy when enabled."""
        return self.generator_ema if self.ema_decay is not None else self.generator_module

    # ---- optimisation ---------------------------------------------------------------------
    def configure_optimizers(self):
        opt_g = self._optimizer_g(list(self.generator_parameters()))
        opt_d = self._optimizer_d(list(self.discriminator_parameters()))
        return [opt_g, opt_d]

    def _nan_advice(self) -> str:
        """What to do about a non-finite loss, from where the NaN/Inf is: in the batch, in the
        parameters (training diverged), or in neither (the loss itself blew up)."""
        batch = self._batch if isinstance(self._batch, dict) else {}
        bad_inputs = [k for k, v in batch.items() if _holds_non_finite(v)]
        if bad_inputs:
            skip = (
                "; model.nan_policy=skip drops such batches" if self.nan_policy == "raise" else ""
            )
            return (
                f"The batch's {', '.join(map(str, bad_inputs))} hold NaN/Inf: check the data "
                f"(a corrupt image?){skip}."
            )
        bad_params = [n for n, p in self.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad_params:
            return (
                f"{_hold(len(bad_params), 'parameter tensor')} NaN/Inf (e.g. "
                f"{bad_params[0]}): training diverged. {_LOWER_LR.capitalize()}"
            )
        return (
            "Lower the learning rates, enable gradient clipping (model.grad_clip_g / "
            "grad_clip_d), or check the input data for NaNs."
        )

    def _check_finite(self, loss: Tensor, logs: dict[str, Tensor], what: str) -> bool:
        if torch.isfinite(loss).all():
            return True
        bad = sorted(k for k, v in logs.items() if not torch.isfinite(v).all())
        msg = (
            f"{what} loss is not finite at iteration {int(self.iteration)} "
            f"(terms: {', '.join(bad) or 'total'}). {self._nan_advice()}"
        )
        if self.nan_policy == "raise":
            raise NonFiniteLossError(msg)
        self._restore_buffers()  # the forwards of this iteration already moved them
        self.skipped_iterations += 1
        self._consecutive_skips += 1
        self._skipped_batch = True
        if self._consecutive_skips >= self.nan_max_skips:
            raise NonFiniteLossError(
                f"gave up after {self._consecutive_skips} consecutive batches with a non-finite "
                f"loss (model.nan_max_skips={self.nan_max_skips}; "
                f"{int(self.skipped_iterations)} skipped in all). Last: {msg}"
            )
        self.print(
            f"skipping a batch ({self._consecutive_skips} in a row, "
            f"{int(self.skipped_iterations)} in all; the iteration counter stays at "
            f"{int(self.iteration)}): {msg}"
        )
        return False

    # ---- skipping an iteration whole -------------------------------------------------------
    def _network_buffers(self) -> Iterator[tuple[str, Tensor]]:
        """The networks' buffers (BatchNorm statistics, spectral-norm vectors, ...), which any
        training forward moves; the module's own counters and flags are not among them."""
        own = {name for name, _ in self.named_buffers(recurse=False)}
        return ((n, b) for n, b in self.named_buffers() if n not in own)

    @torch.no_grad()
    def _snapshot_buffers(self) -> None:
        """Keep the networks' buffers as they are before the iteration, one flat copy per
        device and dtype (a single ``cat`` each, so the per-iteration cost is a few kernels)."""
        groups: dict[tuple, list[tuple[str, Tensor]]] = {}
        for name, b in self._network_buffers():
            groups.setdefault((b.device, b.dtype), []).append((name, b))
        self._buffer_snapshot = [
            (
                [n for n, _ in items],
                [b.numel() for _, b in items],
                torch.cat([b.reshape(-1) for _, b in items]),
            )
            for items in groups.values()
        ]

    @torch.no_grad()
    def _restore_buffers(self) -> None:
        current = dict(self.named_buffers())
        for names, sizes, flat in self._buffer_snapshot:
            for name, chunk in zip(names, flat.split(sizes)):
                if name in current:
                    current[name].copy_(chunk.view_as(current[name]))

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._skipped_batch = False
        self._batch = batch
        if self.nan_policy == "skip":
            self._snapshot_buffers()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._batch = None
        self._buffer_snapshot = []
        if not self._skipped_batch:
            self._consecutive_skips = 0
        if self.nan_policy == "skip":
            self.log("skipped_iterations", self.skipped_iterations.float(), on_step=True)

    # ---- checkpoints ----------------------------------------------------------------------
    def checkpoint_meta(self) -> CheckpointMeta | None:
        """The record inference rebuilds this model from (``checkpoint["facectx"]``, see
        ``facectx.checkpoint``); subclasses return ``self.make_meta(kind, init_args, ...)``.
        None writes no record."""
        return None

    def make_meta(self, kind: str, init_args: dict, **extra: Any) -> CheckpointMeta:
        """A record with what every kind shares (EMA, the training data's frame, iteration,
        version) filled in; ``extra`` holds the kind's own fields."""
        from facectx._version import __version__

        return CheckpointMeta(
            kind=kind,
            init_args=init_args,
            ema=self.ema_decay is not None,
            frame=self.training_frame(),
            iteration=int(self.iteration),
            version=__version__,
            extra=extra,
        )

    def training_frame(self) -> dict | None:
        """The canonical frame of the training data (its meta.json), so inference on raw photos
        aligns faces exactly as the model saw them; None without a prepared folder."""
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if dm is None or not hasattr(dm, "resolve_root"):
            return None
        meta = Path(dm.resolve_root()) / "meta.json"
        if not meta.exists():
            return None
        return json.loads(meta.read_text()).get("frame")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Refuses to write a checkpoint of a diverged model (every facectx checkpoint — last,
        best, snapshots — passes here), then writes the ``checkpoint_meta`` record."""
        bad = non_finite_tensors(checkpoint.get("state_dict", {}))
        if bad:
            raise NonFiniteModelError(self._refusal(bad))
        meta = self.checkpoint_meta()
        if meta is not None:
            checkpoint["facectx"] = meta.to_dict()

    def _refusal(self, bad: list[str]) -> str:
        """Why a checkpoint is refused: which parameters and which buffers hold NaN/Inf, with
        the advice that fits (NaN parameters: training diverged; NaN buffers only: a
        non-finite batch went through a forward, which moves BatchNorm statistics)."""
        buffers = {name for name, _ in self.named_buffers()}
        bad_buffers = [k for k in bad if k in buffers]
        bad_params = [k for k in bad if k not in buffers]
        what = []
        if bad_params:
            what.append(
                f"{_hold(len(bad_params), 'parameter tensor')} NaN/Inf "
                f"(e.g. {', '.join(bad_params[:3])})"
            )
        if bad_buffers:
            stats = "running_mean", "running_var", "num_batches_tracked"
            kind = (
                "BatchNorm running statistics, "
                if any(k.endswith(stats) for k in bad_buffers)
                else ""
            )
            what.append(
                f"{_hold(len(bad_buffers), 'buffer')} NaN/Inf "
                f"({kind}e.g. {', '.join(bad_buffers[:3])})"
            )
        if bad_params:
            advice = f"Training diverged: {_LOWER_LR}"
        else:
            advice = (
                "Every parameter is finite: a batch holding NaN/Inf went through the networks, "
                "whose forward moves these buffers. Check the data for corrupt images; "
                "model.nan_policy=skip drops such a batch with its buffer updates."
            )
        return (
            f"not saving a checkpoint at iteration {int(self.iteration)}: "
            f"{' and '.join(what)}. {advice}"
        )

    def _step(self, opt, loss: Tensor, clip: float | None) -> None:
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if clip is not None:
            self.clip_gradients(opt, gradient_clip_val=clip, gradient_clip_algorithm="norm")
        opt.step()

    def adversarial_update(
        self,
        opt_g,
        opt_d,
        generate: Callable[[], Any],
        discriminator_loss: Callable[[Any], tuple[Tensor, dict[str, Tensor]]],
        generator_loss: Callable[[Any], tuple[Tensor, dict[str, Tensor]]],
        use_discriminator: bool,
        logs: dict[str, Tensor],
        part: str = "",
    ) -> tuple[bool, Any]:
        """One adversarial update of one generator/discriminator pair, the phases every facectx
        GAN shares: the generator forward (G trainable, D frozen), a discriminator step on real
        and detached fake minibatches (when ``use_discriminator``), then a generator step
        against the updated D, each with its NaN check and gradient clipping.

        ``discriminator_loss`` gets the outputs detached; both losses' logs go into ``logs``.
        ``part`` names the pair in NaN messages (e.g. "content"). Returns ``(stepped,
        outputs)``: ``stepped`` is False when a non-finite loss skipped the iteration
        (``nan_policy=skip``); the caller then ends the iteration without counting it.
        """
        self.toggle_optimizer(opt_g)
        outputs = generate()
        self.untoggle_optimizer(opt_g)

        if use_discriminator:
            self.toggle_optimizer(opt_d)
            d_loss, d_logs = discriminator_loss(_detach(outputs))
            logs.update(d_logs)
            if not self._check_finite(d_loss, d_logs, f"{part} discriminator".lstrip()):
                self.untoggle_optimizer(opt_d)
                return False, outputs
            self._step(opt_d, d_loss, self.grad_clip_d)
            self.untoggle_optimizer(opt_d)

        self.toggle_optimizer(opt_g)
        g_loss, g_logs = generator_loss(outputs)
        logs.update(g_logs)
        if not self._check_finite(g_loss, g_logs, part or "generator"):
            self.untoggle_optimizer(opt_g)
            return False, outputs
        self._step(opt_g, g_loss, self.grad_clip_g)
        self.untoggle_optimizer(opt_g)
        return True, outputs

    def end_iteration(self, batch: dict, logs: dict[str, Tensor], **scalars: float) -> None:
        """After every update of an iteration: count it, move the EMA, log."""
        self.iteration += 1
        self._update_ema()
        self.log_iteration(batch, logs, **scalars)

    def log_iteration(self, batch: dict, logs: dict[str, Tensor], **scalars: float) -> None:
        """The one place training metrics are logged: every loss term as ``train/<name>`` (per
        step, and the epoch mean over every process under DDP), the iteration counter, and
        ``scalars`` per step."""
        self.log_dict(
            {f"train/{k}": v for k, v in logs.items()},
            on_step=True,
            on_epoch=True,
            batch_size=self._batch_size(batch),
            sync_dist=True,  # epoch means over every process under DDP; no-op on one device
        )
        self.log("iteration", self.iteration.float(), on_step=True, on_epoch=False)
        for name, value in scalars.items():
            self.log(name, value, on_step=True, on_epoch=False)

    def training_step(self, batch: dict, batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        logs: dict[str, Tensor] = {}
        stepped, _ = self.adversarial_update(
            opt_g,
            opt_d,
            lambda: self.generate(batch),
            lambda outputs: self.discriminator_loss(batch, outputs),
            lambda outputs: self.generator_loss(batch, outputs),
            self.uses_discriminator,
            logs,
        )
        if stepped:
            self.end_iteration(batch, logs)

    @staticmethod
    def _batch_size(batch: dict) -> int:
        for v in batch.values():
            if isinstance(v, Tensor) and v.ndim > 0:
                return int(v.shape[0])
        return 1
