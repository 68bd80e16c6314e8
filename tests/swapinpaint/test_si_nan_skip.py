"""SwapInpaint's own ``training_step`` goes through the base class's NaN handling: under
``nan_policy=skip`` a batch with a NaN image is dropped whole (no optimiser step, no buffer
update) and training goes on."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from facectx.modules.gan_base import NonFiniteLossError

from .conftest import PairBatches, make_module, tiny_trainer


class StateSpy(pl.Callback):
    """The whole state (parameters and buffers) before and after every training batch."""

    def __init__(self) -> None:
        self.before: dict[int, dict] = {}
        self.after: dict[int, dict] = {}

    @staticmethod
    def _state(module) -> dict:
        return {k: v.detach().clone() for k, v in module.state_dict().items()}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.before[batch_idx] = self._state(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.after[batch_idx] = self._state(pl_module)


def _poisoned_pairs() -> PairBatches:
    """Three batches of two; the second holds a NaN image (and so a NaN masked input)."""
    data = PairBatches(n=6, batch_size=2)
    for key in ("image", "masked"):
        data.ds.items[2][key] = torch.full_like(data.ds.items[2][key], float("nan"))
    return data


@pytest.mark.parametrize(
    ("schedule", "content_iterations"),
    [("joint", 5), ("separate", 5), ("separate", 0)],  # the bad batch in C's stage, then in G's
)
def test_a_nan_batch_under_skip_is_dropped_whole_and_training_goes_on(
    tmp_path, schedule, content_iterations
):
    model = make_module(nan_policy="skip", schedule=schedule, content_iterations=content_iterations)
    spy = StateSpy()
    tiny_trainer(tmp_path, 3, callbacks=[spy]).fit(model, _poisoned_pairs())
    assert int(model.skipped_iterations) == 1 and int(model.iteration) == 2
    before, after = spy.before[1], spy.after[1]
    changed = [
        k for k in before if k != "skipped_iterations" and not torch.equal(before[k], after[k])
    ]
    assert not changed  # no step, no buffer update, the counters as they were
    assert not torch.equal(spy.before[2]["iteration"], spy.after[2]["iteration"])  # goes on
    assert all(v.isfinite().all() for v in model.state_dict().values() if v.is_floating_point())


def test_a_nan_batch_under_raise_names_the_batch_entries(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"batch's image, masked hold NaN/Inf"):
        tiny_trainer(tmp_path, 3).fit(make_module(), _poisoned_pairs())
