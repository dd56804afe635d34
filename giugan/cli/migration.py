"""Old command lines and config files keep working: their loss settings in the current form.

``--model.loss hinge``, ``--model.gp_weight 5``, ``--model.gp_mode separate_step`` and config files
(saved ``config.yaml`` files of older runs included) with ``model.loss: <name>``,
``model.gp_weight``, ``model.gp_mode`` are rewritten to ``model.loss``'s ``class_path`` and
``init_args`` before jsonargparse reads them, with a one-line notice each
(:mod:`giugan.legacy_settings`; docs/configs.md, "Losses").
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from giugan.legacy_settings import (
    PENALTY_KEYS,
    is_legacy_loss_name,
    loss_class_path,
    migrate_model_settings,
)

_MODEL_PREFIXES = ("--model.init_args.", "--model.")


def say(notice: str) -> None:
    """Print a migration notice (one line, on stderr)."""
    print(f"[giugan] {notice}; docs/configs.md, \"Losses\", has the current form.", file=sys.stderr, flush=True)


def migrate_config(data: Any, source: str) -> tuple[Any, bool]:
    """A config mapping with its model section in the current form; whether it changed."""
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        return data, False
    model, notice = migrate_model_settings(data["model"])
    if notice is None:
        return data, False
    say(f"{source}: {notice}")
    return {**data, "model": model}, True


def _rewritten(flag: str, value: str) -> tuple[str, str] | None:
    """The current ``(flag, value)`` for an old model flag, or None."""
    for prefix in _MODEL_PREFIXES:
        if not flag.startswith(prefix):
            continue
        key = flag[len(prefix):]
        if key == "loss" and is_legacy_loss_name(value):
            return flag, loss_class_path(value)
        if key in PENALTY_KEYS:
            return f"{prefix}loss.init_args.{key}", value
        return None
    return None


def migrate_flags(args: Sequence[str]) -> list[str]:
    """``args`` with the old loss flags rewritten (``--flag value`` and ``--flag=value``)."""
    migrated: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        flag, equals, inline = word.partition("=")
        has_next = index + 1 < len(args)
        value = inline if equals else (args[index + 1] if has_next else None)
        new = _rewritten(flag, value) if value is not None and flag.startswith("--model.") else None
        if new is None:
            migrated.append(word)
            index += 1
            continue
        say(f"{flag} {value} (the form before loss objects) read as {new[0]} {new[1]}")
        migrated.extend((f"{new[0]}={new[1]}",) if equals else new)
        index += 1 if equals else 2
    return migrated
