"""Write a JSON file atomically: a temporary file beside it, then ``os.replace`` onto the path.

A reader (or a crash) sees the old file or the new one, never half of one. The temporary name
holds the host and process id (``.<name>.<host>-<pid>.tmp``), so two processes writing the same
file do not share a temporary, and a temporary left by a killed writer (``kill -9``, power loss)
can be told from one a live writer owns: :func:`remove_stale_temporaries` removes those of dead
processes of this host (and any older than :data:`STALE_AFTER_SECONDS`). The temporary gets the
usual file permissions (``open``'s, not ``mkstemp``'s 0600).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

__all__ = ["STALE_AFTER_SECONDS", "remove_stale_temporaries", "temporary_name", "write_json_atomically"]

#: A temporary file older than this is stale whoever wrote it (one write takes seconds at most).
STALE_AFTER_SECONDS = 3600.0

_OWNER = re.compile(r"\.(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)(?:\.[^./]*)?\.tmp$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", socket.gethostname()) or "host"


def temporary_name(name: str) -> str:
    """The temporary file name this process uses for ``name``: ``.<name>.<host>-<pid>.tmp``."""
    return f".{name}.{_host()}-{os.getpid()}.tmp"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def is_stale(path: Path, now: float | None = None, stale_after: float = STALE_AFTER_SECONDS) -> bool:
    """Whether no live writer can own the temporary file ``path``.

    Stale: written by a process of this host that no longer runs, or older than ``stale_after``
    seconds (a process of another host sharing the folder cannot be asked whether it lives).
    """
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        return False
    if age > stale_after:
        return True
    owner = _OWNER.search(path.name)
    if owner is None or owner["host"] != _host():
        return False
    pid = int(owner["pid"])
    return pid != os.getpid() and not _alive(pid)


def remove_stale_temporaries(
    folder: str | os.PathLike[str], pattern: str = ".*.tmp", stale_after: float = STALE_AFTER_SECONDS
) -> list[str]:
    """Remove the temporary files matching ``pattern`` in ``folder`` that no live writer owns
    (see :func:`is_stale`); return their names. A missing folder is fine."""
    removed = []
    now = time.time()
    with contextlib.suppress(OSError):
        for path in sorted(Path(folder).glob(pattern)):
            if path.is_file() and not path.is_symlink() and is_stale(path, now, stale_after):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path.name)
    return removed


def write_json_atomically(path: str | Path, data: Any, **dump_options: Any) -> Path:
    """Write ``data`` as JSON to ``path`` (parent folders created); ``dump_options`` go to
    :func:`json.dump`. On any error the temporary file is removed and the error raised.

    Temporaries of the same file left by killed writers are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, f".{glob_escape(path.name)}.*.tmp")
    temporary = path.with_name(temporary_name(path.name))
    try:
        with open(temporary, "w") as handle:
            json.dump(data, handle, **dump_options)
            handle.write("\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise
    return path


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters escaped."""
    import glob

    return glob.escape(name)
