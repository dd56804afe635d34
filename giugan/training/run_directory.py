"""One owner per run directory: a lock file holding the owner's pid, host and a run token.

``giugan fit`` takes the lock after every check of the start has passed and releases it when the
run ends, however it ends. The ranks of one DDP run share it: the process that takes it exports
its token in ``GIUGAN_RUN_TOKEN``, which Lightning's launcher passes on to the ranks it starts
(ranks on other nodes see ``global_rank > 0`` and never take it). The file is created with
``O_CREAT | O_EXCL``, which is atomic on local disks and on NFSv3+ and Lustre, so two runs that
start at the same moment cannot both win. A lock left by a dead process of this host (kill -9,
out of memory) is reported with a warning and taken over; one held from another host is never
taken over (we cannot tell whether that process lives): the error says how to remove it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOCK_NAME = ".giugan.lock"
TOKEN_VARIABLE = "GIUGAN_RUN_TOKEN"


#: Locks this process holds (released by :func:`release_held_locks`, e.g. when a command ends).
HELD: list[RunDirectoryLock] = []
#: What the current start created outside the lock's folders (e.g. an offline W&B run), each an
#: action that takes it back; run, newest first, when the start is refused.
UNDO_ON_REFUSAL: list[Callable[[], None]] = []


def report_filename(command: str) -> str:
    """The record an evaluation command writes in the run directory: ``test`` -> ``eval.json``,
    ``validate`` -> ``eval-validate.json`` (so neither replaces the other's)."""
    return "eval.json" if command == "test" else f"eval-{command}.json"


_TRAINING_STARTED = [False]


def mark_training_started(started: bool = True) -> None:
    """Record that a fit in this process got as far as training (its files are then the run's:
    a later failure no longer takes back what the start created); ``False`` resets it per
    command (tests run several commands in one process)."""
    _TRAINING_STARTED[0] = started


def training_started() -> bool:
    """Whether a fit in this process got as far as training (see :func:`mark_training_started`)."""
    return _TRAINING_STARTED[0]


def undo_on_refusal(action: Callable[[], None]) -> None:
    """Have ``action`` run if this command's start is refused (see :func:`release_held_locks`)."""
    UNDO_ON_REFUSAL.append(action)


def release_held_locks(started: bool = True) -> None:
    """Release every lock this process holds; with ``started=False`` (a refused start) first take
    back what the start created (:func:`undo_on_refusal`), then remove the folders taking the lock
    created, so the disk is as it was."""
    actions = UNDO_ON_REFUSAL[::-1]
    UNDO_ON_REFUSAL.clear()
    if not started:
        for action in actions:
            action()
    while HELD:
        lock = HELD.pop()
        if started:
            lock.release()
        else:
            lock.release_and_forget()


def remove_stale_checkpoint_files(folder: str | os.PathLike[str]) -> list[str]:
    """Remove the temporary files a killed checkpoint write left in ``folder``; return their names.

    ``AtomicCheckpointIO`` writes ``.<name>.<random>.tmp`` and renames it; a ``kill -9`` or power
    loss during the write leaves the temporary file (never a damaged checkpoint). Called only by
    the run that holds the run directory's lock, so no live writer owns such a file.
    """
    removed = []
    for path in Path(folder).glob(".*.ckpt.*.tmp"):
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path.name)
    return removed


def remove_stale_run_files(folder: str | os.PathLike[str]) -> list[str]:
    """Remove the temporary files killed writers left in the run directory ``folder``.

    ``eval.json``, ``eval-validate.json`` and the other JSON records are written through
    :func:`giugan.atomic_files.write_json_atomically` (``.<name>.<host>-<pid>.tmp``): those of
    processes that no longer run are removed (a ``giugan test`` still writing keeps its own).
    ``metrics.csv.tmp`` is written only by the run that holds the lock, so the next holder
    removes it. Called by :meth:`RunDirectoryLock.acquire` once the lock is taken.
    """
    from giugan.atomic_files import remove_stale_temporaries

    removed = remove_stale_temporaries(folder, ".*.json.*.tmp")
    leftover = Path(folder) / "metrics.csv.tmp"
    if leftover.is_file():
        with contextlib.suppress(OSError):
            leftover.unlink()
            removed.append(leftover.name)
    return removed


class RunDirectoryInUseError(RuntimeError):
    """Another run owns the directory (or a dead one left its lock behind)."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunDirectoryLock:
    """The lock of ``folder`` (``<folder>/.giugan.lock``)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._owned = False
        self._created_folders: list[Path] = []

    def holder(self) -> dict[str, Any] | None:
        """What the lock file says (None when there is none or it cannot be read)."""
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`RunDirectoryInUseError` saying who has it and what to do."""
        token = os.environ.get(TOKEN_VARIABLE)
        holder = self.holder()
        if holder is not None and token and holder.get("token") == token:
            return  # a rank of the run that holds it
        self._make_folder()
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "token": uuid.uuid4().hex,
        }
        self._take_over_if_stale(holder)
        try:
            descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            self._remove_created_folders()
            raise self._in_use_error(self.holder() or {}) from None
        with os.fdopen(descriptor, "w") as handle:
            json.dump(record, handle)
        os.environ[TOKEN_VARIABLE] = record["token"]
        self._owned = True
        HELD.append(self)
        remove_stale_run_files(self.folder)

    def _take_over_if_stale(self, holder: dict[str, Any] | None) -> None:
        """A lock left by a process of this host that is gone (kill -9, OOM) is reported and removed.

        Only on the same host can we know the process is dead; elsewhere the lock stands.
        """
        if holder is None:
            return
        pid = holder.get("pid")
        if holder.get("host") == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
            warnings.warn(
                f"giugan: {self.path} was left by process {pid} (started {holder.get('started', '?')}), "
                f"which is no longer running (killed before it could release it); taking it over.",
                stacklevel=3,
            )
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def release(self) -> None:
        """Remove the lock if this process took it (idempotent)."""
        if not self._owned:
            return
        holder = self.holder()
        if holder is not None and holder.get("token") == os.environ.get(TOKEN_VARIABLE):
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        os.environ.pop(TOKEN_VARIABLE, None)
        self._owned = False

    def release_and_forget(self) -> None:
        """Release, and remove the folders :meth:`acquire` created if they are empty again
        (a refused start leaves no trace)."""
        self.release()
        self._remove_created_folders()

    def _make_folder(self) -> None:
        missing = []
        folder = self.folder
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        self.folder.mkdir(parents=True, exist_ok=True)
        self._created_folders = missing  # deepest first

    def _remove_created_folders(self) -> None:
        for folder in self._created_folders:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        self._created_folders = []

    def _in_use_error(self, holder: dict[str, Any]) -> RunDirectoryInUseError:
        pid, host = holder.get("pid"), holder.get("host", "?")
        since = holder.get("started", "?")
        return RunDirectoryInUseError(
            f"The run directory {self.folder} is in use by process {pid} on {host} (since "
            f"{since}). Two runs in one directory would interleave their checkpoints and "
            f"metrics.csv, so this one was not started and nothing was changed. Wait for that run "
            f"to finish, or give this one another run name. If that process is dead (e.g. its "
            f"node crashed), remove {self.path} and resume with --ckpt_path last."
        )
