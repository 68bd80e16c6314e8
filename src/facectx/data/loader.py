"""A DataLoader that a checkpoint can resume in the middle of an epoch.

Lightning saves the ``state_dict()`` of every train loader that has one into the checkpoint and
hands it back through ``load_state_dict()`` before iterating again. This loader records how many
batches of the current pass it handed out; after a resume it skips exactly those (without
loading them) so the epoch continues with the batch the interrupted run would have seen next.
The skip is applied only if the sampler is in the same epoch as when the state was saved, so a
checkpoint taken at the end of an epoch never empties the next one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch.distributed as dist
from torch.utils.data import DataLoader


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class ResumableDataLoader(DataLoader):
    """``DataLoader`` over an ``EpochSampler`` (anything with ``epoch`` and a one-shot ``start``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._yielded = 0
        self._resume: dict[str, int] | None = None

    def _base_sampler(self):
        # Under DDP Lightning wraps our sampler; the original sits one or two levels down.
        s = self.sampler
        for _ in range(3):
            if hasattr(s, "start") and hasattr(s, "epoch"):
                return s
            s = getattr(s, "sampler", None) or getattr(
                getattr(s, "dataset", None), "_sampler", None
            )
        return None

    def state_dict(self) -> dict[str, int]:
        sampler = self._base_sampler()
        return {"epoch": int(getattr(sampler, "epoch", -1)), "batches": int(self._yielded)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = dict(state)

    def __iter__(self) -> Iterator[Any]:
        skip = 0
        sampler = self._base_sampler()
        resume, self._resume = self._resume, None
        if resume and sampler is not None and resume["epoch"] == sampler.epoch:
            skip = min(int(resume["batches"]), len(self))
            sampler.start = skip * int(self.batch_size or 1) * _world_size()
        self._yielded = skip
        for batch in super().__iter__():
            self._yielded += 1
            yield batch
