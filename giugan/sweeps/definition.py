"""What a sweep runs: rows (table-row configs) x seeds, one run per pair, each with a stable name.

A sweep comes from a sweep file (``configs/sweeps/<table>.yaml``, also named by its table alone:
``table1``) or from row configs given directly (paths or globs). A row's name is its config's
``__run_name__`` (the file name without ``.yaml`` when it has none); the run of row R and seed S
is ``R-sS`` (docs/sweeps.md).
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: Where ``giugan sweep table1`` finds ``table1.yaml``.
SWEEPS_FOLDER = Path(__file__).resolve().parents[2] / "configs" / "sweeps"


@dataclass(frozen=True)
class SweepRun:
    """One (row, seed) of a sweep: ``giugan fit --config <config> --model.seed <seed> --run_name <name>``."""

    row: str
    config: Path
    seed: int

    @property
    def name(self) -> str:
        """The run's stable name, ``<row>-s<seed>``."""
        return f"{self.row}-s{self.seed}"


@dataclass(frozen=True)
class Sweep:
    """Rows x seeds, the arguments every run gets, and settings of the SLURM array."""

    name: str
    rows: tuple[tuple[str, Path], ...]
    seeds: tuple[int, ...]
    args: tuple[str, ...] = ()
    slurm: dict[str, Any] = field(default_factory=dict)

    @property
    def runs(self) -> list[SweepRun]:
        """Every run, row by row, seeds within a row (the index of a run is its array task id)."""
        return [SweepRun(row, config, seed) for row, config in self.rows for seed in self.seeds]


def row_name(config: Path) -> str:
    """A row config's ``__run_name__`` (its file name without ``.yaml`` when it sets none)."""
    try:
        data = yaml.safe_load(config.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"{config}: cannot read this row config ({error}); give a YAML config of a table row.") from None
    name = data.get("__run_name__") if isinstance(data, dict) else None
    return str(name) if name else config.stem


def _rows_from_paths(patterns: list[str], relative_to: Path | None, where: str) -> tuple[tuple[str, Path], ...]:
    configs: list[Path] = []
    for pattern in patterns:
        full = str(relative_to / pattern) if relative_to and not Path(pattern).is_absolute() else pattern
        matched = sorted(glob.glob(full)) if glob.has_magic(full) else ([full] if Path(full).is_file() else [])
        if not matched:
            raise ValueError(
                f"{where}: no row config matches {pattern!r}"
                + (f" (relative to {relative_to})" if relative_to else "")
                + ". Give existing YAML files of table rows, e.g. configs/ablations/table1_*.yaml, or a "
                "sweep file such as configs/sweeps/table1.yaml."
            )
        configs += [Path(m).resolve() for m in matched]
    rows = [(row_name(c), c) for c in dict.fromkeys(configs)]
    names = [name for name, _ in rows]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(
            f"{where}: two row configs share the run name {twice[0]!r} (their __run_name__), so their runs "
            f"would share a folder. Give each row its own __run_name__ or leave one out."
        )
    return tuple(rows)


def _seeds(values: Any, where: str) -> tuple[int, ...]:
    seeds = values if isinstance(values, list | tuple) else [values]
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ValueError(f"{where}: seeds must be a non-empty list of integers >= 0, got {values!r}.")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{where}: seeds {list(seeds)} repeat a seed; each (row, seed) is one run.")
    return tuple(seeds)


def sweep_file(spec: str) -> Path | None:
    """The sweep file ``spec`` names: a path to one, or a table name (``table1``); None otherwise."""
    if spec.endswith((".yaml", ".yml")) and Path(spec).is_file():
        data = yaml.safe_load(Path(spec).read_text())
        return Path(spec) if isinstance(data, dict) and "rows" in data else None
    named = SWEEPS_FOLDER / f"{spec}.yaml"
    return named if "/" not in spec and named.is_file() else None


def load_sweep(specs: list[str], seeds: list[int] | None = None, name: str | None = None) -> Sweep:
    """The sweep of ``specs``: one sweep file (or table name), or row configs (paths or globs).

    ``seeds`` and ``name`` override the sweep file's; without a sweep file the seeds default to
    ``[0]`` and the name to ``sweep``.
    """
    file = sweep_file(specs[0]) if len(specs) == 1 else None
    if file is None:
        unknown = [s for s in specs if not s.endswith((".yaml", ".yml")) and not glob.has_magic(s)]
        if unknown:
            known = ", ".join(sorted(p.stem for p in SWEEPS_FOLDER.glob("*.yaml")))
            raise ValueError(
                f"giugan sweep {unknown[0]}: neither a sweep name ({known}), a sweep file nor a row config. "
                f"Give a name from configs/sweeps/, a sweep YAML with a `rows:` list, or YAML configs of "
                f"table rows (a glob such as 'configs/ablations/table1_*.yaml' works)."
            )
        rows = _rows_from_paths(specs, None, "giugan sweep")
        return Sweep(name or "sweep", rows, _seeds(seeds if seeds is not None else [0], "--seeds"))
    data = yaml.safe_load(file.read_text())
    where = str(file)
    unknown_keys = set(data) - {"name", "rows", "seeds", "args", "slurm"}
    if unknown_keys:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown_keys)}; a sweep file has name, rows, seeds, args and slurm (docs/sweeps.md).")
    if not isinstance(data.get("rows"), list) or not data["rows"]:
        raise ValueError(f"{where}: `rows` must be a non-empty list of row configs (paths relative to this file).")
    args = data.get("args") or []
    if not isinstance(args, list):
        raise ValueError(f"{where}: `args` must be a list of command-line words, e.g. [--config, ../trainer/gpu.yaml].")
    rows = _rows_from_paths([str(r) for r in data["rows"]], file.resolve().parent, where)
    return Sweep(
        name or str(data.get("name") or file.stem),
        rows,
        _seeds(seeds if seeds is not None else data.get("seeds", [0]), "--seeds" if seeds is not None else f"{where}: seeds"),
        tuple(_relative_config_paths([str(a) for a in args], file.resolve().parent)),
        dict(data.get("slurm") or {}),
    )


def _relative_config_paths(args: list[str], folder: Path) -> list[str]:
    """``--config FILE`` in a sweep file's ``args`` is relative to the sweep file."""
    return [
        str((folder / a).resolve()) if i and args[i - 1] == "--config" and not Path(a).is_absolute() else a
        for i, a in enumerate(args)
    ]
