"""Channels-last memory format for training on a CPU (or GPU)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch


def _to_channels_last(obj):
    """4-D tensors of a (nested) batch in channels-last format, in place for dicts/lists."""
    if isinstance(obj, torch.Tensor):
        return obj.contiguous(memory_format=torch.channels_last) if obj.ndim == 4 else obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            obj[k] = _to_channels_last(v)
        return obj
    if isinstance(obj, list):
        for i, v in enumerate(obj):
            obj[i] = _to_channels_last(v)
        return obj
    return obj


class ChannelsLast(pl.Callback):
    """Runs the model's convolutions in channels-last (NHWC) layout.

    oneDNN's CPU convolutions are faster in NHWC: ``scripts/bench_train.py --experiment lfw_cpu
    --cpu-variants`` measured 1.28x training iterations/s (docs/benchmarks.md). The weights and
    every 4-D tensor of each training batch are converted; checkpoints load into a model of
    either layout. Results differ from the default layout in the last bits (another summation
    order), so a recipe's reproduction must use the same setting.
    """

    def on_fit_start(self, trainer, pl_module) -> None:
        pl_module.to(memory_format=torch.channels_last)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        _to_channels_last(batch)
