"""One paragraph with the cause and the fix for faults that come from the machine, not the config.

The library's own messages for these say what failed but not why or what to do
(``[Errno 13] Permission denied: '.../.giugan.lock'``, ``No supported gpu backend found!``,
``enforce fail at inline_container.cc``); :func:`explain` adds both. Nothing here writes a file:
the checkpoints and records already on disk are whatever the failed command left intact.
"""

from __future__ import annotations

import errno
import os

_KEPT = "Every file already written (checkpoints, logs, configs) is unchanged."


def explain(error: BaseException) -> str | None:
    """The paragraph for a machine fault, or None when ``error`` is not one of them."""
    text = str(error)
    if "No supported gpu backend found" in text or "GPUAccelerator can not run" in text:
        return _no_gpu()
    if "inline_container.cc" in text and ("write" in text or "enforce fail" in text):
        return _disk_full("the checkpoint")  # torch's wrapping of a failed write (ENOSPC)
    if not isinstance(error, OSError):
        return None
    path = error.filename if isinstance(error.filename, str) else None
    if error.errno == errno.ENOSPC or error.errno == errno.EDQUOT:
        return _disk_full(path or "a file")
    if error.errno == errno.EFBIG:
        return (
            f"Writing {path or 'a file'} failed: it grew past the largest file this process may "
            f"write (its file-size limit, `ulimit -f`, which schedulers often set, or the file "
            f"system's maximum). Nothing was written under its name, and the checkpoints already "
            f"there are intact. Raise the limit (`ulimit -f unlimited`, or the scheduler's file-size "
            f"option) or put the run on another disk (--checkpoint.dirpath DIR, the loggers' "
            f"save_dir), then resume with --ckpt_path last."
        )
    if isinstance(error, PermissionError) and path:
        folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        return (
            f"giugan cannot write {path}: permission denied (the folder {folder} is not writable "
            f"by this user). {_KEPT} Make the folder writable (e.g. `chmod u+w {folder}`), or give "
            f"the run another place: --run_name NAME (under the loggers' save_dir), "
            f"--checkpoint.dirpath DIR, --trainer.default_root_dir DIR."
        )
    if isinstance(error, (FileExistsError, NotADirectoryError)) and path:
        blocker = _file_in_the_way(path)
        if blocker:
            return (
                f"giugan needs a folder at {blocker}, but a file of that name is there. {_KEPT} "
                f"Move that file away, or choose another folder (--run_name NAME, "
                f"--trainer.default_root_dir DIR, --checkpoint.dirpath DIR)."
            )
    return None


def _no_gpu() -> str:
    import torch

    built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
    return (
        f"trainer.accelerator=gpu was asked for, but torch sees no usable CUDA GPU on this machine "
        f"(torch {torch.__version__}, {built}; torch.cuda.is_available() is False). Run on a "
        f"machine with a GPU, or train on the CPU: drop --config configs/trainer/gpu.yaml (or "
        f"ddp.yaml) or add --trainer.accelerator cpu (auto picks a GPU when there is one)."
    )


def _disk_full(what: str) -> str:
    return (
        f"The disk (or quota) is full: writing {what} failed. Nothing was written under its "
        f"name, and the checkpoints already there are intact. Free space, or put the run on "
        f"another disk (--checkpoint.dirpath DIR, the loggers' save_dir), then resume with "
        f"--ckpt_path last."
    )


def _file_in_the_way(path: str) -> str | None:
    """The first part of ``path`` that exists as a file (where a folder is needed)."""
    current = os.path.abspath(path)
    parts = []
    while current and current != os.path.dirname(current):
        parts.append(current)
        current = os.path.dirname(current)
    for candidate in reversed(parts):
        if os.path.isfile(candidate) and candidate != os.path.abspath(path):
            return candidate
    return path if os.path.isfile(path) else None
