"""Write a JSON file atomically: a temporary file beside it, then ``os.replace`` onto the path.

A reader (or a crash) sees the old file or the new one, never half of one. The temporary name
holds the process id, so two processes writing the same file do not share a temporary; it gets
the usual file permissions (``open``'s, not ``mkstemp``'s 0600).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["write_json_atomically"]


def write_json_atomically(path: str | Path, data: Any, **dump_options: Any) -> Path:
    """Write ``data`` as JSON to ``path`` (parent folders created); ``dump_options`` go to
    :func:`json.dump`. On any error the temporary file is removed and the error raised."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
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
