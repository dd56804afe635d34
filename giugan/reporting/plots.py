"""Per row: each score against generator iterations, the mean over seeds and a band (min to max)."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from giugan.reporting.summary import SCORE_TITLES, SCORES, RowSummary


def curve(row: RowSummary, score: str) -> list[tuple[float, float, float, float]]:
    """``(iteration, mean, min, max)`` over the row's finished runs, at every evaluated iteration."""
    by_iteration: dict[float, list[float]] = {}
    for run in row.used:
        for evaluation in run.history:
            if score in evaluation:
                by_iteration.setdefault(float(evaluation["generator_iteration"]), []).append(float(evaluation[score]))
    return [(x, statistics.fmean(v), min(v), max(v)) for x, v in sorted(by_iteration.items())]


def plot_row(row: RowSummary, folder: Path) -> Path | None:
    """``<folder>/<row>.png``: one panel per score the row's runs have; None when they have none."""
    # No pyplot: the caller's backend (e.g. a notebook's inline one) is left alone.
    from matplotlib.figure import Figure

    curves = {name: points for name in SCORES if (points := curve(row, name))}
    if not curves:
        return None
    figure = Figure(figsize=(4.5 * len(curves), 3.5))
    axes = figure.subplots(1, len(curves), squeeze=False)
    for axis, (name, points) in zip(axes[0], curves.items()):
        x, mean, low, high = zip(*points)
        axis.fill_between(x, low, high, alpha=0.25, label=f"min-max over {len(row.used)} seeds")
        axis.plot(x, mean, marker="o", label="mean")
        axis.set_xlabel("generator iteration")
        axis.set_title(SCORE_TITLES[name])
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(row.row + (" (mixed protocols)" if row.mixed_protocols else ""))
    figure.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', row.row)}.png"
    figure.savefig(path, dpi=100)
    return path
