"""Start ``giugan fit`` as users launch it on several processes (CPU, gloo), under a hard timeout.

Every launcher of the README: ranks spawned by ``giugan fit`` itself (Lightning's launcher),
``torchrun --nproc_per_node N``, two "nodes" on localhost with torchrun's c10d rendezvous (two
background processes), and the README's SLURM script simulated (each rank started with the
``SLURM_*`` variables that ``srun`` sets). The config is the shipped quickstart shrunk to tiny
networks, with the CSV and W&B (offline) loggers, sample grids, evaluation (the shapes judge) and
checkpoints on at short cadence.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tiny_quickstart import QUICKSTART, ROOT, TINY_QUICKSTART

#: The quickstart shrunk: tiny networks and data, every callback at a cadence of 2 or 3 iterations.
TINY = [
    *TINY_QUICKSTART,
    "--model.eval_every", "3", "--samples.every", "2", "--samples.num_samples", "16",
    "--checkpoint.every_n_generator_iterations", "2",
]
#: Seconds any one command may take before the test fails (a hang is a failure, never a stall).
HARD_TIMEOUT = 240


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(**extra: str) -> dict[str, str]:
    # No WANDB_* of this process: an in-process W&B test leaves WANDB_SERVICE pointing at its own
    # wandb-core, which would then write (or not yet write) the runs of these commands.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "WANDB_", "GIUGAN_"))}
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "NODE_RANK"):
        env.pop(name, None)
    env.update(WANDB_MODE="offline", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    return env


def fit_arguments(iterations: int, *extra: str) -> list[str]:
    return ["fit", "--config", QUICKSTART, *TINY, "--model.generator_iterations", str(iterations), *extra]


def torchrun() -> list[str]:
    """The ``torchrun`` beside this Python (the same program as ``python -m torch.distributed.run``)."""
    script = Path(sys.executable).with_name("torchrun")
    return [str(script)] if script.exists() else [sys.executable, "-m", "torch.distributed.run"]


@dataclass
class Launch:
    """Processes started for one run (several for launchers that start every rank themselves)."""

    folder: Path
    processes: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    #: Held for the processes' lifetime (e.g. the rendezvous store of ``torchrun_nodes``).
    keep_alive: list[object] = field(default_factory=list)

    def wait(self, timeout: float = HARD_TIMEOUT) -> list[int]:
        """Exit statuses of all processes; kills everything and fails when past ``timeout``."""
        deadline = self.started + timeout
        codes = []
        for process in self.processes:
            try:
                codes.append(process.wait(timeout=max(1.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"hung: still running after {timeout} s\n{self.output()[-4000:]}") from None
        self.wall = time.monotonic() - self.started
        return codes

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)

    def output(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.logs if log.exists())

    def run_dir(self, name: str = "quickstart") -> Path:
        return self.folder / "runs" / name


def _start(folder: Path, command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    handle = open(log, "wb")  # noqa: SIM115 - closed when the process object is collected
    return subprocess.Popen(command, cwd=folder, env=env, stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True)


def launch(folder: Path, launcher: str, iterations: int, *extra: str, processes: int = 2) -> Launch:
    """Start a fit of ``iterations`` generator iterations with ``launcher`` in ``folder``.

    ``launcher``: ``single`` (one process), ``spawn`` (``giugan fit --trainer.devices N``),
    ``torchrun``, ``torchrun_nodes`` (two one-process nodes, c10d rendezvous) or ``slurm``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    result = Launch(folder)
    module = [sys.executable, "-m", "giugan"]
    if launcher == "single":
        commands = [(module + fit_arguments(iterations, *extra), environment())]
    elif launcher == "spawn":
        commands = [(module + fit_arguments(iterations, *extra, "--trainer.devices", str(processes)), environment())]
    elif launcher == "torchrun":
        command = torchrun() + ["--nproc_per_node", str(processes), "--master_port", str(free_port()),
                                "-m", "giugan"] + fit_arguments(iterations, *extra, "--trainer.devices", str(processes))
        commands = [(command, environment())]
    elif launcher == "torchrun_nodes":
        # The rendezvous store is this process's, as a cluster's store outlives its agents: when
        # one of the agents hosts it, torchrun's exit barrier races with that agent's exit (the
        # other agent may log a DistNetworkError traceback after a successful run; torchrun's).
        from torch.distributed import TCPStore

        port = free_port()
        result.keep_alive.append(TCPStore("localhost", port, is_master=True, wait_for_workers=False))
        commands = [
            (torchrun() + ["--nnodes", "2", "--nproc_per_node", "1", "--node_rank", str(node),
                           "--rdzv_backend", "c10d", "--rdzv_endpoint", f"localhost:{port}",
                           "--rdzv_id", "giugan-test", "--rdzv_conf", "is_host=false",
                           "-m", "giugan"]
             + fit_arguments(iterations, "--trainer.num_nodes", "2", "--trainer.devices", "1", *extra),
             environment())
            for node in range(2)
        ]
    elif launcher == "slurm":
        # What `srun` gives each task of `#SBATCH --nodes=1 --ntasks-per-node=N` (the README's script).
        shared = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "giugan_test", "SLURM_NNODES": "1",
                  "SLURM_NTASKS": str(processes), "SLURM_NTASKS_PER_NODE": str(processes),
                  "SLURM_NODELIST": "localhost", "SLURM_JOB_NODELIST": "localhost", "SLURM_NODEID": "0",
                  "MASTER_PORT": str(free_port())}
        command = module + fit_arguments(
            iterations, "--config", str(ROOT / "configs" / "trainer" / "multinode.yaml"),
            "--trainer.accelerator", "cpu", "--trainer.num_nodes", "1", "--trainer.devices", str(processes), *extra,
        )
        commands = [
            (command, environment(**shared, SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank)))
            for rank in range(processes)
        ]
    else:
        raise ValueError(launcher)
    for index, (command, env) in enumerate(commands):
        log = folder / f"launch-{index}.log"
        result.logs.append(log)
        result.processes.append(_start(folder, command, log, env))
    return result


def wait_for(path: Path, launch: Launch, timeout: float = HARD_TIMEOUT) -> None:
    """Wait until ``path`` exists (the run got that far); fail if the run ended or hung first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if any(p.poll() is not None for p in launch.processes):
            raise AssertionError(f"the run ended before {path} appeared\n{launch.output()[-4000:]}")
        if time.monotonic() > deadline:
            launch.kill()
            raise AssertionError(f"{path} never appeared\n{launch.output()[-4000:]}")
        time.sleep(0.1)


def wait_for_files(folder: Path, pattern: str, timeout: float = 30.0) -> list[Path]:
    """The files matching ``pattern`` in ``folder``, waiting up to ``timeout`` for the first: wandb's
    service process may still be writing an offline run when the command has returned."""
    deadline = time.monotonic() + timeout
    while not (found := sorted(folder.glob(pattern))) and time.monotonic() < deadline:
        time.sleep(0.25)
    return found


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def training_steps(run_dir: Path) -> list[int]:
    """The ``step`` of every training row (those with a critic loss) of ``metrics.csv``."""
    return [int(float(r["step"])) for r in csv_rows(run_dir) if r.get("loss_d")]


def evaluation_steps(run_dir: Path) -> list[int]:
    return [int(float(r["step"])) for r in csv_rows(run_dir) if r.get("eval/judge_frechet")]


def run_files(run_dir: Path) -> set[str]:
    """The run's files, W&B's folder reduced to its kinds of file (names hold times and hashes)."""
    names = set()
    for path in run_dir.rglob("*"):
        if path.is_dir():
            continue
        relative = path.relative_to(run_dir)
        if relative.parts[0] == "wandb":
            continue
        names.add(str(relative))
    return names


def wandb_runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*"))


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
