"""One paragraph per fault for a run of several processes (docs/distributed.md, "Faults").

Under DDP every rank runs the command line and its error boundary. A fault that hits every rank
(a missing weights file, a bad config value) would print the same paragraph once per rank, and a
fault on one rank would be followed by the other ranks' "lost a peer" paragraphs. The ranks of one
run on one machine therefore share a small folder under the temporary directory:

* :func:`say_once` prints a paragraph unless a rank of the same run already printed the same
  text, and marks that a rank of this run explained its fault;
* :func:`another_rank_explained` tells a rank that lost its peers whether that loss is the
  consequence of a fault already explained (it then ends with the same exit status, silently).

A run is told apart by its launcher: the process that started the ranks (giugan's own launcher,
torchrun's agent) with its start time, or SLURM's job, step and restart count. A single process
has no such key and prints every paragraph. Only standard-library imports: the error boundary
uses this before anything else is known about the command.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

#: Set by giugan's own launcher (``--trainer.devices N``) for itself and the ranks it starts.
LAUNCHER_PID_VARIABLE = "GIUGAN_LAUNCHER_PID"
#: Set to 1 to see the full traceback of every failure.
DEBUG_VARIABLE = "GIUGAN_DEBUG"
_EXPLAINED = "explained"


def _start_time(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot (Linux), else ``""``."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return fields[19]  # field 22 of stat(5); the first two fields precede the ")"
    except (OSError, IndexError):
        return ""


def run_key(environ: dict[str, str] | None = None) -> str | None:
    """A name shared by the ranks of one multi-process run on this machine (None: one process)."""
    env = os.environ if environ is None else environ
    launcher = env.get(LAUNCHER_PID_VARIABLE, "")
    if launcher.isdigit():
        return f"giugan-{launcher}-{_start_time(int(launcher))}"
    if "TORCHELASTIC_RUN_ID" in env:  # torchrun: every local worker is a child of one agent
        parent = os.getppid()
        return f"torchrun-{parent}-{_start_time(parent)}"
    if int(env.get("SLURM_NTASKS", "1") or 1) > 1 and "SLURM_JOB_ID" in env:
        parts = (env.get(name, "") for name in ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_RESTART_COUNT"))
        return "slurm-" + "-".join(parts)
    return None


def _folder(key: str) -> Path:
    folder = Path(tempfile.gettempdir()) / f"giugan-rank-reports-{os.getuid()}" / key
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _create(path: Path) -> bool:
    """Create ``path``; False when it was already there (atomic across processes)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    return True


def say_once(paragraph: str, stream=None) -> None:
    """Print ``giugan: paragraph`` (and the hint for the traceback) unless another rank of this run
    printed the same text."""
    stream = sys.stderr if stream is None else stream
    key = run_key()
    if key is not None:
        try:
            folder = _folder(key)
            _create(folder / _EXPLAINED)
            digest = hashlib.sha256(paragraph.encode()).hexdigest()[:20]
            if not _create(folder / digest):
                return
        except OSError:
            pass  # no shared folder: rather twice than never
    print(f"giugan: {paragraph}\n(set {DEBUG_VARIABLE}=1 for the full traceback)", file=stream, flush=True)


def another_rank_explained(wait_seconds: float = 5.0) -> bool:
    """Whether a rank of this run explained a fault (waiting up to ``wait_seconds`` for one that
    is still on its way out: a peer's closed connection is seen before its paragraph is out)."""
    key = run_key()
    if key is None:
        return False
    marker = Path(tempfile.gettempdir()) / f"giugan-rank-reports-{os.getuid()}" / key / _EXPLAINED
    deadline = time.monotonic() + wait_seconds
    while True:
        if marker.exists():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
