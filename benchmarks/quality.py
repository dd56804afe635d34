"""Quality of the quickstart: a real ``giugan fit`` of ``configs/quickstart.yaml``, judged.

Runs the quickstart exactly as ``make quickstart`` does (the ``giugan`` command line, in a fresh
folder so an earlier ``runs/quickstart`` is neither refused nor overwritten), then prints the
shapes judge's numbers at every evaluation (``eval/recognisable``, ``eval/modes_covered``,
``eval/mode_balance``, ``eval/judge_frechet`` from the run's ``metrics.csv``) and the wall time
of the whole fit, and appends a record to ``benchmarks/results/quality-<cpu>.json``.

    python benchmarks/quality.py                                   # the quickstart as shipped
    python benchmarks/quality.py -- --model.generator_iterations 1000   # any CLI override
    python benchmarks/quality.py --keep /tmp/quality-run   # keep the run folder (sample grids)
    python benchmarks/quality.py --figures docs/images     # also the README's grid and curves

The targets (docs: README, "Quickstart"): at least 80 % recognisable and 34 of 36 modes covered
at the end, within 10 minutes for ``make install && make quickstart`` on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
COLUMNS = ("recognisable", "modes_covered", "mode_balance", "judge_frechet")


def evaluations(metrics_csv: Path) -> list[dict[str, float]]:
    """One row per evaluation: ``generator_iteration`` and the judge's four numbers."""
    rows: dict[int, dict[str, float]] = {}
    with open(metrics_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            if not row.get(f"eval/{COLUMNS[0]}"):
                continue
            step = int(float(row["step"]))
            rows[step] = {"generator_iteration": step} | {
                name: float(row[f"eval/{name}"]) for name in COLUMNS
            }
    return [rows[step] for step in sorted(rows)]


def format_table(rows: list[dict[str, float]]) -> str:
    """The evaluations as a fixed-width table."""
    lines = ["iteration  recognisable  modes_covered  mode_balance  judge_frechet"]
    lines += [
        f"{int(r['generator_iteration']):9d}  {r['recognisable']:12.3f}  "
        f"{r['modes_covered']:13.0f}  {r['mode_balance']:12.4f}  {r['judge_frechet']:13.3f}"
        for r in rows
    ]
    return "\n".join(lines)


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo`` on Linux), else ``platform.processor()``."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
        if match:
            return match.group(1).strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def run_quickstart(config: Path, overrides: list[str], folder: Path) -> tuple[float, Path]:
    """``giugan fit --config config *overrides`` in ``folder``; (wall seconds, metrics.csv)."""
    environment = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "disabled")}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), environment.get("PYTHONPATH")])
    )
    command = [sys.executable, "-m", "giugan", "fit", "--config", str(config), *overrides]
    start = time.perf_counter()
    subprocess.run(command, cwd=folder, env=environment, check=True)
    wall = time.perf_counter() - start
    found = sorted(folder.glob("runs/**/metrics.csv"))
    if not found:
        raise FileNotFoundError(f"The run in '{folder}' wrote no metrics.csv under runs/.")
    return wall, found[0]


def write_figures(rows: list[dict[str, float]], run_dir: Path, folder: Path, title: str) -> list[Path]:
    """The run's final sample grid (``quickstart-grid.png``) and the judge's curves
    (``quickstart-judge.png``: recognisable and modes covered against the generator iteration)."""
    import shutil

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    grid = folder / "quickstart-grid.png"
    shutil.copyfile(run_dir / "samples" / "latest.png", grid)
    steps = [r["generator_iteration"] for r in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 3), constrained_layout=True)
    left.plot(steps, [100 * r["recognisable"] for r in rows], marker="o")
    left.axhline(80, color="grey", linestyle="--", linewidth=1)
    left.set(xlabel="generator iteration", ylabel="recognisable (%)", ylim=(0, 100))
    right.plot(steps, [r["modes_covered"] for r in rows], marker="o")
    right.axhline(34, color="grey", linestyle="--", linewidth=1)
    right.set(xlabel="generator iteration", ylabel="modes covered (of 36)", ylim=(0, 36))
    figure.suptitle(title, fontsize=9)
    curves = folder / "quickstart-judge.png"
    figure.savefig(curves, dpi=100)
    plt.close(figure)
    return [grid, curves]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "quickstart.yaml")
    parser.add_argument("--label", default="quickstart", help="name of the recipe in the record")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-save", action="store_true", help="print only; write no record")
    parser.add_argument(
        "--keep", type=Path, default=None, help="run in this new folder and keep it (grids, log)"
    )
    parser.add_argument(
        "--figures", type=Path, default=None,
        help="write the final sample grid and the judge's curves here (e.g. docs/images)",
    )
    parser.add_argument("overrides", nargs="*", help="giugan fit options, after `--`")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="giugan-quality-") as scratch:
        folder = Path(scratch) if args.keep is None else args.keep.resolve()
        folder.mkdir(parents=True, exist_ok=True)
        wall, metrics_csv = run_quickstart(args.config.resolve(), args.overrides, folder)
        rows = evaluations(metrics_csv)
        print(format_table(rows))
        summary = f"wall time of the fit: {wall:.1f} s ({wall / 60:.2f} min) on {os.cpu_count()} cores"
        print(summary)
        if args.figures is not None and rows:
            last = rows[-1]
            title = (f"{args.label}: {100 * last['recognisable']:.1f} % recognisable, "
                     f"{last['modes_covered']:.0f}/36 modes at {int(last['generator_iteration'])} iterations")
            for path in write_figures(rows, metrics_csv.parent, args.figures, title):
                print(f"wrote {path}")
    record = {
        "label": args.label,
        "config": str(args.config),
        "overrides": args.overrides,
        "evaluations": rows,
        "wall_seconds": round(wall, 1),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if not args.no_save:
        args.results_dir.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", record["cpu"].lower()).strip("-")[:40]
        path = args.results_dir / f"quality-{slug}.json"
        records = json.loads(path.read_text()) if path.is_file() else []
        path.write_text(json.dumps([*records, record], indent=2) + "\n")
        print(f"appended to {path}")
    return record


if __name__ == "__main__":
    main()
