"""The state of one sweep run on disk and the ``giugan fit`` command that starts or resumes it.

A run is *finished* when its ``last.ckpt`` has reached the ``model.generator_iterations`` it was
trained for (both are in the checkpoint), *started* when it has a ``last.ckpt`` short of that
(killed, stopped by a signal or preempted: it resumes with ``--ckpt_path last``) and *new*
otherwise (no checkpoint yet: a fresh start, which ``giugan fit`` allows over the records of an
attempt killed before its first checkpoint).
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Any

from giugan.sweeps.definition import SweepRun


class RunState(Enum):
    """Where a sweep run stands."""

    NEW = "new"
    STARTED = "started"
    FINISHED = "finished"


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A ``giugan fit`` checkpoint (memory-mapped), or a one-paragraph error naming the file."""
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        int(checkpoint["giugan"]["generator_iteration"]), int(checkpoint["hyper_parameters"]["generator_iterations"])
    except Exception as error:  # noqa: BLE001 - any failure to read means "not a giugan checkpoint"
        raise ValueError(
            f"{path} is not a readable giugan checkpoint ({type(error).__name__}: {error}), so whether "
            f"its run finished is unknown. Move the file away (a sweep then starts the run afresh) or "
            f"resume the run by hand with giugan fit --ckpt_path <another checkpoint of the run>."
        ) from None
    return checkpoint


def checkpoint_progress(path: Path) -> tuple[int, int]:
    """``(generator iteration reached, generator_iterations configured)`` of a checkpoint."""
    checkpoint = read_checkpoint(path)
    return int(checkpoint["giugan"]["generator_iteration"]), int(checkpoint["hyper_parameters"]["generator_iterations"])


def run_state(run_dir: Path) -> RunState:
    """The state of the run whose folder is ``run_dir`` (``<runs_dir>/<run name>``)."""
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return RunState.NEW
    reached, total = checkpoint_progress(last)
    return RunState.FINISHED if reached >= total else RunState.STARTED


def requeued() -> bool:
    """A SLURM job (array task) that was requeued: ``giugan fit`` then resumes by itself."""
    return os.environ.get("SLURM_RESTART_COUNT", "0").strip() not in ("", "0")


def fit_arguments(run: SweepRun, state: RunState, args: tuple[str, ...] | list[str]) -> list[str]:
    """``fit --config ROW --model.seed S --run_name NAME [ARGS] [--ckpt_path last]``.

    A started run resumes with ``--ckpt_path last``, except in a requeued SLURM job, where
    ``giugan fit`` picks the newer of Lightning's ``hpc_ckpt_<n>.ckpt`` and ``last.ckpt`` itself.
    """
    words = ["fit", "--config", str(run.config), *args, "--model.seed", str(run.seed), "--run_name", run.name]
    if state is RunState.STARTED and not requeued():
        words += ["--ckpt_path", "last"]
    return words
