"""``giugan fit`` on 2 and 3 CPU processes through every launcher the README names, with every
callback and logger on, signals, lost ranks, resumes and world-size-independent scores.

Each command runs in its own process group under a hard timeout (``launchers.HARD_TIMEOUT``):
a hang fails the test instead of stalling CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from .launchers import (
    HARD_TIMEOUT,
    Launch,
    environment,
    evaluation_steps,
    launch,
    run_files,
    training_steps,
    wait_for,
    wait_for_files,
    wandb_runs,
)

pytestmark = pytest.mark.slow
ITERATIONS = 6
ROOT = Path(__file__).resolve().parents[2]


def _stop_lines(output: str, name: str) -> list[int]:
    return [int(n) for n in re.findall(rf"Stopped by {name} after generator iteration (\d+)", output)]


def _checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def _assert_same_state(a: Path, b: Path) -> None:
    first, second = _checkpoint(a), _checkpoint(b)
    assert first["giugan"]["generator_iteration"] == second["giugan"]["generator_iteration"]
    for name, value in first["state_dict"].items():
        assert torch.equal(value, second["state_dict"][name]), name


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: the same run on one process."""
    run = launch(tmp_path_factory.mktemp("single"), "single", ITERATIONS)
    assert run.wait() == [0], run.output()[-4000:]
    return run.run_dir()


DDP_CONFIG = ["--config", str(ROOT / "configs" / "trainer" / "ddp.yaml"), "--trainer.accelerator", "cpu"]


@pytest.mark.parametrize(
    ("launcher", "processes", "spelling"),
    [
        ("spawn", 2, DDP_CONFIG),  # the shipped DDP config
        ("spawn", 3, []),  # --trainer.devices 3 alone (Lightning picks DDP)
        ("torchrun", 2, ["--trainer.strategy", "ddp"]),
        ("torchrun_nodes", 2, []),
        ("slurm", 2, []),  # the README's script: configs/trainer/multinode.yaml
    ],
)
def test_every_launcher_writes_the_files_of_one_run(
    launcher: str, processes: int, spelling: list[str], one_process: Path, tmp_path: Path
) -> None:
    run = launch(tmp_path, launcher, ITERATIONS, *spelling, processes=processes)
    codes = run.wait()
    output = run.output()
    assert codes == [0] * len(codes), output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    assert "set_vital" not in output  # no library notice a user cannot act on, on any rank
    assert output.count("find_unused_parameters=True") == 1  # said once, by rank 0
    assert f"DDP over {processes} processes" in output
    folder = run.run_dir()
    # the same files as on one process: grids, numbered/last/best checkpoints, configs, CSV
    assert run_files(folder) == run_files(one_process)
    assert {"samples/iter-00000002.png", "checkpoints/best.ckpt", "checkpoints/last.ckpt",
            "config.yaml", "metrics.csv", "wandb_id"} <= run_files(folder)
    # one CSV row per logged iteration and per evaluation; one W&B run
    assert training_steps(folder) == list(range(1, ITERATIONS + 1))
    assert evaluation_steps(folder) == [3, 6]
    (wandb_run,) = wandb_runs(folder)
    assert len(wait_for_files(wandb_run, "run-*.wandb")) == 1  # wandb's service writes it last
    assert len(list((wandb_run / "files" / "media" / "images").glob("samples_*.png"))) == 3
    last = _checkpoint(folder / "checkpoints" / "last.ckpt")
    assert last["giugan"]["generator_iteration"] == ITERATIONS
    assert not list(folder.rglob("*.tmp")) and not (folder / ".giugan.lock").exists()


def _signal_after_first_checkpoint(run: Launch, signum: int, group: bool) -> None:
    wait_for(run.run_dir() / "checkpoints" / "iter-00000002.ckpt", run)
    for process in run.processes:
        if group:
            os.killpg(process.pid, signum)  # a terminal's Ctrl-C, SLURM's signal to every task
        else:
            process.send_signal(signum)  # the launching process only


def test_sigterm_to_the_launcher_stops_every_rank_together_and_resume_is_exact(tmp_path: Path) -> None:
    stopped = launch(tmp_path / "stopped", "spawn", 400)
    _signal_after_first_checkpoint(stopped, signal.SIGTERM, group=False)
    assert stopped.wait() == [143], stopped.output()[-4000:]
    lines = _stop_lines(stopped.output(), "SIGTERM")
    assert len(lines) == 2 and lines[0] == lines[1], stopped.output()[-3000:]  # both ranks, same iteration
    iteration = lines[0]
    folder = stopped.run_dir()
    assert _checkpoint(folder / "checkpoints" / "last.ckpt")["giugan"]["generator_iteration"] == iteration
    assert not list(folder.rglob("*.tmp")) and not (folder / ".giugan.lock").exists()

    end = iteration + 3
    resumed = launch(tmp_path / "stopped", "spawn", end, "--ckpt_path", "last")
    assert resumed.wait() == [0], resumed.output()[-4000:]
    reference = launch(tmp_path / "reference", "spawn", end)
    assert reference.wait() == [0], reference.output()[-4000:]
    _assert_same_state(folder / "checkpoints" / "last.ckpt", reference.run_dir() / "checkpoints" / "last.ckpt")
    assert training_steps(folder) == list(range(1, end + 1))


@pytest.mark.parametrize(
    ("launcher", "signum", "group", "status"),
    [
        ("spawn", signal.SIGINT, True, 130),  # Ctrl-C in a terminal: every process of the group
        ("slurm", signal.SIGTERM, True, 143),  # SLURM's --signal=TERM@120: every task
        # torchrun forwards SIGTERM to its workers (each exits 143 after last.ckpt) and then
        # ends itself with its own SignalException, status 1: torchrun's behaviour, not ours
        ("torchrun", signal.SIGTERM, False, 1),
    ],
)
def test_a_terminal_slurm_or_torchrun_signal_stops_every_rank_after_one_iteration(
    launcher: str, signum: int, group: bool, status: int, tmp_path: Path
) -> None:
    run = launch(tmp_path, launcher, 400)
    _signal_after_first_checkpoint(run, signum, group=group)
    codes = run.wait()
    assert codes == [status] * len(codes), run.output()[-4000:]
    lines = _stop_lines(run.output(), signal.Signals(signum).name)
    assert len(lines) == 2 and len(set(lines)) == 1, run.output()[-3000:]
    last = _checkpoint(run.run_dir() / "checkpoints" / "last.ckpt")
    assert last["giugan"]["generator_iteration"] == lines[0]
    if launcher != "torchrun":
        assert "Traceback" not in run.output()


@pytest.mark.parametrize("victim", ["child", "launcher"])
def test_a_rank_killed_ends_the_others_with_one_paragraph(victim: str, tmp_path: Path) -> None:
    run = launch(tmp_path, "spawn", 400)
    wait_for(run.run_dir() / "checkpoints" / "iter-00000002.ckpt", run)
    launcher_pid = run.processes[0].pid
    children = _children(launcher_pid)
    assert len(children) == 1
    os.kill(children[0] if victim == "child" else launcher_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    if victim == "child":
        assert run.wait() == [1]
        output = run.output()
        assert f"rank 1 (pid {children[0]}) ended with SIGKILL" in output, output[-3000:]
    else:
        assert run.wait() == [-signal.SIGKILL]
        _wait_gone(children[0], 60)
        output = run.output()
        assert f"rank 0, the launching process (pid {launcher_pid}), is gone" in output, output[-3000:]
    assert time.monotonic() - killed_at < 60
    assert "--ckpt_path last" in output and "Traceback" not in output


def test_a_hung_rank_ends_the_run_after_the_collective_timeout(tmp_path: Path) -> None:
    # the timeout also bounds the start-up rendezvous: long enough for a busy machine's imports
    run = launch(tmp_path, "spawn", 400, "--ddp_timeout_seconds", "20")
    wait_for(run.run_dir() / "checkpoints" / "iter-00000002.ckpt", run)
    (child,) = _children(run.processes[0].pid)
    os.kill(child, signal.SIGSTOP)
    stopped_at = time.monotonic()
    assert run.wait() == [1]
    assert 20 <= time.monotonic() - stopped_at < 80
    output = run.output()
    assert "waited past the timeout (--ddp_timeout_seconds)" in output, output[-3000:]
    _wait_gone(child, 30)  # the hung rank was ended too


def _children(pid: int) -> list[int]:
    """The ranks ``pid`` started (its children running giugan; wandb's service is one too)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == pid
                 and b"giugan" in _command_line(int(p))]
        if found:
            return found
        time.sleep(0.1)
    return []


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] if Path(f"/proc/{pid}/stat").exists() else "X"
        if state == "Z":
            return
        assert time.monotonic() < deadline, f"process {pid} still running"
        time.sleep(0.2)


def _giugan(folder: Path, *args: str, timeout: float = HARD_TIMEOUT) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "giugan", *args], cwd=folder, env=environment(),
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise AssertionError(f"hung: giugan {' '.join(args)}") from error


#: Every score: the shapes judge, and FID/IS/KID/precision-recall on the stand-in extractor.
EVERY_SCORE = [
    "--model.metrics.init_args.fid", "true", "--model.metrics.init_args.inception_score", "true",
    "--model.metrics.init_args.inception_score_splits", "4",
    "--model.metrics.init_args.kid", "true", "--model.metrics.init_args.kid_subset_size", "16",
    "--model.metrics.init_args.kid_subsets", "5", "--model.metrics.init_args.precision_recall", "true",
]
#: Scores that count samples (exact at any world size) and those that sum features (float order).
COUNTED = ("recognisable", "modes_covered", "mode_balance", "precision", "recall", "density", "coverage")
SUMMED = ("judge_frechet", "fid", "is_mean", "is_std", "kid_mean")


def test_a_fixed_generator_scores_the_same_on_1_2_and_3_processes(one_process: Path, tmp_path: Path) -> None:
    scores = {}
    for devices in (1, 2, 3):
        folder = tmp_path / f"world{devices}"
        # (not W&B's folder: its service may still be writing there)
        shutil.copytree(one_process.parents[1], folder, ignore=shutil.ignore_patterns("wandb"))
        run_dir = folder / "runs" / "quickstart"
        result = _giugan(folder, "test", "--config", str(run_dir / "config.yaml"), "--ckpt_path", "last",
                         "--trainer.devices", str(devices), *EVERY_SCORE)
        assert result.returncode == 0, result.stderr[-4000:]
        report = json.loads((run_dir / "eval.json").read_text())
        assert report["protocol"]["world_size"] == devices and report["protocol"]["num_fake"] == 48
        scores[devices] = report
    assert set(COUNTED + SUMMED) <= set(scores[1]), sorted(scores[1])
    for devices in (2, 3):
        for key in COUNTED:
            assert scores[devices][key] == pytest.approx(scores[1][key], abs=1e-6), (devices, key)
        for key in SUMMED:
            assert scores[devices][key] == pytest.approx(scores[1][key], rel=1e-4, abs=1e-5), (devices, key)


@pytest.mark.parametrize(("first", "then"), [(2, 1), (1, 2)])
def test_a_checkpoint_resumes_at_another_world_size(first: int, then: int, tmp_path: Path) -> None:
    run = launch(tmp_path, "spawn" if first > 1 else "single", 4, processes=first)
    assert run.wait() == [0], run.output()[-4000:]
    extended = launch(tmp_path, "spawn" if then > 1 else "single", 6, "--ckpt_path", "last", processes=then)
    codes = extended.wait()
    output = extended.output()
    assert codes == [0], output[-4000:]
    assert f"resumes a {first}-process run on {then}" in output, output[-3000:]
    folder = run.run_dir()
    assert training_steps(folder) == list(range(1, 7))
    assert _checkpoint(folder / "checkpoints" / "last.ckpt")["giugan"]["generator_iteration"] == 6
