"""``giugan report RUNS...``: finished runs gathered into the papers' tables (docs/reporting.md).

Prints the Markdown table (``--format csv|latex`` for the others); ``--output DIR`` also writes
``report.md``, ``report.csv``, ``report.tex`` and one plot per row (``plots/<row>.png``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from giugan.reporting import csv_text, gather, latex, markdown, plot_row


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="giugan report",
        description="Gather finished runs into the papers' tables: per row the paper's FID/IS, ours as "
        "mean ± std over seeds (best-of-N and last), seeds, iterations, Params/FLOPs and the protocol.",
    )
    parser.add_argument("runs", nargs="+", help="run folders (runs/<name>) or folders holding them (runs)")
    parser.add_argument("--format", choices=("markdown", "csv", "latex"), default="markdown",
                        help="what to print (default markdown)")
    parser.add_argument("--output", default=None, help="also write report.md, report.csv, report.tex and "
                        "plots/<row>.png into this folder")
    parser.add_argument("--no_counts", action="store_true", help="leave out Params/FLOPs (no networks built)")
    return parser


def main(argv: list[str]) -> int:
    """``giugan report ...``; the exit status."""
    options = _parser().parse_args(argv)
    report = gather(options.runs, counts=not options.no_counts)
    if not report.rows:
        raise ValueError(
            f"giugan report {' '.join(options.runs)}: no run folder there (a run folder holds the "
            f"config.yaml that giugan fit writes). Give runs/<name> folders or the folder holding them."
        )
    texts = {"markdown": markdown(report), "csv": csv_text(report), "latex": latex(report)}
    print(texts[options.format], end="")
    if options.output:
        folder = Path(options.output)
        folder.mkdir(parents=True, exist_ok=True)
        for name, extension in (("markdown", "md"), ("csv", "csv"), ("latex", "tex")):
            (folder / f"report.{extension}").write_text(texts[name])
        plots = [p for row in report.rows if (p := plot_row(row, folder / "plots"))]
        print(f"[giugan] wrote {folder}/report.md, report.csv, report.tex and {len(plots)} plot(s) in {folder}/plots")
    return 0
