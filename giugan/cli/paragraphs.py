"""The one paragraph a failed command shows: jsonargparse's and Lightning's messages reduced to
their cause (used by the error boundary, giugan/cli/errors.py, and the command-line parser)."""

from __future__ import annotations

import re


def _bullets(text: str) -> list[str]:
    """jsonargparse's ``- cause`` items, each joined with its more-indented continuation lines."""
    items: list[str] = []
    indent = None
    for line in text.splitlines():
        stripped = line.strip()
        depth = len(line) - len(line.lstrip())
        if stripped.startswith("- "):
            items.append(stripped[2:])
            indent = depth
        elif items and indent is not None and depth > indent and stripped:
            items[-1] += " " + stripped
        else:
            indent = None
    return items


def one_paragraph(error: BaseException) -> str:
    """The message a user needs from ``error``: jsonargparse's union dumps reduced to their cause."""
    text = str(error).strip()
    causes = [b for b in _bullets(text) if "NoneType" not in b and not b.startswith("Expected a <class")]
    if causes:
        key = re.search(r'Parser key "([^"]+)"', text)
        where = f"{key.group(1)}: " if key else ""
        return where + " ".join(causes[:2])
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("File \"", "^", "raise ", "Traceback"))]
    return " ".join(lines[:4]) or type(error).__name__
