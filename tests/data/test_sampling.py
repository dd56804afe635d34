"""The resumable sampler and the per-sample augmentation seeds (giugan.data.sampling)."""

from __future__ import annotations

import pickle

import torch

from giugan.data.sampling import EpochSeededRandomSampler, SampleIndex, SeededAugmentation
from giugan.data.transforms import random_hflip


def test_a_restored_sampler_serves_the_rest_of_the_pass() -> None:
    data = list(range(10))
    sampler = EpochSeededRandomSampler(data, seed=3, batch_size=4, drop_last=True)
    sampler.set_epoch(2)
    served = iter(sampler)
    head = [next(served) for _ in range(4)]
    state = sampler.state_dict()
    rest = list(served)
    restored = EpochSeededRandomSampler(data, seed=3, batch_size=4, drop_last=True)
    restored.load_state_dict(state)
    assert state["epoch"] == 2 and state["served"] == 4
    assert list(restored) == rest and sorted(head + rest) == data


def test_a_finished_pass_is_stored_as_the_start_of_the_next_epoch() -> None:
    sampler = EpochSeededRandomSampler(list(range(10)), seed=3, batch_size=4, drop_last=True)
    served = iter(sampler)
    for _ in range(8):  # the two full batches; the last 2 indices are dropped by the loader
        next(served)
    state = sampler.state_dict()
    assert (state["epoch"], state["served"]) == (1, 0)
    sampler.set_epoch(1)
    assert list(sampler) == _order(epoch=1)


def _order(epoch: int) -> list[int]:
    sampler = EpochSeededRandomSampler(list(range(10)), seed=3)
    sampler.set_epoch(epoch)
    return list(sampler)


def test_sample_indices_are_ints_with_a_seed_that_survive_pickling() -> None:
    index = SampleIndex(7, 12345)
    again = pickle.loads(pickle.dumps(index))
    assert index == 7 and isinstance(again, SampleIndex) and again.augmentation_seed == 12345


def test_flips_follow_the_index_seed_and_leave_the_callers_generator_alone() -> None:
    class Flipping(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 1

        def __getitem__(self, index: int) -> torch.Tensor:
            return random_hflip(torch.arange(4.0))

    dataset = SeededAugmentation(Flipping())
    flips = [dataset[SampleIndex(0, seed)][0].item() for seed in range(16)]
    assert flips == [dataset[SampleIndex(0, seed)][0].item() for seed in range(16)]
    assert 0.0 in flips and 3.0 in flips
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    dataset[SampleIndex(0, 99)]
    assert torch.equal(torch.rand(3), expected)
