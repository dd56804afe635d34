"""Everything the metrics do across processes, and their handling of torchmetrics states.

The scores keep their statistics in torchmetrics states; these helpers synchronise them over
``torch.distributed`` ranks (every rank must call them), make the ranks agree on a flag, keep
states created under ``torch.inference_mode`` updatable, and fork the random generator for the
random parts of a score. Nothing here knows a particular score.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
import torch.distributed as dist
from torch import Tensor
from torchmetrics import Metric

from giugan import compat

#: Seed of the CPU generator used for IS shuffling and KID subset sampling.
SUBSET_SEED = 0


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)`` of the default process group; ``(0, 1)`` outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_ranks_agree(flag: bool) -> bool:
    """``flag`` on one process; the AND of every rank's ``flag`` under torch.distributed."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    backend = str(dist.get_backend())
    device = torch.device("cpu")
    if "nccl" in backend and "gloo" not in backend:
        device = torch.device("cuda", torch.cuda.current_device())
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


@contextlib.contextmanager
def synchronised(metric: Metric, width: int) -> Iterator[Metric]:
    """Sync ``metric``'s states across ranks for the block; restore local states afterwards.

    List states (KID/IS features) are first concatenated into one ``(n, width)`` tensor per rank
    (an empty one where a rank has none): torchmetrics gathers list states with
    ``dist_reduce_fx=None`` element by element, which would hang when ranks hold different
    numbers of batches. Unlike ``Metric.sync_context`` this also unsyncs when the block raises.
    """
    for name, value in metric.metric_state.items():
        if isinstance(value, list):
            if value:
                merged = torch.cat([part.reshape(-1, width) for part in value], dim=0)
            else:
                merged = torch.empty(0, width, device=metric.device)
            setattr(metric, name, [merged])
    metric.sync(should_sync=True)
    try:
        yield metric
    finally:
        if compat.is_synced(metric):
            metric.unsync()


def make_states_updatable(metrics: Iterable[Metric]) -> None:
    """Clone states created under ``torch.inference_mode`` before updating them outside it.

    Lightning evaluates under inference mode; a state reset or loaded there is an inference
    tensor, and updating it in place later outside inference mode would raise.
    """
    if torch.is_inference_mode_enabled():
        return
    for metric in metrics:
        for name, value in metric.metric_state.items():
            if isinstance(value, Tensor) and value.is_inference():
                setattr(metric, name, value.clone())


@contextlib.contextmanager
def seeded() -> Iterator[None]:
    """Run the block under the CPU generator seeded with :data:`SUBSET_SEED`, then restore it.

    Results are reproducible, identical on every rank, and the training RNG is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SUBSET_SEED)
        yield


def rows(parts: list[Tensor]) -> int:
    """Number of samples in a list state (a list of ``(n_i, width)`` tensors)."""
    return sum(int(part.shape[0]) for part in parts)


__all__ = [
    "SUBSET_SEED",
    "all_ranks_agree",
    "make_states_updatable",
    "rank_and_world",
    "rows",
    "seeded",
    "synchronised",
]
