"""DDP as giugan needs it, whatever spelling the user gives (docs/distributed.md).

giugan alternates a critic step and a generator step under manual optimisation; Lightning wraps the
whole ``GANModule`` (G and D) in one ``DistributedDataParallel``. Each backward then reaches only
one network's parameters (the critic loss never reaches G, the generator step freezes D), which
plain DDP refuses ("Expected to have finished reduction in the prior iteration"). So every
``DDPStrategy`` (``--trainer.devices N`` with the default strategy, ``--trainer.strategy ddp``,
``configs/trainer/ddp.yaml``, a ``DDPStrategy`` class path) is given
``find_unused_parameters=True`` and a deliberate process-group timeout, and the log says so once.
``benchmarks/ddp_arrangements.py`` compares this with wrapping G and D apart.

The timeout bounds every collective: a rank that dies or hangs makes the others fail with an error
after at most that long instead of waiting forever (with gloo a dead peer is usually noticed at
once, when its connections close).
"""

from __future__ import annotations

import datetime as _dt
import os
from typing import Any

from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities import rank_zero_info

from giugan import compat
from giugan.training.lost_ranks import LAUNCHER_PID_VARIABLE, LostRankWatch

#: Default process-group timeout in seconds (``--ddp_timeout_seconds``): PyTorch's own default for
#: gloo; long enough for rank 0 to download a data set while the others wait at the barrier.
DEFAULT_TIMEOUT_SECONDS = 1800.0


def configure_distributed(trainer: Any, timeout_seconds: float | None = DEFAULT_TIMEOUT_SECONDS) -> bool:
    """Give a DDP trainer ``find_unused_parameters=True`` and the timeout; True if it is DDP.

    Must run before ``trainer.fit`` (the strategy reads both when it sets up). Other strategies
    (one device, FSDP, DeepSpeed) are left as they are.
    """
    if os.environ.get(LAUNCHER_PID_VARIABLE) == str(os.getpid()):
        del os.environ[LAUNCHER_PID_VARIABLE]  # left by an earlier command of this process
    strategy = trainer.strategy
    if not isinstance(strategy, DDPStrategy):
        return False
    if timeout_seconds is not None and timeout_seconds <= 0:
        raise ValueError(
            f"ddp_timeout_seconds={timeout_seconds} must be > 0 (seconds a collective may wait "
            f"for the slowest rank before the run fails with an error)."
        )
    timeout = (
        _dt.timedelta(seconds=float(timeout_seconds)) if timeout_seconds is not None
        else compat.ddp_timeout(strategy)
    )
    compat.configure_ddp(strategy, find_unused_parameters=True, timeout=timeout)
    environment = strategy.cluster_environment
    if environment is not None and not environment.creates_processes_externally and "LOCAL_RANK" not in os.environ:
        # The launching process: the ranks it starts learn its pid; it names any rank that dies.
        os.environ[LAUNCHER_PID_VARIABLE] = str(os.getpid())
        trainer.callbacks.append(LostRankWatch())
    rank_zero_info(
        f"giugan: DDP over {trainer.num_nodes * trainer.num_devices} processes ({trainer.num_nodes} "
        f"node(s) x {trainer.num_devices} device(s)) with find_unused_parameters=True (the critic and "
        f"generator steps each back-propagate through one network only) and a collective timeout "
        f"of {timeout.total_seconds():g} s (--ddp_timeout_seconds)."
    )
    return True


def announce_world_size_change(saved: int | None, now: int, command: Any) -> bool:
    """Say once when a fit resumes a checkpoint written at another world size (it is allowed);
    return whether it does.

    Parameters, optimiser states, counters and the evaluation record carry over exactly. What
    cannot carry over is the trajectory: the global batch becomes ``now x batch_size``, and each
    rank's data shard and noise stream (seeded by rank) differ, so the run continues as a run of
    ``now`` processes would, not as the ``saved``-process run would have. Bitwise resume holds at
    the same world size. The data loader starts a new pass over the data (its saved position
    belongs to the other world size's sampler).
    """
    if command != "fit" or saved is None or int(saved) == int(now):
        return False
    rank_zero_info(
        f"giugan: this checkpoint was written by a {saved}-process run; the fit resumes a "
        f"{saved}-process run on {now} process(es). Parameters, optimisers, counters and the "
        f"evaluation record carry over; the global batch becomes {now} x data.init_args.batch_size "
        f"and the ranks' data shards and noise differ, so from here the run follows the "
        f"{now}-process trajectory (a resume at the same world size is bitwise exact); the data "
        f"loader starts a new pass over the data."
    )
    return True
