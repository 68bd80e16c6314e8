"""Mid-epoch resume: a restored loader continues with the batch the first one would have given."""

import torch
from torch.utils.data import Dataset

from facectx.data.datasets import EpochSampler
from facectx.data.loader import ResumableDataLoader


class Keys(Dataset):
    def __len__(self):
        return 12

    def __getitem__(self, key):
        epoch, index = key
        return torch.tensor([epoch, index])


def _loader():
    return ResumableDataLoader(Keys(), batch_size=3, sampler=EpochSampler(12, seed=7))


def test_restored_loader_skips_the_batches_already_seen():
    first = _loader()
    first.sampler.set_epoch(2)
    full = [b.clone() for b in first]
    it = iter(first)
    next(it)
    next(it)
    state = first.state_dict()
    assert state == {"epoch": 2, "batches": 2}

    second = _loader()
    second.load_state_dict(state)
    second.sampler.set_epoch(2)
    rest = list(second)
    assert len(rest) == 2
    for a, b in zip(rest, full[2:]):
        assert torch.equal(a, b)
    # the skip is one-shot: the next pass is a full epoch again
    assert len(list(second)) == 4


def test_state_from_a_finished_epoch_does_not_empty_the_next():
    first = _loader()
    first.sampler.set_epoch(0)
    list(first)
    second = _loader()
    second.load_state_dict(first.state_dict())  # {"epoch": 0, "batches": 4}
    second.sampler.set_epoch(1)
    assert len(list(second)) == 4
