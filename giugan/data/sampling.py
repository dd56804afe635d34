"""Resumable training order: a stateful epoch-seeded sampler and per-sample augmentation seeds.

A run stopped at any generator iteration and resumed from its checkpoint must see the same
images, in the same order and with the same random flips, as an uninterrupted run. Three
pieces make that exact, for any number of loader workers:

* :class:`EpochSeededRandomSampler` draws each epoch's order from ``(seed, epoch)`` and has a
  ``state_dict`` (epoch, generator state, indices served). torchdata's ``StatefulDataLoader``
  stores it in the loader's state, which Lightning saves in every checkpoint and gives back to the
  loader on resume, so the sampler continues at the next mini-batch without replaying the epoch.
* The indices it yields are :class:`SampleIndex` values: ordinary ``int``\\ s that also carry an
  augmentation seed drawn from ``(seed, epoch, index)``.
* :class:`SeededAugmentation` wraps the training dataset and, for each such index, runs the
  dataset's ``__getitem__`` with torch's default generator seeded from it (and restored
  afterwards). Random flips therefore depend on neither a worker's RNG history nor the main
  process's RNG, neither of which a checkpoint holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Self

import torch
from torch.utils.data import Dataset, RandomSampler

from giugan.seeding import mixed_seed

__all__ = ["EpochSeededRandomSampler", "SampleIndex", "SeededAugmentation"]

_EPOCH_STRIDE = 7_919  # seed of epoch e: seed + 7919 * e


class SampleIndex(int):
    """A dataset index that carries the seed of its sample's random augmentation.

    It is an ``int`` (equal to, and hashing like, the plain index), so code that only needs the
    index never notices; :class:`SeededAugmentation` reads :attr:`augmentation_seed`.
    """

    augmentation_seed: int

    def __new__(cls, index: int, augmentation_seed: int) -> Self:
        value = super().__new__(cls, index)
        value.augmentation_seed = augmentation_seed
        return value

    def __reduce__(self) -> tuple[Any, tuple[int, int]]:
        # Pickled into the index queues of DataLoader worker processes.
        return (SampleIndex, (int(self), self.augmentation_seed))


class EpochSeededRandomSampler(RandomSampler):
    """A ``RandomSampler`` whose order is a pure function of ``(seed, epoch)``, and resumable.

    Lightning calls :meth:`set_epoch` at the start of every epoch. Being a ``RandomSampler``,
    Lightning still recognises it as shuffled and swaps in a ``DistributedSampler`` under DDP.

    The state (:meth:`state_dict`) is the epoch, the generator state this pass started from and
    the number of indices served so far. A pass that has served every index its batch sampler
    will use (``examples_per_pass``: all of them, or the full batches only with ``drop_last``) is
    stored as the start of epoch ``epoch + 1``, which is where Lightning continues.

    Args:
        data_source: The dataset (only its length is used).
        seed: Seed of the order and of the augmentation seeds.
        batch_size: Indices per batch of the loader this sampler feeds.
        drop_last: Whether that loader drops the last incomplete batch.
    """

    def __init__(
        self,
        data_source: Dataset[Any],
        seed: int,
        batch_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        super().__init__(data_source, generator=torch.Generator())  # type: ignore[arg-type]
        self.seed = seed
        size = len(data_source)  # type: ignore[arg-type]
        self.examples_per_pass = size - size % batch_size if drop_last else size
        self.epoch = 0  # the data epoch: which permutation is being served
        self._epoch_offset = 0  # Lightning's epoch minus the data epoch
        self._resumed_mid_pass = False
        self._served = 0
        self._start = 0  # indices to skip on the next pass (set by load_state_dict)
        self.set_epoch(0)
        self._pass_state = self.generator.get_state()  # type: ignore[union-attr]

    def _epoch_generator_state(self, epoch: int) -> torch.Tensor:
        return torch.Generator().manual_seed(self.seed + _EPOCH_STRIDE * epoch).get_state()

    def set_epoch(self, epoch: int) -> None:
        """Start Lightning's epoch ``epoch`` (the data epoch is ``epoch`` minus an offset).

        The offset is 0 unless a run was stopped mid-epoch and resumed: Lightning then counts the
        stopped epoch as finished while the data has not, so the first call after
        :meth:`load_state_dict` of a pass in progress fixes ``offset = epoch - data epoch``.
        """
        if self._resumed_mid_pass:
            self._resumed_mid_pass = False
            self._epoch_offset = epoch - self.epoch
            return
        data_epoch = epoch - self._epoch_offset
        if data_epoch != self.epoch:
            self._start = 0
        self.epoch = data_epoch
        self.generator.set_state(self._epoch_generator_state(data_epoch))  # type: ignore[union-attr]

    def __iter__(self) -> Iterator[int]:
        # The permutation is drawn now (not at the first next()), so a pass created before a later
        # set_epoch of the same epoch keeps its order.
        self._pass_state = self.generator.get_state()  # type: ignore[union-attr]
        order = torch.randperm(len(self.data_source), generator=self.generator).tolist()  # type: ignore[arg-type]
        start, self._start = self._start, 0
        self._served = start
        return self._serve(order[start:], self.epoch)

    def _serve(self, indices: list[int], epoch: int) -> Iterator[int]:
        for index in indices:
            self._served += 1
            yield SampleIndex(index, mixed_seed(self.seed, "augmentation", epoch, index))

    def state_dict(self) -> dict[str, Any]:
        """``{"epoch", "generator_state", "served", "epoch_offset"}`` of the pass in progress."""
        state: dict[str, Any] = {"epoch_offset": self._epoch_offset}
        if self._served >= self.examples_per_pass:
            epoch = self.epoch + 1
            return {**state, "epoch": epoch, "generator_state": self._epoch_generator_state(epoch), "served": 0}
        return {**state, "epoch": self.epoch, "generator_state": self._pass_state.clone(), "served": self._served}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``: the next pass resumes that pass after its served indices."""
        self.epoch = int(state["epoch"])
        self.generator.set_state(state["generator_state"])  # type: ignore[union-attr]
        self._pass_state = state["generator_state"]
        self._start = int(state["served"])
        self._served = self._start
        self._epoch_offset = int(state.get("epoch_offset", 0))
        self._resumed_mid_pass = self._start > 0


class SeededAugmentation(Dataset[torch.Tensor]):
    """Serve ``dataset[index]`` with torch's default generator seeded by the index's own seed.

    For a :class:`SampleIndex`, every random draw the wrapped dataset makes from torch's default
    generator (e.g. :func:`giugan.data.transforms.random_hflip`) is a function of
    ``(seed, epoch, index)``; the generator's previous state is restored afterwards, so the
    caller's stream (the main process when ``num_workers=0``) is untouched. A plain ``int`` (from a
    sampler Lightning substituted, e.g. under DDP) is passed through unchanged. Other attributes
    (``transform``, ``images``, ...) are those of the wrapped dataset.
    """

    def __init__(self, dataset: Dataset[torch.Tensor]) -> None:
        self.dataset = dataset

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling in a worker): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> torch.Tensor:
        seed = getattr(index, "augmentation_seed", None)
        if seed is None:
            return self.dataset[index]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[int(index)]
