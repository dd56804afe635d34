"""The run lifecycle through the real CLI: refused starts change nothing, one owner per run
directory, resume records, checks before data, readable errors, signals."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from giugan.cli import main
from giugan.training.run_directory import LOCK_NAME

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--model.generator.init_args.conv_dim", "4",
    "--model.generator.init_args.inserts.1.init_args.channels", "16",
    "--model.discriminator.init_args.conv_dim", "4",
    "--data.init_args.batch_size", "4",
    "--data.init_args.num_images", "16",
    "--data.init_args.eval_batch_size", "8",
    "--model.metrics", "null",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
    "--samples.every", "100",
    "--checkpoint.every_n_generator_iterations", "2",
]  # fmt: skip

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.delenv("GIUGAN_RUN_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "logger.yaml").write_text(
        "trainer:\n  logger:\n    - class_path: giugan.training.loggers.CSVLogger\n"
        f"      init_args: {{save_dir: {tmp_path / 'runs'}, name: tiny, version: ''}}\n"
    )
    return tmp_path


def command(run: Path, *extra: str) -> list[str]:
    return ["fit", "--config", str(ROOT / "configs" / "quickstart.yaml"), "--config",
            str(run / "logger.yaml"), *TINY, *extra]


def fit(run: Path, *extra: str) -> int:
    return main(command(run, *extra))


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its sha256 (and every folder, as 'dir')."""
    if not folder.exists():
        return {}
    state = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        state[key] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return state


def finished_run(run: Path, iterations: int = 4) -> Path:
    assert fit(run, "--model.generator_iterations", str(iterations)) == 0
    return run / "runs" / "tiny"


def test_refused_resumes_leave_the_run_directory_byte_for_byte(run: Path, capsys) -> None:
    folder = finished_run(run)
    before = snapshot(run / "runs")
    cases = {
        "other architecture": ["--model.discriminator.init_args.conv_dim", "8", "--ckpt_path", "last",
                               "--model.generator_iterations", "8"],
        "already finished": ["--ckpt_path", "last", "--model.generator_iterations", "4"],
        "not a checkpoint": ["--ckpt_path", str(folder / "config.yaml"), "--model.generator_iterations", "8"],
    }
    expected = {
        "other architecture": "different architecture",
        "already finished": "nothing left to train",
        "not a checkpoint": "is not a PyTorch checkpoint",
    }
    for name, extra in cases.items():
        capsys.readouterr()
        assert fit(run, *extra) == 2, name
        err = capsys.readouterr().err
        assert expected[name] in err, (name, err)
        assert "Traceback" not in err
        assert [line for line in err.splitlines() if line.startswith("giugan: ")] == [
            next(line for line in err.splitlines() if expected[name] in line)
        ]  # the message is one paragraph
        assert snapshot(run / "runs") == before, name


def test_ckpt_path_last_without_last_ckpt_lists_what_exists_and_starts_nothing(run: Path, capsys) -> None:
    folder = finished_run(run)
    (folder / "checkpoints" / "last.ckpt").unlink()
    before = snapshot(run / "runs")
    capsys.readouterr()
    assert fit(run, "--model.generator_iterations", "8", "--ckpt_path", "last") == 2
    err = capsys.readouterr().err
    assert "there is no" in err and "last.ckpt" in err and "iter-00000004.ckpt" in err
    assert snapshot(run / "runs") == before


def test_a_resume_keeps_config_yaml_and_writes_its_own_beside_it(run: Path) -> None:
    folder = finished_run(run)
    original = (folder / "config.yaml").read_bytes()
    assert fit(run, "--model.generator_iterations", "6", "--ckpt_path", "last") == 0
    assert (folder / "config.yaml").read_bytes() == original
    resumed = (folder / "config-resume-00000004.yaml").read_text()
    assert "generator_iterations: 6" in resumed
    assert not (folder / LOCK_NAME).exists()  # released at the end


def test_a_second_run_in_a_directory_in_use_is_refused_and_changes_nothing(run: Path, capsys) -> None:
    folder = run / "runs" / "tiny"
    folder.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (folder / LOCK_NAME).write_text(json.dumps(
            {"pid": holder.pid, "host": socket.gethostname(), "started": "now", "token": "other"}))
        before = snapshot(run / "runs")
        capsys.readouterr()
        assert fit(run, "--model.generator_iterations", "2") == 2
        err = capsys.readouterr().err
        assert f"is in use by process {holder.pid}" in err
        assert snapshot(run / "runs") == before
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_dead_process_is_reported_and_taken_over(run: Path) -> None:
    folder = run / "runs" / "tiny"
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (folder / LOCK_NAME).write_text(json.dumps(
        {"pid": dead.pid, "host": socket.gethostname(), "started": "then", "token": "gone"}))
    with pytest.warns(UserWarning, match=f"left by process {dead.pid}"):
        assert fit(run, "--model.generator_iterations", "2") == 0
    assert not (folder / LOCK_NAME).exists()


def test_a_lock_from_another_host_is_never_taken_over(run: Path, capsys) -> None:
    folder = run / "runs" / "tiny"
    folder.mkdir(parents=True)
    (folder / LOCK_NAME).write_text(json.dumps(
        {"pid": 1, "host": "another-node", "started": "then", "token": "theirs"}))
    capsys.readouterr()
    assert fit(run, "--model.generator_iterations", "2") == 2
    assert "another-node" in capsys.readouterr().err


def test_mismatched_image_sizes_are_refused_before_any_data(run: Path, capsys) -> None:
    assert fit(run, "--data.init_args.image_size", "64", "--model.generator_iterations", "2") == 2
    err = capsys.readouterr().err
    for fragment in ("data.init_args.image_size = 64", "the generator's output = 32",
                     "the discriminator's input = 32"):
        assert fragment in err
    assert not (run / "runs").exists()


def test_overriding_the_seed_works_with_a_logger_on(run: Path) -> None:
    assert fit(run, "--model.seed", "7", "--model.generator_iterations", "2") == 0
    saved = (run / "runs" / "tiny" / "config.yaml").read_text()
    assert "seed: 7" in saved


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("model:\n  n_critic: [1\n", "line 3, column 1"),
        ("", "is empty"),
    ],
    ids=["unreadable_yaml", "empty_config"],
)
def test_bad_config_files_give_one_paragraph_and_status_2(
    run: Path, capsys, content: str, fragment: str
) -> None:
    (run / "typo.yaml").write_text(content)
    assert main(["fit", "--config", str(run / "typo.yaml")]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "typo.yaml" in err
    assert "Traceback" not in err and err.count("giugan: ") == 1, err


def test_debug_variable_shows_the_full_traceback(run: Path, monkeypatch) -> None:
    monkeypatch.setenv("GIUGAN_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        fit(run, "--ckpt_path", str(run / "missing.ckpt"))


def _spawn_fit(run: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("GIUGAN_RUN_TOKEN", None)
    return subprocess.Popen(
        [sys.executable, "-m", "giugan", *command(run, *extra)],
        cwd=run, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_finishes_the_iteration_writes_last_ckpt_and_exits_non_zero(
    run: Path, signum: int, status: int
) -> None:
    folder = run / "runs" / "tiny" / "checkpoints"
    process = _spawn_fit(run, "--model.generator_iterations", "100000")
    deadline = time.monotonic() + 120
    while not (folder / "iter-00000002.ckpt").exists():
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signum)
    process.send_signal(signum)  # a second one during the stop is ignored, never aborts the save
    code = process.wait(timeout=120)
    err = process.stderr.read().decode()
    assert code == status, err[-3000:]
    assert "last.ckpt was written" in err and "--ckpt_path last" in err
    assert not list(folder.glob(".*.tmp"))  # no half file
    import torch

    saved = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["giugan"]["generator_iteration"] >= 2
    assert not (folder.parent / LOCK_NAME).exists()


def test_a_second_ctrl_c_during_the_checkpoint_save_is_ignored(tmp_path: Path, capsys) -> None:
    """In process: Ctrl-C at iteration 2, and again while last.ckpt is being written."""
    import torch
    from lightning.pytorch import Callback

    from giugan import compat
    from giugan.training.callbacks.signals import GracefulStop

    from .helpers import tiny_data, tiny_module, tiny_trainer

    class CtrlCAtIterationTwo(Callback):
        def on_train_batch_end(self, trainer, pl_module, *args):
            if pl_module.generator_iteration == 2:
                os.kill(os.getpid(), signal.SIGINT)

    stop = GracefulStop()
    trainer = tiny_trainer(tmp_path, every=100)
    trainer.callbacks.extend([stop, CtrlCAtIterationTwo()])
    save = trainer.save_checkpoint

    def save_while_interrupted(path, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C, during the save
        return save(path, *args, **kwargs)

    trainer.save_checkpoint = save_while_interrupted
    module = tiny_module(generator_iterations=50)
    with pytest.raises(BaseException) as info:
        trainer.fit(module, datamodule=tiny_data())
    assert compat.is_stop_after_batch(info.value)
    assert "SIGINT again ignored: still writing the checkpoint" in capsys.readouterr().err
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["giugan"]["generator_iteration"] == 2
    assert stop.stopped.signum == signal.SIGINT
    # after the stop, a Ctrl-C acts as usual again (Python's KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_devices_that_the_strategy_would_drop_are_refused(run: Path, capsys) -> None:
    assert fit(run, "--trainer.devices", "2", "--trainer.strategy", "single_device",
               "--model.generator_iterations", "2") == 2
    err = capsys.readouterr().err
    assert "trainer.devices=2" in err and "SingleDeviceStrategy" in err
    assert not (run / "runs").exists()


@pytest.mark.slow
def test_slurm_preemption_requeue_resumes_by_itself(run: Path) -> None:
    """Simulated SLURM: the requeue signal (SIGUSR1) saves hpc_ckpt_1.ckpt and calls
    ``scontrol requeue``; SLURM then ends the job (SIGTERM); the requeued job runs the same
    command (SLURM_RESTART_COUNT=1) and continues from the saved iteration."""
    bin_dir = run / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f"#!/bin/sh\necho \"$@\" >> {run / 'scontrol.log'}\n")
    (bin_dir / "scontrol").chmod(0o755)
    root = run / "runs" / "tiny"
    slurm = {"SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1", "SLURM_PROCID": "0",
             "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_JOB_ID": "4242",
             "SLURM_JOB_NAME": "giugan", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **slurm}
    env.pop("GIUGAN_RUN_TOKEN", None)
    args = [sys.executable, "-m", "giugan", *command(run, "--trainer.default_root_dir", str(root),
                                                      "--model.generator_iterations", "100000")]
    process = subprocess.Popen(args, cwd=run, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (root / "checkpoints" / "iter-00000002.ckpt").exists():
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGUSR1)
    while not (run / "scontrol.log").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read().decode()[-3000:]
        time.sleep(0.05)
    assert (run / "scontrol.log").read_text().split() == ["requeue", "4242"]
    assert list(root.glob("hpc_ckpt_*.ckpt"))
    process.send_signal(signal.SIGTERM)  # SLURM ends the requeued job's current run
    assert process.wait(timeout=120) == 143
    process.stderr.close()
    import torch

    stopped_at = torch.load(root / "checkpoints" / "last.ckpt", map_location="cpu",
                            weights_only=False)["giugan"]["generator_iteration"]
    target = str(stopped_at + 3)
    again = subprocess.run([*args[:-1], target], cwd=run, env={**env, "SLURM_RESTART_COUNT": "1"},
                           capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (root / f"config-resume-{stopped_at:08d}.yaml").exists()
    final = torch.load(root / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert final["giugan"]["generator_iteration"] == int(target)
