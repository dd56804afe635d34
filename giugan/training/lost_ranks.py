"""A DDP rank that dies or hangs ends the run with one paragraph naming it (docs/distributed.md).

* In the launching process of ``giugan fit --trainer.devices N``, :class:`LostRankWatch` takes over
  the check of Lightning's child-process observer: when a rank it started ends with a non-zero
  status, it says which rank, its pid and how it ended, stops the other ranks and exits with
  status 1 (Lightning would SIGKILL everything with a one-line notice).
* On any rank, a collective that fails because a peer closed its connections, or that waited past
  ``--ddp_timeout_seconds``, becomes :func:`lost_rank_paragraph` at the command line's error
  boundary, naming the lost rank where this process can know it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import torch.distributed as dist
from lightning.pytorch import Callback, LightningModule, Trainer

from giugan import compat
from giugan.rank_reports import LAUNCHER_PID_VARIABLE, another_rank_explained
from giugan.training.run_directory import release_held_locks

#: Exit status of a run that lost one of its processes.
LOST_RANK_STATUS = 1
#: Exit status of a rank that explained its fault at the error boundary (giugan/cli/errors.py).
EXPLAINED_FAULT_STATUS = 2
#: How long the launching process lets its own error boundary end a run that a rank's explained
#: fault stopped, before it ends the run itself.
_GRACE_SECONDS = 10.0

#: Fragments of the errors gloo, NCCL and the TCP store raise when a peer is gone or a collective
#: waited past the timeout.
_LOST_PEER_FRAGMENTS = (
    "Connection reset by peer", "Connection closed by peer", "Broken pipe", "Connection refused",
    "NCCL communicator was aborted", "ProcessGroupNCCL", "Socket Timeout",
)
_TIMEOUT_FRAGMENTS = ("Timed out", "timed out", "Timeout", "timeout")


def _signal_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"{signal.Signals(-returncode).name} (signal {-returncode})"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def _resume_advice() -> str:
    return (
        "The checkpoints already written are intact (last.ckpt holds the latest saved generator "
        "iteration). Find out why that process ended (a SIGKILL is most often the out-of-memory "
        "killer: see `dmesg` or the scheduler's log), then resume with the same command and "
        "--ckpt_path last."
    )


def lost_rank_paragraph(error: BaseException) -> str | None:
    """One paragraph for a collective that failed because a rank died or hung; None otherwise."""
    several = (
        int(os.environ.get("WORLD_SIZE", "1") or 1) > 1
        or int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1
        or bool(os.environ.get(LAUNCHER_PID_VARIABLE))
    )
    if not (several or (dist.is_available() and dist.is_initialized())):
        return None
    text = str(error)
    lost_peer = any(fragment in text for fragment in _LOST_PEER_FRAGMENTS)
    timed_out = any(fragment in text for fragment in _TIMEOUT_FRAGMENTS)
    distributed_error = isinstance(error, getattr(dist, "DistError", ())) or lost_peer or timed_out
    if not distributed_error:
        return None
    me = os.environ.get("RANK") or os.environ.get("SLURM_PROCID") or os.environ.get("LOCAL_RANK") or "0"
    launcher = os.environ.get(LAUNCHER_PID_VARIABLE)
    ended = [(rank, process) for rank, process in _WATCHED if process.poll() not in (None, 0)]
    if ended:
        rank, process = ended[0]
        who = f"rank {rank} (pid {process.pid}) ended with {_signal_name(process.returncode)}"
    elif launcher and launcher.isdigit() and int(launcher) != os.getpid() and _launcher_gone(int(launcher)):
        who = f"rank 0, the launching process (pid {launcher}), is gone"
    elif lost_peer:
        who = "another rank closed its connection: that process died"
    elif "waiting for clients" in text or "clients joined" in text:
        who = (
            "not every rank joined the run within --ddp_timeout_seconds (one failed to start, or "
            "started later than that)"
        )
    elif timed_out:
        who = (
            "a collective waited past the timeout (--ddp_timeout_seconds): another rank hung or "
            "died without closing its connections"
        )
    else:
        who = "a collective failed"
    fragment = next((f for f in _LOST_PEER_FRAGMENTS + _TIMEOUT_FRAGMENTS if f in text), None)
    detail = f"{type(error).__name__}: {fragment}" if fragment else type(error).__name__
    return (
        f"Rank {me} of this DDP run lost the other processes: {who} ({detail}). The run stopped "
        f"on this rank. " + _resume_advice()
    )


def explained_by_another_rank() -> bool:
    """Whether this run's peers were lost to a fault a rank explained (it exited with status 2
    after its paragraph): not when a rank this process started ended otherwise (a kill, a crash),
    else after waiting a few seconds for the paragraph of a rank on its way out."""
    ended = [process.poll() for _, process in _WATCHED]
    if any(code not in (None, 0, EXPLAINED_FAULT_STATUS) for code in ended):
        return False
    return another_rank_explained()


def _launcher_gone(pid: int) -> bool:
    """Whether the launching process ``pid`` (this rank's parent) has ended: a rank it started is
    handed to another parent at once, even while the dead launcher is not yet reaped."""
    return os.getppid() != pid or not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: (global rank, process) of the ranks this launching process started (read by the paragraph).
_WATCHED: list[tuple[int, Any]] = []


def end_started_ranks() -> None:
    """Kill the ranks this launching process started that still run (after a lost rank, or a
    fault this process explained); Lightning's observer is stopped first, so that it does not
    report those kills as lost ranks."""
    if _WATCHED:
        compat.stop_watching_child_processes()
    for _, process in _WATCHED:
        if process.poll() is None:
            process.kill()


class LostRankWatch(Callback):
    """In the launching process of ``giugan fit --trainer.devices N``: name a rank that dies.

    Lightning's launcher watches the ranks it started and SIGKILLs everything when one ends with a
    non-zero status, saying only "Child process with PID ... terminated". This keeps that policy
    (no rank is left waiting on a dead peer) and says first, in one paragraph, which rank was lost,
    how it ended and how to resume; the launching process then exits with status 1.
    """

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        processes = compat.watch_child_processes(lambda processes: _check_ranks(processes, trainer))
        first = getattr(trainer, "node_rank", 0) * trainer.num_devices + 1
        _WATCHED[:] = [(first + index, process) for index, process in enumerate(processes)]


def _check_ranks(processes: list[Any], trainer: Trainer) -> bool:
    codes = [process.poll() for process in processes]
    if all(code == 0 for code in codes):
        return True
    lost = [(index, code) for index, code in enumerate(codes) if code not in (None, 0)]
    if not lost:
        return False
    index, code = lost[0]
    if code == EXPLAINED_FAULT_STATUS and another_rank_explained(wait_seconds=1.0):
        # That rank said what went wrong; this process (whose own boundary exits with the same
        # status once its next collective fails) adds nothing but stops the others.
        for process in processes:
            if process.poll() is None:
                process.kill()
        time.sleep(_GRACE_SECONDS)
        release_held_locks()
        os._exit(EXPLAINED_FAULT_STATUS)
    node = getattr(trainer, "node_rank", 0)
    rank = node * trainer.num_devices + index + 1
    print(
        f"\ngiugan: rank {rank} (pid {processes[index].pid}) of this {trainer.world_size}-process "
        f"DDP run ended with {_signal_name(code)}; the other ranks were stopped. "
        + _resume_advice(),
        file=sys.stderr, flush=True,
    )
    for process in processes:
        if process.poll() is None:
            process.kill()
    release_held_locks()
    os._exit(LOST_RANK_STATUS)
