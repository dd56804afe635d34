"""Text, Markdown and JSON rendering of ``giugan profile`` rows (see :mod:`.profile`).

The rows are the JSON-ready dicts of :func:`giugan.profiling.profile.paper_rows` and
:func:`giugan.profiling.profile.igan_table2_rows`; every count shown is the one judged, labelled
with its rule (:data:`~giugan.profiling.paper_tables.PARAMS_RULE` for parameters, the row's MAC
rule for FLOPs). Counting rules: ``docs/counting.md``.
"""

from __future__ import annotations

import json
from typing import Any

from giugan.profiling.paper_tables import PARAMS_RULE, PARAMS_RULE_TEXT, format_millions

__all__ = ["RULES_HEADER", "render_differences", "render_preset", "render_tables"]

#: The rules every table row is judged by, printed above the tables.
RULES_HEADER = (
    f"Rules: {PARAMS_RULE_TEXT} FLOPs are thop-2020 MACs for one image (batch 1), G + D summed; "
    "rows whose rule reads 'relu=1' count ReLU as 1 op per element (the older thop rule). A value "
    "matches when it rounds (half up) to the printed value at the printed precision."
)


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _millions(value: int) -> str:
    return f"{format_millions(value)} ({value:,})"


def _paper_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]], list[str]]:
    header = ["table", "data", "row", "preset", "paper params", f"our params ({PARAMS_RULE})",
              "paper FLOPs", "our MACs", "rule", "match P/F", "our trainable (not judged)"]
    body = [
        [
            row["table"],
            row["dataset"],
            row["row"],
            row["preset"],
            row["paper_params"],
            _millions(row["params"]),
            row["paper_flops"],
            _millions(row["macs"]),
            "relu=1" if row["rule"] == "thop-2020+relu" else "2020",
            f"{_yes_no(row['match']['params'])}/{_yes_no(row['match']['flops'])}",
            f"{row['trainable_params']:,}",
        ]
        for row in rows
    ]
    return header, body, [row["note"] for row in rows]


def _igan_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]], list[str]]:
    header = ["case", "K", "G", "R", "report", "eq. (4)", "module params", "preset", "match"]
    body = [
        [
            row["row"].removeprefix("case "),
            str(row["kernel_size"]),
            str(row["groups"]),
            str(row["reduction_ratio"]),
            row["paper_params"],
            f"{row['formula_params']:,}",
            f"{row['module_params']:,}",
            row["preset"],
            _yes_no(row["match"]["params"]),
        ]
        for row in rows
    ]
    return header, body, [row["note"] for row in rows]


def _align(header: list[str], body: list[list[str]], numeric: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    return [line(header), line(["-" * w for w in widths])] + [line(c) for c in body]


def _render_text(
    title: str,
    header: list[str],
    body: list[list[str]],
    notes: list[str],
    numbers: dict[str, int],
) -> str:
    """Aligned columns; notes become footnote numbers shared through ``numbers``."""
    refs = []
    for note in notes:
        if note and note not in numbers:
            numbers[note] = len(numbers) + 1
        refs.append(f"[{numbers[note]}]" if note else "")
    header = header + ["note"]
    body = [cells + [ref] for cells, ref in zip(body, refs, strict=True)]
    numeric = {i for i, name in enumerate(header) if name.startswith(("our", "module", "eq."))}
    return "\n".join([title, *_align(header, body, numeric)])


def _render_markdown(title: str, header: list[str], body: list[list[str]], notes: list[str]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    out = [f"### {title}", "", "| " + " | ".join(header + ["note"]) + " |"]
    out.append("|" + "|".join(" --- " for _ in range(len(header) + 1)) + "|")
    out += [
        "| " + " | ".join(esc(c) for c in [*cells, note]) + " |"
        for cells, note in zip(body, notes, strict=True)
    ]
    return "\n".join(out)


def _summary(rows: list[dict[str, Any]]) -> str:
    both = sum(1 for r in rows if r["match"]["params"] and r["match"]["flops"])
    params = sum(1 for r in rows if r["match"]["params"])
    flops = sum(1 for r in rows if r["match"]["flops"])
    return (
        f"{len(rows)} rows: params match {params}, FLOPs match {flops}, both {both}. "
        f"Params: {PARAMS_RULE}; FLOPs: thop-2020 MACs, batch 1, G + D; 'relu=1' rows count ReLU "
        "as 1 op/element."
    )


def _signed_millions(value: int) -> str:
    return f"{value / 1_000_000:+.4f}M"


def render_differences(rows: list[dict[str, Any]], fmt: str) -> str | None:
    """Each row's difference from the table's GIU-GANs row, ours against the printed range."""
    compared = [r for r in rows if r.get("difference")]
    if not compared:
        return None
    reference = compared[0]["difference"]["reference"]
    header = ["row", "our params diff", "paper params diff", "reproduced", "our FLOPs diff",
              "paper FLOPs diff", "reproduced"]
    body = []
    for row in compared:
        cells = [row["row"]]
        for column in ("params", "flops"):
            difference = row["difference"][column]
            low, high = difference["paper_range"]
            cells += [_signed_millions(difference["ours"]), f"{low}..{high}M", _yes_no(difference["reproduced"])]
        body.append(cells)
    title = f"Differences from the row '{reference}' (printed: the range the rounded values allow)"
    if fmt == "markdown":
        lines = [f"{title}:", "", "| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
        return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in body])
    return "\n".join([title, *_align(header, body, {1, 2, 4, 5})])


def _title(table: str) -> str:
    if table == "igan2":
        return "iGAN report, Table 2 (involution layer #parameters, C = 64)"
    return f"GIU-GANs, Table {table}"


def render_tables(sections_rows: list[tuple[str, list[dict[str, Any]]]], fmt: str) -> str:
    """``(table id, rows)`` pairs as one text / Markdown / JSON document.

    Text and Markdown start with :data:`RULES_HEADER` when a GIU-GANs table is included and end
    with the match summary; text notes become shared footnotes. Tables 1 and 4 are followed by
    their rows' differences from the GIU-GANs row (:mod:`giugan.profiling.differences`).
    """
    records = [row for _, rows in sections_rows for row in rows]
    if fmt == "json":
        return json.dumps(records, indent=2)
    giu_rows = [r for r in records if r["table"] != "igan2"]
    sections: list[str] = [RULES_HEADER] if giu_rows else []
    numbers: dict[str, int] = {}
    for table, rows in sections_rows:
        header, body, notes = _igan_table(rows) if table == "igan2" else _paper_table(rows)
        if fmt == "text":
            sections.append(_render_text(_title(table), header, body, notes, numbers))
        else:
            sections.append(_render_markdown(_title(table), header, body, notes))
        differences = render_differences(rows, fmt)
        if differences:
            sections.append(differences)
    if giu_rows:
        sections.append(_summary(giu_rows))
    if numbers:
        sections.append("\n".join(f"[{n}] {note}" for note, n in numbers.items()))
    return "\n\n".join(sections)


def render_preset(record: dict[str, Any], fmt: str) -> str:
    """One preset's record (``params`` by :data:`PARAMS_RULE`, trainable and MACs, G and D)."""
    if fmt == "json":
        return json.dumps(record, indent=2)
    header = ["network", f"params ({PARAMS_RULE})", "trainable params (not judged)", "MACs"]
    parts = (("G", record["generator"]), ("D", record["discriminator"]), ("G + D", record))
    body = [
        [name, _millions(part["params"]), _millions(part["trainable_params"]),
         _millions(part["macs"])]
        for name, part in parts
    ]
    title = f"{record['preset']}: {record['description']} [MAC rule {record['rule']}]"
    if fmt == "markdown":
        out = [f"### {title}", "", "| " + " | ".join(header) + " |",
               "|" + "|".join(" --- " for _ in header) + "|"]
        out += ["| " + " | ".join(cells) + " |" for cells in body]
    else:
        out = [title, *_align(header, body, {1, 2, 3})]
        del out[2]  # no rule line under a preset's header
    if record["rows"]:
        out += ["", "reproduces: " + "; ".join(record["rows"])]
    return "\n".join(out)
