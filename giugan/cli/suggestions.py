""""Did you mean ...?" for a mistyped option or class path in a giugan command line or config.

jsonargparse says what it could not use (``unrecognized arguments: --model.n_critics 2``,
``module 'giugan.nets' has no attribute 'Generatr'``, ``Expected a path but
giugan.data.ShapesDataModul either not accessible``); :func:`suggestion` finds the nearest known
option or importable name, so the one-paragraph error can name the fix.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Iterable
from typing import Any

_UNRECOGNIZED = re.compile(r"unrecognized arguments: (--[\w.\-]+)")
_NO_ATTRIBUTE = re.compile(r"module '([\w.]+)' has no attribute '(\w+)'")
_DOTTED = re.compile(r"\b((?:[A-Za-z_]\w*\.)+[A-Za-z_]\w*)\b")


def suggestion(message: str, options: Iterable[str] = ()) -> str | None:
    """``"Did you mean X?"`` for the mistyped option or class path in ``message``, else None."""
    unknown = _UNRECOGNIZED.search(message)
    if unknown:
        match = _closest(unknown.group(1), options)
        return f"Did you mean {match}?" if match else None
    missing = _NO_ATTRIBUTE.search(message)
    if missing:
        match = _closest_attribute(missing.group(1), missing.group(2))
        return f"Did you mean {match}?" if match else None
    for dotted in _DOTTED.findall(message):
        module_name, _, name = dotted.rpartition(".")
        concrete = _concrete_subclasses(module_name, name) if module_name.startswith("giugan") else None
        if concrete:
            return f"`{dotted}` is an abstract base class; name one of its subclasses: {', '.join(concrete)}."
        match = _closest_attribute(module_name, name) if module_name.startswith("giugan") else None
        if match and match != dotted:
            return f"Did you mean {match}?"
    return None


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.75)
    return found[0] if found else None


def _closest_attribute(module_name: str, name: str) -> str | None:
    """``module_name.<nearest public name>`` when ``module_name`` imports and one is near."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    names = [n for n in dir(module) if not n.startswith("_")]
    match = _closest(name, names)
    return f"{module_name}.{match}" if match else None


def _concrete_subclasses(module_name: str, name: str) -> list[str] | None:
    """The importable concrete subclasses of ``module_name.name`` when it is an abstract class."""
    try:
        found = getattr(importlib.import_module(module_name), name, None)
    except ImportError:
        return None
    if not (inspect.isclass(found) and inspect.isabstract(found)):
        return None
    names, pending = [], list(found.__subclasses__())
    while pending:
        subclass = pending.pop(0)
        pending.extend(subclass.__subclasses__())
        if not inspect.isabstract(subclass) and not subclass.__name__.startswith("_"):
            names.append(f"{subclass.__module__}.{subclass.__qualname__}")
    return names


def parser_options(parser: Any) -> list[str]:
    """Every ``--option`` a jsonargparse/argparse parser and its subcommand parsers accept."""
    options: list[str] = []
    stack = [parser]
    while stack:
        current = stack.pop()
        for action in getattr(current, "_actions", []):
            options.extend(o for o in action.option_strings if o.startswith("--"))
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):  # subcommands
                stack.extend(p for p in choices.values() if hasattr(p, "_actions"))
    return sorted(set(options))
