"""Two tiny table rows (the shipped quickstart shrunk) in a sweep file, and ``giugan`` in a subprocess.

Shared by ``test_sweep.py`` (which runs the sweeps) and ``test_report.py`` (which reports them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tiny_quickstart import QUICKSTART, ROOT, TINY_QUICKSTART

#: Generator iterations of each tiny run; a checkpoint every 2, an evaluation every 5.
ITERATIONS = 20
#: Passed through to every run after ``--``: tiny networks and data, quiet, frequent checkpoints.
TINY_RUN_ARGS = [
    *TINY_QUICKSTART,
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
    "--model.generator_iterations", str(ITERATIONS),
    "--model.eval_every", "5",
    "--samples.every", "1000",
    "--checkpoint.every_n_generator_iterations", "2",
]  # fmt: skip
ROWS = ("tiny_a", "tiny_b")
SEEDS = ("0", "1")
#: Seconds any one command may take (a hang is a failure, never a stall).
HARD_TIMEOUT = 300


def write_tiny_sweep(folder: Path) -> Path:
    """Two row configs (the quickstart; row b with another gradient-penalty weight) and a sweep file."""
    rows = folder / "rows"
    rows.mkdir(parents=True, exist_ok=True)
    (rows / "tiny_a.yaml").write_text(f"__base__: {QUICKSTART}\n__run_name__: tiny_a\n")
    (rows / "tiny_b.yaml").write_text(f"__base__: {QUICKSTART}\n__run_name__: tiny_b\nmodel:\n  loss:\n    init_args: {{gp_weight: 5.0}}\n")
    sweep = folder / "tiny.yaml"
    sweep.write_text("name: tiny\nrows: [rows/tiny_a.yaml, rows/tiny_b.yaml]\nseeds: [0, 1]\n")
    return sweep


def environment(extra_path: Path | None = None) -> dict[str, str]:
    """This environment without SLURM/giugan variables; W&B off, one thread, this worktree's giugan."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "GIUGAN_", "WANDB_"))}
    env.update(WANDB_MODE="disabled", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    if extra_path is not None:
        env["PATH"] = f"{extra_path}{os.pathsep}{env['PATH']}"
    return env


def giugan(folder: Path, *arguments: str, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m giugan *arguments`` in ``folder``."""
    return subprocess.run([sys.executable, "-m", "giugan", *arguments], cwd=folder, env=environment(extra_path),
                          capture_output=True, text=True, timeout=HARD_TIMEOUT, check=False)


def run_tiny_sweep(folder: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """``giugan sweep tiny.yaml OPTIONS -- <tiny run arguments>`` in ``folder``."""
    return giugan(folder, "sweep", "tiny.yaml", *options, "--", *TINY_RUN_ARGS)


__all__ = ["HARD_TIMEOUT", "ITERATIONS", "QUICKSTART", "ROWS", "SEEDS", "TINY_RUN_ARGS", "environment",
           "giugan", "run_tiny_sweep", "write_tiny_sweep"]
