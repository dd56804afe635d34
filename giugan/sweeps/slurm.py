"""A sweep as one SLURM job array: one array task per (row, seed), requeued on preemption.

Each task runs ``giugan sweep ... --task $SLURM_ARRAY_TASK_ID``, which replaces itself with that
run's ``giugan fit`` (skipped when finished, ``--ckpt_path last`` when started). ``--requeue``
lets SLURM requeue a preempted task; ``--signal USR1@120`` before the time limit makes
Lightning's SLURM plugin save ``hpc_ckpt_<n>.ckpt`` and requeue the task itself
(``<array job>_<task>``); a requeued task (``SLURM_RESTART_COUNT`` >= 1) resumes from the newer of
that and ``last.ckpt`` (README, SLURM). docs/sweeps.md.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

#: ``#SBATCH`` settings of every array task unless the sweep file's ``slurm:`` says otherwise.
DEFAULT_SBATCH: dict[str, Any] = {
    "ntasks": 1,
    "gpus-per-task": 1,
    "cpus-per-task": 8,
    "time": "48:00:00",
    "signal": "USR1@120",
    "requeue": True,
    "open-mode": "append",
}


def sbatch_script(name: str, tasks: int, task_command: list[str], extra: list[str], workdir: Path,
                  logs: Path, settings: dict[str, Any] | None = None) -> str:
    """The ``sbatch`` script of a sweep of ``tasks`` runs (array ``0..tasks-1``): each task runs
    ``task_command --task <id> -- extra``."""
    options = {"job-name": name, "array": f"0-{tasks - 1}", **DEFAULT_SBATCH, **(settings or {}),
               "output": str(logs / "%x-%A_%a.out")}
    lines = ["#!/bin/bash"]
    for key, value in options.items():
        if value is True:
            lines.append(f"#SBATCH --{key}")
        elif value not in (False, None):
            lines.append(f"#SBATCH --{key}={value}")
    lines += [
        "# Written by `giugan sweep --on slurm` (docs/sweeps.md): one array task per (row, seed).",
        f"cd {shlex.quote(str(workdir))}",
        'export WANDB_MODE="${WANDB_MODE:-offline}"  # compute nodes without internet: wandb sync later',
        "srun " + " ".join(shlex.quote(w) for w in task_command) + ' --task "$SLURM_ARRAY_TASK_ID"'
        + "".join(" " + shlex.quote(w) for w in (["--", *extra] if extra else [])),
        "",
    ]
    return "\n".join(lines)


def submit(script: Path) -> str:
    """``sbatch SCRIPT``; its output (``Submitted batch job <id>``), or a one-paragraph error."""
    try:
        result = subprocess.run(["sbatch", str(script)], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise OSError(
            f"`sbatch` is not on PATH, so the sweep's job array was not submitted. The script is "
            f"written: {script}; submit it with `sbatch {script}` on a SLURM login node, or run the "
            f"sweep here with --on local."
        ) from None
    if result.returncode != 0:
        raise OSError(
            f"`sbatch {script}` failed with status {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()[:500]}. Fix the #SBATCH settings in the sweep "
            f"file's `slurm:` section (e.g. partition, time) and run the command again."
        )
    return result.stdout.strip()
