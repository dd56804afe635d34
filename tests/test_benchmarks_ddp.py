"""benchmarks/ddp_arrangements.py: its dry run (2 gloo processes, tiny networks) completes, both DDP
arrangements end with the same parameters on every rank, and the record is complete.

No timing is asserted here (speed comparisons live in ``benchmarks/``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 240


def _run_dry(results_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(ROOT / "benchmarks" / "ddp_arrangements.py"), "--dry-run",
               "--results-dir", str(results_dir)]
    # Own session: on a timeout the spawned ranks are killed with the launcher, never left waiting
    # in a collective.
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"ddp_arrangements.py --dry-run ran past {TIMEOUT_S} s:\n{stdout[-3000:]}{stderr[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.mark.slow
def test_dry_run_gives_equal_parameters_for_both_arrangements_and_a_record(tmp_path: Path) -> None:
    result = _run_dry(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "find_unused" in result.stdout and "wrapped_per_network" in result.stdout
    (path,) = tmp_path.glob("ddp_arrangements-*.json")
    (record,) = json.loads(path.read_text())
    assert record["benchmark"] == "ddp_arrangements"
    settings = record["settings"]
    assert settings["dry_run"] and settings["world_size"] == 2 and settings["backend"] == "gloo"
    assert settings["iterations"] == 2 and settings["rounds"] == 1 and settings["torch_threads"] == 1
    (round_,) = record["rounds"]
    for name in ("find_unused", "wrapped_per_network"):
        assert round_[f"{name}_seconds"] > 0 and record[f"{name}_it_per_s"] > 0
    assert record["ratio"] > 0
    assert record["ratio"] == pytest.approx(
        record["wrapped_per_network_it_per_s"] / record["find_unused_it_per_s"])
    check = record["check"]
    assert check["passed"] and check["finite"]
    assert check["iterations_each"] == settings["warmup"] + settings["iterations"] * settings["rounds"]
    tolerance = check["tolerance"]
    assert 0 <= check["max_abs_diff_between_arrangements"] <= tolerance
    assert set(check["max_abs_diff_between_ranks"]) == {"find_unused", "wrapped_per_network"}
    assert all(0 <= diff <= tolerance for diff in check["max_abs_diff_between_ranks"].values())
    # the parameters moved by far more than the tolerance: equality is not the untouched start
    assert check["max_abs_update_from_start"] > 10 * tolerance
