"""When and on what the metrics run: samples from a generate function, a reference source, a seed.

The metric protocol (extractor, resize, quantisation, sample counts) lives in ``giugan.metrics``.
:class:`Evaluator` knows nothing of the LightningModule: it is given the metrics, a function
mapping latents to images in [-1, 1] (the EMA generator when EMA is on, in the configured mode),
the latent length and a seed. ``GANModule`` drives it from Lightning's validation and test loops,
whose batches are the sample counts of :class:`SampleBatches` (``num_fake`` split across ranks,
latents by sample index, the same at any world size); the real statistics come from the on-disk
cache, or once from the data module's reference split (``val_dataloader()``), sharded by rank.

The samples do not depend on the number of processes: sample ``i`` of an evaluation always has
the same latent (blocks of :data:`LATENT_BLOCK` latents, block ``k`` drawn from
``(seed, "evaluation-k")``), and rank ``r`` of ``w`` scores the contiguous slice
:func:`sample_shard` of them. Gathered in rank order, the ranks' samples are the one-process run's
samples in the same order, so 1, 2 or 8 processes give the same scores up to float summation order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, Subset

from giugan.atomic_files import write_json_atomically
from giugan.metrics import quantize_images
from giugan.metrics.registry import best_criterion, lower_is_better
from giugan.seeding import step_generator

Generate = Callable[[Tensor], Tensor]


#: Latents are drawn in blocks of this many samples (a block's latents never depend on batching).
LATENT_BLOCK = 1000


def sample_shard(total: int, rank: int, world: int) -> tuple[int, int]:
    """The contiguous slice ``[start, stop)`` of ``total`` samples that ``rank`` of ``world`` scores:
    ``total // world`` each, one more for the first ``total % world`` ranks."""
    base, extra = divmod(total, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class SampleBatches(IterableDataset):
    """Batch sizes that add up to this rank's share of ``total`` samples (an evaluation "epoch").

    An iterable dataset, so Lightning does not wrap it in a ``DistributedSampler`` (which would pad
    the last batches with repeats): each rank draws exactly its :func:`sample_shard`.
    """

    def __init__(self, total: int, batch_size: int, rank: int, world: int) -> None:
        start, stop = sample_shard(total, rank, world)
        self.local = stop - start
        self.batch_size = max(1, int(batch_size))

    def __iter__(self) -> Iterator[int]:
        done = 0
        while done < self.local:
            size = min(self.batch_size, self.local - done)
            yield size
            done += size

    def __len__(self) -> int:
        return (self.local + self.batch_size - 1) // self.batch_size


def sample_batches_loader(total: int, batch_size: int, rank: int, world: int) -> DataLoader:
    """The evaluation loop's data: one int (a sample count) per batch."""
    return DataLoader(SampleBatches(total, batch_size, rank, world), batch_size=None)


class Evaluator:
    """Runs ``metrics`` on samples of ``generate`` against a data module's reference split.

    Args:
        metrics: a :class:`giugan.metrics.GenerativeMetrics`.
        generate: latents ``(n, z_dim)`` -> images ``(n, 3, S, S)`` in [-1, 1].
        z_dim: latent length.
        seed: the run's seed; sample i's latent comes from block ``i // LATENT_BLOCK`` (see above).
    """

    def __init__(self, metrics: Any, generate: Generate, z_dim: int, seed: int) -> None:
        self.metrics = metrics
        self.generate = generate
        self.z_dim = z_dim
        self.seed = seed
        self.best: dict[str, float] = {}
        self.last: dict[str, float] = {}
        #: Every evaluation of the run so far, in order (each with its ``generator_iteration``).
        self.history: list[dict[str, float]] = []
        self._reference_ready = False
        self._next: int | None = None
        self._block: tuple[int, Tensor] | None = None
        self._num_fake = 0

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The run's evaluation record: every evaluation so far, the best and the last.

        ``GANModule`` saves it in every checkpoint (``checkpoint["giugan"]["evaluation"]``), so a
        resume continues the best-of-N protocol where the checkpoint left it.
        """
        return {
            "best": dict(self.best),
            "last": dict(self.last),
            "history": [dict(values) for values in self.history],
            "last_iteration": self.last_iteration,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = dict(state.get("best", {}))
        self.last = dict(state.get("last", {}))
        # Checkpoints written before the history was kept: what they know (the best and the last).
        known = state.get("history") or [r for r in (self.best, self.last) if r]
        by_iteration = {int(r.get("generator_iteration", -1)): dict(r) for r in known}
        self.history = [by_iteration[i] for i in sorted(by_iteration)]

    @property
    def last_iteration(self) -> int | None:
        """The generator iteration of the latest evaluation (None before the first)."""
        return int(self.last["generator_iteration"]) if "generator_iteration" in self.last else None

    def evaluated_at(self, generator_iteration: int) -> bool:
        """Whether the record holds an evaluation at ``generator_iteration``."""
        return any(int(r.get("generator_iteration", -1)) == generator_iteration for r in self.history)

    # ------------------------------------------------------------------ reference statistics
    def prepare_reference(self, datamodule: Any, rank: int, world: int, device: torch.device) -> None:
        """Load the real statistics from the cache, or compute this rank's shard and cache them."""
        if self._reference_ready:
            return
        if datamodule is None or not hasattr(datamodule, "reference_id"):
            raise ValueError(
                "Evaluation needs a giugan data module (one with a `reference_id` and a reference "
                "split in val_dataloader()); pass one with --data."
            )
        key = self.metrics.reference_key(datamodule.reference_id, datamodule.num_reference_images)
        if not self.metrics.load_reference(key):
            loader = datamodule.val_dataloader()
            if world > 1:
                # Contiguous shards: gathered in rank order, the features keep the data's order
                # (KID's subsets and the saved cache are then those of one process).
                indices = list(range(*sample_shard(len(loader.dataset), rank, world)))
                loader = DataLoader(
                    Subset(loader.dataset, indices),
                    batch_size=loader.batch_size,
                    num_workers=loader.num_workers,
                    shuffle=False,
                )
            for batch in loader:
                self.metrics.update_real(quantize_images(batch.to(device)))
            self.metrics.save_reference(key)
        self._reference_ready = True

    # ------------------------------------------------------------------ samples
    def start_samples(self, rank: int, device: torch.device, world: int = 1) -> None:
        """Forget the previous samples; the next ones are this rank's :func:`sample_shard`."""
        self.metrics.reset_fake()
        self._next = sample_shard(int(self.metrics.num_fake), rank, world)[0]
        self._block = None
        self._num_fake = 0

    def latents(self, start: int, stop: int, device: torch.device) -> Tensor:
        """The latents of samples ``start`` .. ``stop - 1`` of every evaluation (any world size)."""
        parts = []
        for block in range(start // LATENT_BLOCK, (stop - 1) // LATENT_BLOCK + 1):
            if self._block is None or self._block[0] != block or self._block[1].device != device:
                rng = step_generator(self.seed, 0, f"evaluation-{block}", device)
                self._block = (block, torch.randn(LATENT_BLOCK, self.z_dim, device=device, generator=rng))
            first = block * LATENT_BLOCK
            parts.append(self._block[1][max(start, first) - first : min(stop, first + LATENT_BLOCK) - first])
        return torch.cat(parts)

    @torch.no_grad()
    def add_samples(self, count: int, device: torch.device) -> None:
        """Generate this rank's next ``count`` samples and add them to the fake statistics."""
        if self._next is None:
            raise RuntimeError("Evaluator.add_samples called before start_samples.")
        latents = self.latents(self._next, self._next + count, device)
        self._next += count
        self.metrics.update_fake(quantize_images(self.generate(latents)))
        self._num_fake += count

    @torch.no_grad()
    def compute(self, generator_iteration: int) -> tuple[dict[str, float], bool]:
        """Scores of the samples added since :meth:`start_samples`; also whether they are the best."""
        values = {k: float(v) for k, v in self.metrics.compute().items()}
        return values, self._record(values, generator_iteration)

    def _record(self, values: dict[str, float], generator_iteration: int) -> bool:
        """Store ``values`` as last; True when they are the best so far by :meth:`criterion`, in
        its direction (the score and order ``BestCheckpoint`` uses).

        The best is the best of every evaluation in the record, whichever attempt ran it; on a
        tie the earlier evaluation stays the best.
        """
        self.last = {**values, "generator_iteration": generator_iteration}
        # An evaluation at an iteration already in the record (a resume from an older checkpoint
        # that redoes it) replaces the one there, and so does everything after it.
        self.history = [r for r in self.history if int(r.get("generator_iteration", -1)) < generator_iteration]
        self.history.append(dict(self.last))
        criterion = self.criterion(values)
        if criterion is None:
            return False
        lower = lower_is_better(criterion)
        previous = self.best.get(criterion, float("inf") if lower else float("-inf"))
        better = not self.best or (values[criterion] < previous if lower else values[criterion] > previous)
        if better:
            self.best = dict(self.last)
        return better

    @staticmethod
    def criterion(values: dict[str, float]) -> str | None:
        """The score that decides the best: the first present of the metrics registry's
        ``BEST_BY`` (the order of ``BestCheckpoint``'s monitored scores)."""
        return best_criterion(values)

    def logged_values(self, values: dict[str, float]) -> dict[str, float]:
        """``eval/<name>`` for ``values`` and ``eval/best_<name>`` for the best so far."""
        logged = {f"eval/{k}": float(v) for k, v in values.items()}
        logged.update(
            {f"eval/best_{k}": float(v) for k, v in self.best.items() if k != "generator_iteration"}
        )
        return logged

    # ------------------------------------------------------------------ report
    def write_report(
        self, folder: str, values: dict[str, float], context: dict[str, Any], filename: str = "eval.json"
    ) -> str:
        """Write ``<folder>/<filename>`` atomically: the scores, ``context`` and the protocol."""
        protocol = {**self.metrics.protocol(), **context.pop("protocol", {})}
        protocol["num_fake"] = int(self.metrics.num_fake)
        report = {**{k: float(v) for k, v in values.items()}, **context, "protocol": protocol}
        return str(write_json_atomically(os.path.join(folder, filename), report, indent=2, default=str))
