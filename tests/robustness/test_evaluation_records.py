"""The evaluation record through the real command line (``python -m giugan``), read back from disk.

* Best-of-N across a resume: a run evaluated at 2 and 4 (4 the best) and extended to 6 keeps 4 as
  the best in ``best.ckpt`` (its weights), every later checkpoint, the callback state and
  ``eval/best_*``; every checkpoint written at or after an evaluation holds it.
* An evaluation that a signal interrupted runs on resume, once, at its own generator iteration:
  first of all after SIGTERM (the checkpoint marks it due), on its schedule after SIGKILL (the
  checkpoint of that iteration waits for its evaluation); the records and parameters then equal
  an uninterrupted run's.
* ``giugan test``, ``validate`` and ``predict`` stopped by a signal exit 128 + signal and write no
  record (``eval.json``, ``eval-validate.json``); run again, ``test`` writes a whole, truthful one.

Every command runs in a subprocess under a hard timeout; the networks are the quickstart's shrunk.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_quickstart import QUICKSTART, TINY_QUICKSTART

TINY = [
    *TINY_QUICKSTART,
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
    "--checkpoint.every_n_generator_iterations", "2",
]  # fmt: skip
#: Seconds any one command may take before the test fails (a hang is a failure, never a stall).
HARD_TIMEOUT = 180
#: Samples per evaluation where a signal must land inside one (about a second or more of sampling).
LONG_EVALUATION = ["--model.metrics.init_args.num_fake", "4000"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "GIUGAN_"))}
    env.update(WANDB_MODE="disabled", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def _giugan(folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "giugan", *arguments], cwd=folder, env=_env(),
                          capture_output=True, text=True, timeout=HARD_TIMEOUT, check=False)


def _fit(folder: Path, iterations: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return _giugan(folder, "fit", "--config", QUICKSTART, *TINY, "--model.generator_iterations",
                   str(iterations), *extra)


def _signal_when(folder: Path, arguments: list[str], ready: Any, signum: int) -> tuple[int, str]:
    """Start ``giugan *arguments``, send ``signum`` once ``ready()`` is true; (status, output)."""
    log = folder / f"signalled-{time.monotonic_ns()}.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen([sys.executable, "-m", "giugan", *arguments], cwd=folder, env=_env(),
                                   stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + HARD_TIMEOUT
        try:
            while not ready():
                assert process.poll() is None, f"ended before the signal\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"never ready\n{log.read_text()[-3000:]}"
                time.sleep(0.02)
            process.send_signal(signum)
            status = process.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    return status, log.read_text(errors="replace")


def _checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def _record(path: Path) -> dict[str, Any]:
    return _checkpoint(path)["giugan"]["evaluation"]


def _history(path: Path) -> list[int]:
    return [int(r["generator_iteration"]) for r in _record(path)["history"]]


def _best_callback(path: Path) -> dict[str, Any]:
    states = _checkpoint(path)["callbacks"]
    return next(state for name, state in states.items() if name.startswith("BestCheckpoint"))


def _evaluation_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        return [row for row in csv.DictReader(handle) if row.get("eval/judge_frechet")]


def _same_parameters(a: Path, b: Path) -> bool:
    first, second = _checkpoint(a)["state_dict"], _checkpoint(b)["state_dict"]
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


# ---------------------------------------------------------------------------------- best of N
def test_best_of_n_stays_the_best_of_every_evaluation_across_a_resume(tmp_path: Path) -> None:
    # G's learning rate 5e-3 gives the reported shape (seed 0): evaluation 4 the best, the
    # evaluation after the resume (6) better than 2 but not than 4.
    settings = ["--model.eval_every", "2", "--samples.every", "100", "--model.optimizer_g.init_args.lr", "0.005"]
    first = _fit(tmp_path, 4, *settings)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = _fit(tmp_path, 6, *settings, "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    run_dir = tmp_path / "runs" / "quickstart"
    folder = run_dir / "checkpoints"
    rows = _evaluation_rows(run_dir)
    score = {int(float(r["step"])): float(r["eval/judge_frechet"]) for r in rows}
    assert sorted(score) == [2, 4, 6] and len(rows) == 3
    assert score[4] < score[6] < score[2], f"not the reported scenario: {score}"

    # best.ckpt is the checkpoint of iteration 4: its weights, its record.
    assert _checkpoint(folder / "best.ckpt")["giugan"]["generator_iteration"] == 4
    assert _same_parameters(folder / "best.ckpt", folder / "iter-00000004.ckpt")
    # Every checkpoint written at or after an evaluation holds it (iter-4 was written after it).
    assert _history(folder / "iter-00000002.ckpt") == [2]
    assert _history(folder / "iter-00000004.ckpt") == [2, 4]
    for name in ("iter-00000006.ckpt", "last.ckpt"):
        record = _record(folder / name)
        assert _history(folder / name) == [2, 4, 6]
        assert record["best"]["generator_iteration"] == 4 and record["last_iteration"] == 6
        assert record["due"] is None
        assert math.isclose(record["best"]["judge_frechet"], score[4], rel_tol=1e-6)
        # The callback's own state agrees with the record (a resume from it keeps the best).
        state = _best_callback(folder / name)
        assert math.isclose(float(state["best_model_score"]), score[4], rel_tol=1e-6)
        assert state["best_model_path"].endswith("best.ckpt")
    # eval/best_* is the best of every evaluation, also after the resume.
    best_logged = {int(float(r["step"])): float(r["eval/best_judge_frechet"]) for r in rows}
    assert best_logged == {2: score[2], 4: score[4], 6: score[4]}


# ---------------------------------------------------------------------------------- interrupted
@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fit of 8 iterations evaluated at 4 and 8 with longer evaluations; its run directory."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    done = _fit(folder, 8, "--model.eval_every", "4", "--samples.every", "4", *LONG_EVALUATION)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder / "runs" / "quickstart"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_an_evaluation_a_signal_interrupted_runs_on_resume(
    uninterrupted: Path, tmp_path: Path, signum: int
) -> None:
    settings = ["--model.eval_every", "4", "--samples.every", "4", *LONG_EVALUATION]
    run_dir = tmp_path / "runs" / "quickstart"
    folder = run_dir / "checkpoints"
    # The grid of iteration 4 is written just before its evaluation starts: stop during it.
    status, output = _signal_when(
        tmp_path, ["fit", "--config", QUICKSTART, *TINY, "--model.generator_iterations", "8", *settings],
        lambda: (run_dir / "samples" / "iter-00000004.png").exists(), signum,
    )
    assert status == (143 if signum == signal.SIGTERM else -signal.SIGKILL), output[-3000:]
    stopped = _record(folder / "last.ckpt")
    assert stopped["history"] == []
    if signum == signal.SIGTERM:
        # last.ckpt of iteration 4 says its evaluation is due; it runs first on resume.
        assert _checkpoint(folder / "last.ckpt")["giugan"]["generator_iteration"] == 4, output[-3000:]
        assert stopped["due"] == 4
        # iter-4 waits for its evaluation; a signal before that wait began writes it without it.
        if (folder / "iter-00000004.ckpt").exists():
            assert _record(folder / "iter-00000004.ckpt")["due"] == 4
    else:
        # No checkpoint of iteration 4 was written before its evaluation: the resume redoes
        # iterations 3 and 4 and then the evaluation, on its schedule.
        assert _checkpoint(folder / "last.ckpt")["giugan"]["generator_iteration"] == 2, output[-3000:]
        assert not (folder / "iter-00000004.ckpt").exists()
    assert _evaluation_rows(run_dir) == []

    resumed = _fit(tmp_path, 8, *settings, "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert ("the evaluation at generator iteration 4 is missing" in log) == (signum == signal.SIGTERM)
    assert log.count("[giugan] generator iteration 4:") == 1  # run once

    # Recorded at its own iteration, once: in the checkpoints and in metrics.csv.
    assert _history(folder / "iter-00000004.ckpt") == [4]
    assert _record(folder / "iter-00000004.ckpt")["due"] is None
    assert _history(folder / "last.ckpt") == [4, 8]
    assert [int(float(r["step"])) for r in _evaluation_rows(run_dir)] == [4, 8]
    # The same scores, the same best and the same parameters as a run that was never stopped.
    reference = uninterrupted / "checkpoints"
    assert _record(folder / "last.ckpt") == _record(reference / "last.ckpt")
    assert _record(folder / "iter-00000004.ckpt") == _record(reference / "iter-00000004.ckpt")
    for name in ("last.ckpt", "best.ckpt", "iter-00000004.ckpt"):
        assert _same_parameters(folder / name, reference / name), name
    ours = _evaluation_rows(run_dir)
    theirs = _evaluation_rows(uninterrupted)
    columns = [c for c in theirs[0] if c.startswith("eval/")]
    assert [[float(r[c]) for c in columns] for r in ours] == [[float(r[c]) for c in columns] for r in theirs]


# ---------------------------------------------------------------------------------- commands
@pytest.mark.parametrize(
    ("command", "signum", "status"),
    [("test", signal.SIGTERM, 143), ("validate", signal.SIGINT, 130), ("predict", signal.SIGTERM, 143)],
)
def test_an_evaluation_command_stopped_by_a_signal_exits_non_zero_without_a_record(
    uninterrupted: Path, tmp_path: Path, command: str, signum: int, status: int
) -> None:
    config, checkpoint = uninterrupted / "config.yaml", uninterrupted / "checkpoints" / "last.ckpt"
    run_dir = tmp_path / "runs" / "quickstart"  # the config's run directory, from this folder
    if command == "predict":
        output_dir = tmp_path / "predictions"
        arguments = ["predict", "--ckpt_path", str(checkpoint), "--predictions.output_dir", str(output_dir),
                     "--predictions.num_images", "4000", "--predictions.batch_size", "16",
                     "--trainer.enable_progress_bar", "false"]

        def ready() -> bool:
            return output_dir.is_dir() and any(output_dir.glob("*.png"))
    else:
        # A fresh reference cache: its file appears when the evaluation loop has started.
        cache = tmp_path / "cache"
        arguments = [command, "--config", str(config), "--ckpt_path", str(checkpoint),
                     "--model.metrics.init_args.cache_dir", str(cache), *LONG_EVALUATION]

        def ready() -> bool:
            return cache.is_dir() and any(cache.glob("*.pt"))

    code, output = _signal_when(tmp_path, arguments, ready, signum)
    assert code == status, output[-3000:]
    name = signal.Signals(signum).name
    lines = [line for line in output.splitlines() if line.startswith(f"giugan: `giugan {command}` stopped by")]
    assert len(lines) == 1 and f"stopped by {name}" in lines[0], output[-3000:]
    last_line = lines[0]
    if command == "predict":
        assert 0 < len(list(output_dir.glob("*.png"))) < 4000
        assert "Run the same command again" in last_line
        return
    record = "eval.json" if command == "test" else "eval-validate.json"
    assert f"{record} was not written" in last_line
    assert not (run_dir / record).exists()
    assert not list(run_dir.glob(f".{record}*")) if run_dir.exists() else True  # no partial file
    if command != "test":
        return
    # Run again: the record is written whole, and says what was evaluated.
    done = _giugan(tmp_path, *arguments)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((run_dir / "eval.json").read_text())
    assert report["command"] == "test" and report["generator_iteration"] == 8
    assert report["checkpoint"] == str(checkpoint)
    assert report["protocol"]["num_fake"] == 4000
    # The same samples of the same weights as the fit's evaluation at 8.
    assert report["judge_frechet"] == _record(checkpoint)["last"]["judge_frechet"]


@pytest.mark.slow
def test_giugan_test_on_two_processes_stopped_by_sigterm_stops_both_without_a_record(
    uninterrupted: Path, tmp_path: Path
) -> None:
    """The signal reaches the launching process only; the ranks agree after a batch and both stop."""
    checkpoint, cache = uninterrupted / "checkpoints" / "last.ckpt", tmp_path / "cache"
    arguments = ["test", "--config", str(uninterrupted / "config.yaml"), "--ckpt_path", str(checkpoint),
                 "--trainer.devices", "2", "--model.metrics.init_args.cache_dir", str(cache), *LONG_EVALUATION]
    code, output = _signal_when(tmp_path, arguments, lambda: cache.is_dir() and any(cache.glob("*.pt")),
                                signal.SIGTERM)
    assert code == 143, output[-3000:]
    deadline = time.monotonic() + 30  # rank 1 reports its own stop (it shares the launcher's output)
    while output.count("giugan: `giugan test` stopped by SIGTERM") < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        output = next(tmp_path.glob("signalled-*.log")).read_text(errors="replace")
    assert output.count("giugan: `giugan test` stopped by SIGTERM") == 2, output[-3000:]
    assert "lost" not in output and "Traceback" not in output, output[-3000:]
    assert not (tmp_path / "runs" / "quickstart" / "eval.json").exists()
