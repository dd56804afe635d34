"""benchmarks/gpu_check.py runs its CPU-safe form (``--dry-run``) so that it does not rot between
the rare sessions that have a GPU. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_dry_run_runs_every_step_and_writes_one_record(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry-run", "--results-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        env={"PATH": "/usr/bin:/bin", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1",
             "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads((tmp_path / "gpu_check-dry-run.json").read_text())
    assert record["dry_run"] is True
    assert set(record["steps"]) == {"fit_smoke", "speed", "fid_50k", "ddp_fit"}
    assert all(step["ok"] for step in record["steps"].values()), record["steps"]
    assert record["steps"]["fit_smoke"]["csv_rows"] >= 1
    assert record["steps"]["speed"]["bf16_one_iteration"]["passed"] == 1.0
    ddp = record["steps"]["ddp_fit"]  # the same DDP path as on GPUs, two gloo processes
    assert ddp["devices"] == 2 and ddp["csv_rows"] >= 1 and "checkpoints/best.ckpt" in ddp["files"]


def test_gpu_check_without_cuda_says_how_to_dry_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--results-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "", "HOME": str(tmp_path),
             "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2
    assert "--dry-run" in done.stderr
