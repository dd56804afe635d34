"""Kill/resume soak through the real command line (``python -m giugan fit``), on a tiny model.

* A fit stopped mid-epoch by SIGTERM and resumed with ``--ckpt_path last`` ends bitwise equal
  to an uninterrupted run.
* A fit stopped at random moments by SIGTERM, SIGINT and SIGKILL (at least 10 stops, seeded)
  and resumed each time ends with the same final parameters as an uninterrupted run, one row per
  logged generator iteration in ``metrics.csv``, and no stray files (no temporary checkpoint, no
  lock, no ``-v1`` copies).
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
ITERATIONS = 80  # room for at least 10 stops even when a signal lands a few iterations late
TINY = [
    "--model.generator.init_args.conv_dim", "4",
    "--model.generator.init_args.inserts.1.init_args.channels", "16",
    "--model.discriminator.init_args.conv_dim", "4",
    "--data.init_args.batch_size", "4",
    "--data.init_args.num_images", "28",  # 7 iterations per epoch: most stops are mid-epoch
    "--data.init_args.hflip", "true",
    "--model.metrics", "null",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
    "--trainer.log_every_n_steps", "2",
    "--samples.every", "1000",
    "--checkpoint.every_n_generator_iterations", "3",
    "--model.generator_iterations", str(ITERATIONS),
]  # fmt: skip

pytestmark = pytest.mark.slow


def _command(run: Path, name: str) -> list[str]:
    logger = run / f"{name}.yaml"
    logger.write_text(
        "trainer:\n  logger:\n    - class_path: giugan.training.loggers.CSVLogger\n"
        f"      init_args: {{save_dir: {run / 'runs'}, name: {name}, version: ''}}\n"
    )
    return [sys.executable, "-m", "giugan", "fit", "--config", str(ROOT / "configs" / "quickstart.yaml"),
            "--config", str(logger), *TINY]


def _env() -> dict[str, str]:
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("GIUGAN_RUN_TOKEN", None)
    return env


def _final_state(folder: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(folder / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["giugan"]["generator_iteration"] == ITERATIONS
    return checkpoint["state_dict"]


def _uninterrupted(run: Path) -> dict[str, torch.Tensor]:
    done = subprocess.run(_command(run, "reference"), cwd=run, env=_env(), capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return _final_state(run / "runs" / "reference")


def _iteration_of_last(folder: Path) -> int:
    path = folder / "checkpoints" / "last.ckpt"
    if not path.exists():
        return 0
    return int(torch.load(path, map_location="cpu", weights_only=False)["giugan"]["generator_iteration"])


def _stop_at(command: list[str], run: Path, folder: Path, signum: int, after_iteration: int) -> int:
    """Start (or resume) the run and send ``signum`` once its log shows ``after_iteration``."""
    resume = ["--ckpt_path", "last"] if (folder / "checkpoints" / "last.ckpt").exists() else []
    process = subprocess.Popen([*command, *resume], cwd=run, env=_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    metrics = folder / "metrics.csv"
    before = metrics.stat().st_mtime_ns if metrics.exists() else None
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        # only rows this process wrote count (it rewrites the file when training starts)
        written = metrics.exists() and metrics.stat().st_mtime_ns != before
        rows = _rows(metrics) if written else []
        if rows and int(float(rows[-1]["generator_iteration"])) >= after_iteration:
            process.send_signal(signum)
            break
        time.sleep(0.02)
    code = process.wait(timeout=120)
    process.stderr.close()
    return code


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as handle:
            return [row for row in csv.DictReader(handle) if row.get("generator_iteration")]
    except (OSError, csv.Error):
        return []


def test_sigterm_mid_epoch_then_resume_is_bitwise_equal_to_an_uninterrupted_run(tmp_path: Path) -> None:
    reference = _uninterrupted(tmp_path)
    command = _command(tmp_path, "stopped")
    folder = tmp_path / "runs" / "stopped"
    # iteration 10 is in the middle of the second epoch (7 iterations per epoch)
    assert _stop_at(command, tmp_path, folder, signal.SIGTERM, 10) == 143
    assert _iteration_of_last(folder) % 7 != 0
    resumed = subprocess.run([*command, "--ckpt_path", "last"], cwd=tmp_path, env=_env(),
                             capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ours = _final_state(folder)
    assert ours.keys() == reference.keys()
    assert [k for k in ours if not torch.equal(ours[k], reference[k])] == []


def test_random_stops_by_sigterm_sigint_and_sigkill_change_nothing(tmp_path: Path) -> None:
    reference = _uninterrupted(tmp_path)
    command = _command(tmp_path, "soak")
    folder = tmp_path / "runs" / "soak"
    chooser = random.Random(2026)
    expected_status = {signal.SIGTERM: 143, signal.SIGINT: 130, signal.SIGKILL: -signal.SIGKILL}
    stops = 0
    while stops < 10:
        done = _iteration_of_last(folder)
        if done >= ITERATIONS - 2:
            break
        signum = chooser.choice([signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
        target = min(ITERATIONS - 1, done + chooser.randint(1, 5))
        status = _stop_at(command, tmp_path, folder, signum, target)
        if status == 0:  # it finished before the signal came
            break
        assert status == expected_status[signum], (signum, status)
        stops += 1
    assert stops >= 10
    finish = subprocess.run([*command, "--ckpt_path", "last"], cwd=tmp_path, env=_env(),
                            capture_output=True, text=True, timeout=300, check=False)
    assert finish.returncode == 0, finish.stderr[-3000:]
    ours = _final_state(folder)
    assert [k for k in ours if not torch.equal(ours[k], reference[k])] == []
    # one row per logged generator iteration, as in the uninterrupted run
    logged = [int(float(r["generator_iteration"])) for r in _rows(folder / "metrics.csv")]
    assert logged == [int(float(r["generator_iteration"])) for r in _rows(tmp_path / "runs" / "reference" / "metrics.csv")]
    assert logged == list(range(2, ITERATIONS + 1, 2))
    names = sorted(p.name for p in folder.rglob("*") if p.is_file() and "config" not in p.name)
    assert not [n for n in names if n.endswith(".tmp") or "-v1" in n or n == ".giugan.lock"], names
