"""``giugan sweep``: a table's rows x seeds, one ``giugan fit`` per (row, seed) (docs/sweeps.md).

* ``giugan sweep table1 --seeds 0 1 2``: locally, one run after another; run again after a kill,
  it skips finished runs and resumes started ones with ``--ckpt_path last``;
* ``--on slurm``: one SLURM job array, one task per run (``sbatch``, requeued on preemption);
* ``--on wandb``: a ``wandb sweep`` config, a grid over rows and seeds, for W&B agents;
* ``--dry_run``: each run's state and command, nothing started;
* arguments after ``--`` go to every ``giugan fit`` (e.g. ``-- --config configs/trainer/gpu.yaml``).

Lightning is imported only by the ``giugan fit`` processes.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from giugan.sweeps.definition import Sweep, SweepRun, load_sweep, sweep_file
from giugan.sweeps.runs import RunState, fit_arguments, requeued, run_state

#: Exit statuses of a ``giugan fit`` stopped by SIGINT / SIGTERM: the sweep stops with it.
STOPPED = (130, 143, -signal.SIGINT, -signal.SIGTERM, -signal.SIGKILL)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="giugan sweep",
        description="Run rows x seeds: one `giugan fit --config ROW --model.seed S --run_name ROW-sS` "
        "per pair. Arguments after `--` are passed to every run. docs/sweeps.md.",
    )
    parser.add_argument("rows", nargs="+", help="a sweep name (configs/sweeps/NAME.yaml, e.g. table1), a sweep "
                        "file, or row configs (paths or quoted globs such as 'configs/ablations/table1_*.yaml')")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default: the sweep file's, else 0)")
    parser.add_argument("--name", default=None, help="the sweep's name (default: the sweep file's, else 'sweep')")
    parser.add_argument("--runs_dir", default="runs", help="where the configs' loggers put runs (default runs, "
                        "as every shipped config); the sweep reads each run's state there")
    parser.add_argument("--on", choices=("local", "slurm", "wandb"), default="local",
                        help="local: one run after another here; slurm: submit a job array; wandb: write a "
                        "`wandb sweep` config")
    parser.add_argument("--dry_run", action="store_true", help="print every run's state and command; start nothing")
    parser.add_argument("--task", type=int, default=None, help="run the run of this index (a SLURM array task)")
    parser.add_argument("--row", default=None, help="with --seed: run this one row (a W&B agent's run)")
    parser.add_argument("--seed", type=int, default=None, help="with --row: that row's seed")
    return parser


def main(argv: list[str]) -> int:
    """``giugan sweep ...``; the exit status."""
    words, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    options = _parser().parse_args(words)
    sweep = load_sweep(options.rows, options.seeds, options.name)
    runs_dir = Path(options.runs_dir)
    args = [*sweep.args, *extra]
    if options.task is not None or options.row is not None or options.seed is not None:
        run = _chosen_run(sweep, options)
        return _replace_with_fit(run, runs_dir, args, options.dry_run)
    if options.dry_run or options.on == "local":
        return _run_locally(sweep, runs_dir, args, options.dry_run)
    folder = runs_dir / "sweeps" / sweep.name
    command = _task_command(sweep, options, runs_dir)
    if options.on == "slurm":
        return _submit_array(sweep, folder, command, extra)
    return _write_wandb_sweep(sweep, folder, command, extra)


def _chosen_run(sweep: Sweep, options: argparse.Namespace) -> SweepRun:
    runs = sweep.runs
    if options.task is not None:
        if not 0 <= options.task < len(runs):
            raise ValueError(f"--task {options.task}: sweep {sweep.name!r} has {len(runs)} runs, indices 0 to "
                             f"{len(runs) - 1}; the job array must be 0-{len(runs) - 1} (resubmit with --on slurm).")
        return runs[options.task]
    if options.row is None or options.seed is None:
        raise ValueError("--row and --seed go together (one run of the sweep); give both, or neither.")
    for run in runs:
        if run.row == options.row and run.seed == options.seed:
            return run
    raise ValueError(f"--row {options.row} --seed {options.seed}: not a run of sweep {sweep.name!r} (rows "
                     f"{', '.join(r for r, _ in sweep.rows)}; seeds {', '.join(map(str, sweep.seeds))}).")


def _describe(state: RunState) -> str:
    if state is RunState.STARTED and requeued():
        return "resuming a requeued job (giugan fit takes the newest of hpc_ckpt_*.ckpt and last.ckpt)"
    return {RunState.NEW: "starting", RunState.STARTED: "resuming with --ckpt_path last",
            RunState.FINISHED: "finished, skipped"}[state]


def _replace_with_fit(run: SweepRun, runs_dir: Path, args: list[str], dry_run: bool) -> int:
    """One run (an array task or a W&B agent's run): this process becomes its ``giugan fit``."""
    state = run_state(runs_dir / run.name)
    print(f"[giugan] sweep run {run.name}: {_describe(state)}", flush=True)
    if state is RunState.FINISHED or dry_run:
        return 0
    command = [sys.executable, "-m", "giugan", *fit_arguments(run, state, args)]
    os.execv(sys.executable, command)  # signals (SLURM's requeue signal) reach giugan fit itself
    return 0  # not reached


def _run_locally(sweep: Sweep, runs_dir: Path, args: list[str], dry_run: bool) -> int:
    """Every run, one after another; finished runs are skipped, started ones resumed."""
    runs, failed = sweep.runs, []
    for index, run in enumerate(runs):
        state = run_state(runs_dir / run.name)
        words = fit_arguments(run, state, args)
        print(f"[giugan] sweep {sweep.name}: run {index + 1}/{len(runs)} {run.name}: {_describe(state)}"
              + ("" if state is RunState.FINISHED else f"\n  giugan {shlex.join(words)}"), flush=True)
        if state is RunState.FINISHED or dry_run:
            continue
        status = _run_child([sys.executable, "-m", "giugan", *words])
        if status in STOPPED:
            print(f"[giugan] sweep {sweep.name}: stopped during {run.name} (status {status}); run the same "
                  f"command again to resume it and run the rest.", file=sys.stderr, flush=True)
            return status if status > 0 else 128 - status
        if status != 0:
            failed.append(f"{run.name} (status {status})")
    if failed:
        print(f"[giugan] sweep {sweep.name}: {len(failed)} of {len(runs)} runs failed: {', '.join(failed)}; "
              f"their output above says why. The others finished.", file=sys.stderr, flush=True)
        return 1
    if not dry_run:
        print(f"[giugan] sweep {sweep.name}: all {len(runs)} runs finished; `giugan report {runs_dir}` "
              f"gathers them.", flush=True)
    return 0


def _run_child(command: list[str]) -> int:
    """Run ``giugan fit``; a SIGTERM to the sweep is passed on (Ctrl-C reaches both from the terminal)."""
    process = subprocess.Popen(command)

    def forward(signum: int, frame: Any) -> None:
        process.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    interrupt = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        return process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, interrupt)


def _task_command(sweep: Sweep, options: argparse.Namespace, runs_dir: Path) -> list[str]:
    """``python -m giugan sweep <the same sweep, absolute paths> --name N --seeds ... --runs_dir R``."""
    file = sweep_file(options.rows[0]) if len(options.rows) == 1 else None
    specs = [str(file.resolve())] if file else [str(config) for _, config in sweep.rows]
    return [sys.executable, "-m", "giugan", "sweep", *specs, "--name", sweep.name,
            "--seeds", *map(str, sweep.seeds), "--runs_dir", str(runs_dir.resolve())]


def _submit_array(sweep: Sweep, folder: Path, command: list[str], extra: list[str]) -> int:
    from giugan.sweeps.slurm import sbatch_script, submit

    logs = (folder / "logs").resolve()
    logs.mkdir(parents=True, exist_ok=True)
    script = folder / f"{sweep.name}.sbatch"
    script.write_text(sbatch_script(sweep.name, len(sweep.runs), command, extra, Path.cwd(), logs, sweep.slurm))
    print(f"[giugan] sweep {sweep.name}: {len(sweep.runs)} array tasks in {script}", flush=True)
    print(submit(script), flush=True)
    return 0


def _write_wandb_sweep(sweep: Sweep, folder: Path, command: list[str], extra: list[str]) -> int:
    import yaml

    from giugan.sweeps.wandb_sweep import wandb_sweep_config

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sweep.name}.wandb.yaml"
    agent_command = ["python", *command[1:]]  # the agent's interpreter
    path.write_text(yaml.safe_dump(wandb_sweep_config(sweep, agent_command, extra), sort_keys=False))
    print(f"[giugan] sweep {sweep.name}: W&B grid of {len(sweep.rows)} rows x {len(sweep.seeds)} seeds in {path}\n"
          f"  wandb sweep {path}    # prints the sweep id\n  wandb agent <entity>/<project>/<sweep id>",
          flush=True)
    return 0
