"""A :class:`~giugan.reporting.summary.Report` as Markdown, CSV and LaTeX (docs/reporting.md)."""

from __future__ import annotations

import csv
import io
import json

from giugan.metrics.registry import BEST_BY
from giugan.reporting.summary import SCORE_TITLES, Report, RowSummary

#: Printed under the table: what "best" and "last" are (the order that decides "best" is the
#: metrics registry's).
EXPLANATION = (
    "Ours: mean ± sample standard deviation over seeds of each run's best-of-N evaluation (all its "
    "scores at the evaluation its best checkpoint was chosen by: "
    + ", else ".join(SCORE_TITLES.get(key, key) for key in BEST_BY)
    + ", the first the run measured) and of its last evaluation. The GIU-GANs paper's IS column "
    "is not on the standard scale (docs/metrics.md)."
)


def _millions(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:.2f}M"


def _paper(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _protocol_cell(row: RowSummary, names: dict[str, str]) -> str:
    if row.mixed_protocols:
        return "MIXED " + ", ".join(names[p] for p in row.protocols) + ": not averaged"
    return names[row.protocols[0]] if row.protocols else "-"


def protocol_names(report: Report) -> dict[str, str]:
    """Fingerprint -> ``P1``, ``P2``, ... in order of first appearance."""
    return {fingerprint: f"P{i + 1}" for i, fingerprint in enumerate(report.protocols)}


def table(report: Report) -> tuple[list[str], list[list[str]]]:
    """Header and body of the results table (text cells)."""
    scores, names = report.scores(), protocol_names(report)
    header = ["row", "paper (table, row)", "paper FID", "paper IS"]
    for name in scores:
        header += [f"{SCORE_TITLES[name]} best", f"{SCORE_TITLES[name]} last"]
    header += ["seeds", "generator iterations", "Params", "FLOPs (MACs)", "protocol"]
    body = []
    for row in report.rows:
        paper = row.paper
        cells = [row.row, f"{paper.table}, {paper.row}" if paper else "-",
                 _paper(paper.fid if paper else None), _paper(paper.inception_score if paper else None)]
        for name in scores:
            cells += [row.best[name].text() if name in row.best else "-",
                      row.last[name].text() if name in row.last else "-"]
        iterations = row.iterations
        cells += [
            f"{len(row.seeds)} ({', '.join(map(str, row.seeds))})" if row.seeds else "0",
            "-" if iterations is None else (str(iterations[0]) if iterations[0] == iterations[1]
                                            else f"{iterations[0]}-{iterations[1]}"),
            _millions(row.params), _millions(row.macs), _protocol_cell(row, names),
        ]
        body.append(cells)
    return header, body


def _left_out(report: Report) -> list[str]:
    return [f"{r.name} ({r.row}, seed {r.seed}): {r.status}"
            + (f" at generator iteration {r.reached} of {r.target}" if r.status == "unfinished" else "")
            for r in report.left_out]


def markdown(report: Report) -> str:
    """The table, the protocols it was measured under and the runs left out, as Markdown."""
    header, body = table(report)

    def cell(value: str) -> str:
        return value.replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in cells) + " |" for cells in body]
    lines += ["", EXPLANATION]
    names = protocol_names(report)
    lines += ["", "Protocols:"] + [f"- {names[k]}: `{json.dumps(v, sort_keys=True)}`" for k, v in report.protocols.items()]
    left_out = _left_out(report)
    lines += ["", "Runs left out of the averages:" if left_out else "Runs left out of the averages: none."]
    lines += [f"- {line}" for line in left_out]
    return "\n".join(lines) + "\n"


def csv_text(report: Report) -> str:
    """One line per row, numbers unformatted (``<score>_best_mean``, ``..._std``, ``..._last_...``)."""
    scores, names = report.scores(), protocol_names(report)
    header = ["row", "paper_table", "paper_row", "paper_fid", "paper_is", "seeds", "runs", "left_out",
              "iterations_min", "iterations_max", "params", "macs", "protocol", "mixed_protocols"]
    for name in scores:
        header += [f"{name}_{which}_{stat}" for which in ("best", "last") for stat in ("mean", "std")]
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\n")
    writer.writerow(header)
    for row in report.rows:
        paper, iterations = row.paper, row.iterations
        values = [row.row, paper.table if paper else "", paper.row if paper else "",
                  paper.fid if paper and paper.fid is not None else "",
                  paper.inception_score if paper and paper.inception_score is not None else "",
                  " ".join(map(str, row.seeds)), len(row.runs), len(row.runs) - len(row.used),
                  iterations[0] if iterations else "", iterations[1] if iterations else "",
                  row.params if row.params is not None else "", row.macs if row.macs is not None else "",
                  " ".join(names[p] for p in row.protocols), int(row.mixed_protocols)]
        for name in scores:
            for spreads in (row.best, row.last):
                spread = spreads.get(name)
                values += [spread.mean if spread else "", spread.std if spread and spread.std is not None else ""]
        writer.writerow(values)
    return output.getvalue()


def latex(report: Report) -> str:
    """The table as a LaTeX ``tabular`` (booktabs), for a paper."""
    header, body = table(report)

    def escape(value: str) -> str:
        for raw, safe in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("_", "\\_"),
                          ("#", "\\#"), ("±", "$\\pm$")):
            value = value.replace(raw, safe)
        return value

    lines = ["\\begin{tabular}{l" + "l" * (len(header) - 1) + "}", "\\toprule",
             " & ".join(escape(h) for h in header) + " \\\\", "\\midrule"]
    lines += [" & ".join(escape(c) for c in cells) + " \\\\" for cells in body]
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"
