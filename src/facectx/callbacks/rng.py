"""Save and restore every RNG in checkpoints, so a resumed run continues the same sequence."""

from __future__ import annotations

import random

import numpy as np
import pytorch_lightning as pl
import torch


class RNGState(pl.Callback):
    """Stores python, numpy, torch (CPU and CUDA) RNG states under ``checkpoint['rng']``."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        state = {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        checkpoint["rng"] = state

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        state = checkpoint.get("rng")
        if state is None:
            return
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
