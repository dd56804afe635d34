"""Composed configs: a row YAML names its base with ``__base__`` and states only what differs.

A config file may start with two keys that ``giugan`` (not jsonargparse) reads::

    __base__: base.yaml          # path relative to this file; a base may have its own __base__
    __run_name__: cifar10_dcgan  # replaces every ``${run_name}`` in this file and its bases

:func:`expand_config_bases` rewrites each ``--config ROW`` of a command line into
``--config BASE ... --config ROW`` (the oldest ancestor first), so the files are merged by
jsonargparse's own rule for repeated ``--config`` (later files override earlier ones key by key,
``init_args`` of the same ``class_path`` merged). Files without those keys pass through unchanged;
files with them are handed over as YAML strings with the two keys removed and ``${run_name}``
filled in. jsonargparse itself has no include directive: a ``config:`` key inside a file replaces
whole sections of its base instead of merging them. The run's saved ``config.yaml`` is the parsed,
fully resolved result, as for any other command line. See docs/configs.md.

Settings of the form before loss objects (``model.loss: hinge``, ``model.gp_weight``, in a file or
on the command line) are rewritten here too, with a notice (``giugan/cli/migration.py``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from giugan.cli.migration import migrate_config, migrate_flags

BASE_KEY = "__base__"
RUN_NAME_KEY = "__run_name__"
RUN_NAME_PLACEHOLDER = "${run_name}"
_CONFIG_FLAGS = ("--config", "-c")


def expand_config_bases(args: Sequence[str]) -> list[str]:
    """Return ``args`` with every composed ``--config`` file replaced by its resolved chain.

    Raises:
        ValueError: a ``__base__`` chain is cyclic, a base is missing or not a mapping, or a file
            uses ``${run_name}`` while no file of its chain sets ``__run_name__``.
    """
    args = migrate_flags(args)
    expanded: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        flag, value = _split_config_flag(arg)
        if flag is None:
            expanded.append(arg)
            index += 1
            continue
        if value is None:  # "--config PATH"
            if index + 1 >= len(args):
                expanded.append(arg)
                break
            value = args[index + 1]
            index += 1
        index += 1
        for resolved in _resolve(value):
            expanded.extend(("--config", resolved))
    return expanded


@contextlib.contextmanager
def composed_sys_argv() -> Iterator[None]:
    """Expand ``sys.argv`` in place for the duration (LightningCLI reads it from the console).

    DDP re-launches its ranks with ``sys.argv``; the expanded form is a plain jsonargparse command
    line, and expanding it again changes nothing, so every rank parses the same config.
    """
    original = list(sys.argv)
    sys.argv[1:] = expand_config_bases(sys.argv[1:])
    try:
        yield
    finally:
        sys.argv[:] = original


def _split_config_flag(arg: str) -> tuple[str | None, str | None]:
    for flag in _CONFIG_FLAGS:
        if arg == flag:
            return flag, None
        if arg.startswith(flag + "="):
            return flag, arg[len(flag) + 1:]
    return None, None


def _resolve(value: str) -> list[str]:
    """The ``--config`` values for one given value: itself, or its chain as YAML strings."""
    path = Path(value)
    try:
        is_file = path.is_file()
    except OSError:  # e.g. "file name too long": a YAML string given as --config
        is_file = False
    if not is_file:
        return [value]  # a YAML string, or a missing file jsonargparse reports itself
    try:
        top = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(
            f"The config file {path} is not valid YAML: {problem}{where}. Fix that line (a "
            f"missing bracket, quote or colon is the usual cause)."
        ) from None
    if top is None:
        raise ValueError(
            f"The config file {path} is empty. Give a config with at least the model and data "
            f"sections, e.g. configs/quickstart.yaml or a table row under configs/."
        )
    if not isinstance(top, dict) or not ({BASE_KEY, RUN_NAME_KEY} & set(top) or _uses_placeholder(top)):
        migrated, changed = migrate_config(top, str(path))
        # a plain config: jsonargparse reads the file itself, unless it had to be rewritten
        return [yaml.safe_dump(migrated, sort_keys=False)] if changed else [value]
    chain = _chain(path)
    run_name = next((data[RUN_NAME_KEY] for _, data in reversed(chain) if RUN_NAME_KEY in data), None)
    resolved = []
    for file, data in chain:
        body = {key: item for key, item in data.items() if key not in (BASE_KEY, RUN_NAME_KEY)}
        body, _ = migrate_config(body, str(file))
        if _uses_placeholder(body):
            if run_name is None:
                raise ValueError(
                    f"Config {file} uses {RUN_NAME_PLACEHOLDER} but neither it nor any file that "
                    f"names it as {BASE_KEY} sets {RUN_NAME_KEY}. Add `{RUN_NAME_KEY}: <name>` "
                    f"to the row config {path}."
                )
            body = _fill(body, str(run_name))
        resolved.append(yaml.safe_dump(body, sort_keys=False))
    return resolved


def _chain(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """``[(file, mapping), ...]`` from the oldest base to ``path`` itself."""
    chain: list[tuple[Path, dict[str, Any]]] = []
    seen: list[Path] = []
    current: Path | None = path.resolve()
    while current is not None:
        if current in seen:
            cycle = " -> ".join(str(p) for p in [*seen, current])
            raise ValueError(
                f"Config {path}: the {BASE_KEY} chain is a cycle ({cycle}). A base must not name "
                f"a file that (directly or through its own bases) names it back; remove one "
                f"{BASE_KEY}."
            )
        seen.append(current)
        data = _load_mapping(current, named_by=seen[-2] if len(seen) > 1 else None)
        chain.append((current, data))
        base = data.get(BASE_KEY)
        if base is not None and not isinstance(base, str):
            raise ValueError(
                f"Config {current}: {BASE_KEY} must be one path (relative to the file), got "
                f"{base!r}. Give e.g. `{BASE_KEY}: base.yaml`."
            )
        current = (current.parent / base).resolve() if base else None
    return chain[::-1]


def _load_mapping(path: Path, named_by: Path | None) -> dict[str, Any]:
    if not path.is_file():
        raise ValueError(
            f"Config {named_by}: its {BASE_KEY} {path} does not exist. The path is relative to "
            f"the file that names it; fix the path or restore the base file."
        )
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(
            f"Config {path} must be a mapping of keys to values (it is a {type(data).__name__}); "
            f"a file used as {BASE_KEY} or --config holds e.g. `model:`, `data:`, `trainer:`."
        )
    return data


def _uses_placeholder(value: Any) -> bool:
    if isinstance(value, str):
        return RUN_NAME_PLACEHOLDER in value
    if isinstance(value, dict):
        return any(_uses_placeholder(item) for item in value.values())
    if isinstance(value, list):
        return any(_uses_placeholder(item) for item in value)
    return False


def _fill(value: Any, run_name: str) -> Any:
    if isinstance(value, str):
        return value.replace(RUN_NAME_PLACEHOLDER, run_name)
    if isinstance(value, dict):
        return {key: _fill(item, run_name) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, run_name) for item in value]
    return value
