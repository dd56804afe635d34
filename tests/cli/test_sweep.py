"""``giugan sweep`` through the real command line: two tiny rows x two seeds.

* locally, one run after another; a SIGKILL of the whole sweep in the middle of its second run,
  then the same command again: the finished run is skipped (its checkpoint untouched), the killed
  one resumes from ``last.ckpt`` (``config-resume-*.yaml``), the other two start;
* a SIGTERM to the sweep is passed on: the run in progress saves ``last.ckpt``, all exit 143;
* as a SLURM job array, through a fake ``sbatch``/``srun`` on PATH that runs each array task with
  ``SLURM_ARRAY_TASK_ID`` set: the same four runs; a preempted task requeued by SLURM
  (``SLURM_RESTART_COUNT=1``) resumes its run by itself; submitting again skips them all;
* as a W&B grid: the ``wandb sweep`` YAML, and its command for one (row, seed) trains that run;
* bad input: one paragraph, exit status 2, no file written.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from giugan.cli import main
from giugan.sweeps.runs import RunState, checkpoint_progress, run_state

from .sweep_helpers import (
    HARD_TIMEOUT,
    ITERATIONS,
    ROWS,
    SEEDS,
    TINY_RUN_ARGS,
    environment,
    giugan,
    run_tiny_sweep,
    write_tiny_sweep,
)

pytestmark = pytest.mark.slow
RUN_NAMES = [f"{row}-s{seed}" for row in ROWS for seed in SEEDS]


def _evaluated_iterations(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("generator_iteration")]
    return sorted({int(float(r["generator_iteration"])) for r in rows if r.get("eval/judge_frechet")})


def _assert_all_finished(runs: Path) -> None:
    for name in RUN_NAMES:
        assert run_state(runs / name) is RunState.FINISHED, name
        assert checkpoint_progress(runs / name / "checkpoints" / "last.ckpt") == (ITERATIONS, ITERATIONS)
        assert _evaluated_iterations(runs / name) == [5, 10, 15, 20]
        saved = yaml.safe_load((runs / name / "config.yaml").read_text())
        assert saved["model"]["seed"] == int(name[-1])
        assert saved["model"]["loss"]["init_args"]["gp_weight"] == (5.0 if name.startswith("tiny_b") else 10.0)


def test_a_local_sweep_killed_midway_skips_finished_runs_and_resumes_the_killed_one(tmp_path: Path) -> None:
    write_tiny_sweep(tmp_path)
    runs = tmp_path / "runs"
    second = runs / RUN_NAMES[1] / "checkpoints" / "last.ckpt"
    log = tmp_path / "first-attempt.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "giugan", "sweep", "tiny.yaml", "--", *TINY_RUN_ARGS], cwd=tmp_path,
            env=environment(), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + HARD_TIMEOUT
        try:
            while not second.is_file():  # the second run wrote its first checkpoint (iteration 2)
                assert process.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.01)
        finally:
            os.killpg(process.pid, signal.SIGKILL)  # the sweep and its giugan fit, at once
            process.wait(timeout=60)
    assert run_state(runs / RUN_NAMES[0]) is RunState.FINISHED
    assert run_state(runs / RUN_NAMES[1]) is RunState.STARTED
    assert not (runs / RUN_NAMES[2]).exists() and not (runs / RUN_NAMES[3]).exists()
    finished_before = (runs / RUN_NAMES[0] / "checkpoints" / "last.ckpt").stat().st_mtime_ns

    result = run_tiny_sweep(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert f"run 1/4 {RUN_NAMES[0]}: finished, skipped" in out
    assert f"run 2/4 {RUN_NAMES[1]}: resuming with --ckpt_path last" in out
    assert f"run 3/4 {RUN_NAMES[2]}: starting" in out and f"run 4/4 {RUN_NAMES[3]}: starting" in out
    assert "all 4 runs finished" in out
    assert (runs / RUN_NAMES[0] / "checkpoints" / "last.ckpt").stat().st_mtime_ns == finished_before
    # Only the killed run was resumed (a resume saves its config as config-resume-<iteration>.yaml).
    resumed = {name for name in RUN_NAMES if list((runs / name).glob("config-resume-*.yaml"))}
    assert resumed == {RUN_NAMES[1]}
    _assert_all_finished(runs)

    again = run_tiny_sweep(tmp_path, "--dry_run")
    assert again.returncode == 0 and again.stdout.count("finished, skipped") == 4


def test_a_sigterm_to_a_local_sweep_stops_the_run_in_progress_with_a_checkpoint(tmp_path: Path) -> None:
    write_tiny_sweep(tmp_path)
    runs = tmp_path / "runs"
    second = runs / RUN_NAMES[1] / "checkpoints" / "last.ckpt"
    process = subprocess.Popen(
        [sys.executable, "-m", "giugan", "sweep", "tiny.yaml", "--", *TINY_RUN_ARGS], cwd=tmp_path,
        env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + HARD_TIMEOUT
    try:
        while not second.is_file():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)  # to the sweep alone: it passes it on to giugan fit
        _, stderr = process.communicate(timeout=HARD_TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 143, stderr[-3000:]
    assert f"stopped during {RUN_NAMES[1]} (status 143); run the same command again" in stderr
    assert run_state(runs / RUN_NAMES[0]) is RunState.FINISHED
    assert run_state(runs / RUN_NAMES[1]) is RunState.STARTED  # stopped with its own last.ckpt
    assert not (runs / RUN_NAMES[2]).exists()
    assert not list((runs / RUN_NAMES[1]).glob(".giugan.lock"))  # released: it ended cleanly


FAKE_SBATCH = """#!/bin/bash
# Simulated SLURM: run every task of the script's --array one after another, as sbatch would.
script="$1"
range=$(sed -n 's/^#SBATCH --array=\\([0-9]*\\)-\\([0-9]*\\).*/\\1 \\2/p' "$script")
set -- $range
for task in $(seq "$1" "$2"); do
  SLURM_ARRAY_JOB_ID=4242 SLURM_ARRAY_TASK_ID=$task SLURM_JOB_ID=$((5000 + task)) \\
    bash "$script" > "{logs}/task-$task.out" 2>&1 || echo "task $task failed" >> "{logs}/failed"
done
echo "Submitted batch job 4242"
"""


def test_a_slurm_array_runs_one_task_per_row_and_seed(tmp_path: Path) -> None:
    write_tiny_sweep(tmp_path)
    bin_folder, logs = tmp_path / "bin", tmp_path / "slurm-logs"
    bin_folder.mkdir()
    logs.mkdir()
    (bin_folder / "sbatch").write_text(FAKE_SBATCH.replace("{logs}", str(logs)))
    (bin_folder / "srun").write_text('#!/bin/bash\nexec "$@"\n')
    for tool in ("sbatch", "srun"):
        (bin_folder / tool).chmod(0o755)

    result = giugan(tmp_path, "sweep", "tiny.yaml", "--on", "slurm", "--", *TINY_RUN_ARGS, extra_path=bin_folder)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Submitted batch job 4242" in result.stdout
    assert not (logs / "failed").exists(), (logs / "failed").read_text()
    script = (tmp_path / "runs" / "sweeps" / "tiny" / "tiny.sbatch").read_text()
    for line in ("#SBATCH --array=0-3", "#SBATCH --requeue", "#SBATCH --signal=USR1@120", "#SBATCH --job-name=tiny"):
        assert line in script.splitlines()
    for task, name in enumerate(RUN_NAMES):
        assert f"sweep run {name}: starting" in (logs / f"task-{task}.out").read_text()
    _assert_all_finished(tmp_path / "runs")

    # A preempted task, requeued by SLURM: its run stopped at iteration 10 (last.ckpt set back to the
    # iteration-10 checkpoint, what a SIGTERM there leaves); the requeued task resumes it by itself.
    preempted = tmp_path / "runs" / RUN_NAMES[3]
    shutil.copyfile(preempted / "checkpoints" / "iter-00000010.ckpt", preempted / "checkpoints" / "last.ckpt")
    env = environment(bin_folder)
    env.update(SLURM_ARRAY_JOB_ID="4242", SLURM_ARRAY_TASK_ID="3", SLURM_JOB_ID="5003", SLURM_RESTART_COUNT="1")
    requeued = subprocess.run(["bash", str(tmp_path / "runs" / "sweeps" / "tiny" / "tiny.sbatch")], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=HARD_TIMEOUT, check=False)
    assert requeued.returncode == 0, requeued.stderr[-3000:]
    assert f"sweep run {RUN_NAMES[3]}: resuming a requeued job" in requeued.stdout
    assert [p.name for p in preempted.glob("config-resume-*.yaml")] == ["config-resume-00000010.yaml"]
    _assert_all_finished(tmp_path / "runs")

    # Submitted again (e.g. after a time limit): every task finds its run finished.
    again = giugan(tmp_path, "sweep", "tiny.yaml", "--on", "slurm", "--", *TINY_RUN_ARGS, extra_path=bin_folder)
    assert again.returncode == 0, again.stderr[-3000:]
    for task, name in enumerate(RUN_NAMES):
        assert f"sweep run {name}: finished, skipped" in (logs / f"task-{task}.out").read_text()


def test_a_wandb_sweep_is_a_grid_over_rows_and_seeds_whose_command_trains_one_run(tmp_path: Path) -> None:
    write_tiny_sweep(tmp_path)
    result = giugan(tmp_path, "sweep", "tiny.yaml", "--on", "wandb", "--", *TINY_RUN_ARGS)
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load((tmp_path / "runs" / "sweeps" / "tiny" / "tiny.wandb.yaml").read_text())
    assert config["method"] == "grid"
    assert config["parameters"] == {"row": {"values": list(ROWS)}, "seed": {"values": [0, 1]}}
    command = config["command"]
    assert command[0] == "${env}" and command[1:4] == ["python", "-m", "giugan"]
    assert command[command.index("${args}") + 1:] == ["--", *TINY_RUN_ARGS]
    # What an agent runs for (tiny_b, 1): W&B puts the interpreter and --row=... --seed=... in.
    words = [w for w in command[1:] if w != "${env}"]
    words[0] = sys.executable
    at = words.index("${args}")
    words[at:at + 1] = ["--row=tiny_b", "--seed=1"]
    agent = subprocess.run(words, cwd=tmp_path, env=environment(), capture_output=True, text=True,
                           timeout=HARD_TIMEOUT, check=False)
    assert agent.returncode == 0, agent.stderr[-3000:]
    assert "sweep run tiny_b-s1: starting" in agent.stdout
    assert run_state(tmp_path / "runs" / "tiny_b-s1") is RunState.FINISHED
    assert sorted(p.name for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")) == [
        "sweeps", "tiny_b-s1"]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["table99"], "neither a sweep name (table1,"),
        (["tiny.yaml", "--task", "4"], "--task 4: sweep 'tiny' has 4 runs, indices 0 to 3"),
        (["tiny.yaml", "--row", "tiny_c", "--seed", "0"], "not a run of sweep 'tiny' (rows tiny_a, tiny_b; seeds 0, 1)"),
        (["tiny.yaml", "--seeds", "1", "1"], "repeat a seed"),
        (["rows/missing_*.yaml"], "no row config matches 'rows/missing_*.yaml'"),
    ],
)
def test_bad_sweeps_are_refused_in_one_paragraph_and_write_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    arguments: list[str], expected: str,
) -> None:
    write_tiny_sweep(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["sweep", *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("giugan: ") and expected in error
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_the_shipped_table_sweeps_name_existing_rows_with_stable_run_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "table1", "--dry_run"]) == 0
    out = capsys.readouterr().out
    for row in ("ablation_table1_middle", "ablation_table1_shallow_d_deep_g", "cifar10_giu_gan",
                "ablation_table1_all", "ablation_table1_only_g", "ablation_table1_only_d"):
        for seed in (0, 1, 2):
            assert f" {row}-s{seed}: starting" in out
            assert f"--model.seed {seed} --run_name {row}-s{seed}" in out
    assert "run 18/18" in out and "configs/trainer/gpu.yaml" in out
