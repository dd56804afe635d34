"""Runs grouped into table rows: mean ± std over seeds, the paper's numbers, Params/FLOPs, protocol.

A row's scores are averaged over its *finished* runs with metrics; a row whose finished runs were
measured under different protocols is flagged and not averaged; every other run is listed with
the reason it is left out (docs/reporting.md).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from giugan.metrics.registry import reported_values
from giugan.reporting.paper_scores import PAPER_SCORES, PaperScore
from giugan.reporting.records import RunRecord, find_runs, read_run

#: Scores shown in the table, in the metrics registry's order, when the runs have them, with their
#: column titles (the values that rank a run: giugan.metrics.registry.reported_values).
SCORE_TITLES: dict[str, str] = reported_values()
SCORES: tuple[str, ...] = tuple(SCORE_TITLES)


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation (None for one value) over seeds."""

    mean: float
    std: float | None
    count: int

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        return cls(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None, len(values))

    def text(self, digits: int = 2) -> str:
        return f"{self.mean:.{digits}f}" + ("" if self.std is None else f" ± {self.std:.{digits}f}")


@dataclass
class RowSummary:
    """One table row: its runs, the averages of the comparable ones and what the paper printed."""

    row: str
    runs: list[RunRecord]
    paper: PaperScore | None
    params: int | None = None
    macs: int | None = None
    best: dict[str, Spread] = field(default_factory=dict)
    last: dict[str, Spread] = field(default_factory=dict)

    @property
    def used(self) -> list[RunRecord]:
        """The finished runs with metrics (averaged when they share one protocol)."""
        return [r for r in self.runs if r.status == "finished"]

    @property
    def protocols(self) -> list[str]:
        return sorted({r.protocol_id for r in self.used})

    @property
    def mixed_protocols(self) -> bool:
        return len(self.protocols) > 1

    @property
    def seeds(self) -> list[int]:
        return sorted(r.seed for r in self.used if r.seed is not None)

    @property
    def iterations(self) -> tuple[int, int] | None:
        reached = [r.reached for r in self.used if r.reached is not None]
        return (min(reached), max(reached)) if reached else None


@dataclass
class Report:
    """Every row of the runs given to ``giugan report``, and the runs left out of the averages."""

    rows: list[RowSummary]

    @property
    def left_out(self) -> list[RunRecord]:
        return [r for row in self.rows for r in row.runs if r.status != "finished"]

    @property
    def protocols(self) -> dict[str, dict]:
        """Fingerprint -> protocol of every run in the table."""
        return {r.protocol_id: r.protocol for row in self.rows for r in row.runs}

    def scores(self) -> list[str]:
        """The :data:`SCORES` some averaged row has."""
        present = {name for row in self.rows for name in row.best}
        return [name for name in SCORES if name in present]


def _counts(row: RowSummary, cache: Any) -> tuple[int | None, int | None]:
    """Params (thop-2020 total) and MACs of the row's networks, by ``giugan profile``'s counter.

    A preset is counted as ``giugan profile`` counts it (``cache``, a ``ProfileCache``), with the
    MAC rule of the paper's rows of that preset (docs/counting.md); other networks are rebuilt
    from the row's first checkpoint.
    """
    presets = {r.preset for r in row.runs}
    if len(presets) == 1 and (preset := presets.pop()):
        from giugan.profiling.paper_tables import PAPER_ROWS, RULES

        rule = next((entry.rule for entry in PAPER_ROWS if entry.preset == preset), "thop-2020")
        pair = cache.pair(preset)
        return pair.thop_params, pair.macs(RULES[rule])
    checkpoint = next((r.checkpoint for r in row.runs if r.checkpoint.is_file()), None)
    if checkpoint is None:
        return None, None
    from giugan.profiling.counting import count_pair
    from giugan.training.module import GANModule  # networks without a preset: from the checkpoint

    model = GANModule.load_from_checkpoint(checkpoint, map_location="cpu")
    pair = count_pair(model.generator, model.discriminator, model.z_dim)
    return pair.thop_params, pair.macs()


def summarise(runs: list[RunRecord], counts: bool = True) -> Report:
    """Group ``runs`` by row (order of first appearance) and average each row's comparable runs."""
    rows: dict[str, RowSummary] = {}
    for run in runs:
        rows.setdefault(run.row, RowSummary(run.row, [], PAPER_SCORES.get(run.row))).runs.append(run)
    cache = None
    if counts:
        from giugan.profiling.profile import ProfileCache

        cache = ProfileCache()
    for row in rows.values():
        if cache is not None:
            row.params, row.macs = _counts(row, cache)
        if not row.used or row.mixed_protocols:
            continue
        for name in SCORES:
            best = [r.best[name] for r in row.used if name in r.best and math.isfinite(r.best[name])]
            last = [r.last[name] for r in row.used if name in r.last and math.isfinite(r.last[name])]
            if best:
                row.best[name] = Spread.of(best)
            if last:
                row.last[name] = Spread.of(last)
    if cache is not None:
        cache.save()
    return Report(list(rows.values()))


def gather(paths: list[str | Path], counts: bool = True) -> Report:
    """The report of the runs under ``paths`` (run folders or folders of them): the Python API."""
    return summarise([read_run(folder) for folder in find_runs(paths)], counts=counts)
