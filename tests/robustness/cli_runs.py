"""``python -m giugan fit`` on the shipped quickstart shrunk to tiny networks, in a subprocess.

For the tests that read a run's records back (checkpoints, ``metrics.csv``, saved configs,
stderr): every command runs under a hard timeout, with W&B off and one CPU thread.
"""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import torch
from tiny_quickstart import QUICKSTART, ROOT, TINY_QUICKSTART

TINY = [
    *TINY_QUICKSTART,
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
    "--model.eval_every", "3", "--samples.every", "1000",
    "--checkpoint.every_n_generator_iterations", "2",
]  # fmt: skip
#: Seconds any one command may take (a hang is a failure, never a stall).
HARD_TIMEOUT = 180


def fit(folder: Path, name: str, iterations: int, *extra: str) -> subprocess.CompletedProcess[str]:
    """``giugan fit`` of run ``name`` (its records in ``folder/runs/name``), run in ``folder``."""
    logger = folder / f"{name}-logger.yaml"
    logger.write_text(
        "trainer:\n  logger:\n    - class_path: giugan.training.loggers.CSVLogger\n"
        f"      init_args: {{save_dir: {folder / 'runs'}, name: {name}, version: ''}}\n"
    )
    command = [sys.executable, "-m", "giugan", "fit", "--config", QUICKSTART, "--config", str(logger),
               *TINY, "--model.generator_iterations", str(iterations), *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIUGAN_", "SLURM_"))}
    env.update(WANDB_MODE="disabled", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                          timeout=HARD_TIMEOUT, check=False)


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def giugan_lines(stderr: str) -> list[str]:
    """The lines giugan printed as ``giugan: ...`` (the one-paragraph errors)."""
    return [line for line in stderr.splitlines() if line.startswith("giugan: ")]


def metrics_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as handle:
        return [row for row in csv.DictReader(handle) if row.get("lr_g")]


def file_digests(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` -> SHA-256 of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*")) if path.is_file()
    }
