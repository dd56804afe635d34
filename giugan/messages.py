"""Small helpers for the one-paragraph error messages."""

from __future__ import annotations

from collections.abc import Sequence


def first_few(items: Sequence[object], limit: int = 3) -> str:
    """``"a, b, c, ..."``: the first ``limit`` items, and an ellipsis when there are more."""
    shown = ", ".join(str(item) for item in items[:limit])
    return shown + (", ..." if len(items) > limit else "")


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first non-empty line of ``error``'s message (at most ``limit`` characters), or a word
    for an exception without one (``torch.load`` of an empty file raises a bare ``EOFError``)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if lines:
        return lines[0][:limit]
    return "the file is empty or ends early" if isinstance(error, EOFError) else "no message"
