"""Small helpers for the one-paragraph error messages."""

from __future__ import annotations

from collections.abc import Sequence


def first_few(items: Sequence[object], limit: int = 3) -> str:
    """``"a, b, c, ..."``: the first ``limit`` items, and an ellipsis when there are more."""
    shown = ", ".join(str(item) for item in items[:limit])
    return shown + (", ..." if len(items) > limit else "")
