"""The ``giugan profile`` numbers quoted in README.md and docs/counting.md, generated, not typed.

Each quoted passage sits between ``<!-- NAME -->`` and ``<!-- /NAME -->`` markers and is the text
:func:`blocks` renders from the profile's rows (the records ``giugan profile --all --format json``
prints). ``python -m giugan.profiling.doc_numbers`` rewrites the passages of a checkout;
``--check`` only reports the files whose passages differ (exit status 1), as the tests do.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from giugan.profiling.paper_tables import PARAMS_RULE
from giugan.profiling.render import render_differences

__all__ = ["MARKED_FILES", "blocks", "fill", "main", "stale_files"]

#: The files holding generated passages (relative to the repository root) and the passages' names.
MARKED_FILES: dict[str, tuple[str, ...]] = {
    "README.md": ("profile-counts",),
    "docs/counting.md": ("profile-counts", "profile-rows", "profile-differences"),
}


def _by_table(rows: list[dict[str, Any]]) -> str:
    """``Table 5 DCGANs, WGAN-GP; Table 6 SAGANs`` (print order; a row of ``rows`` appears in them all)."""
    datasets: dict[str, set[str]] = {}
    for row in rows:
        datasets.setdefault(row["table"], set()).add(row["dataset"])
    tables: dict[str, list[str]] = {}
    for row in rows:  # a table of two datasets (Table 8) names each row's
        mixed = len(datasets[row["table"]]) > 1
        tables.setdefault(row["table"], []).append(f"{row['dataset']} {row['row']}" if mixed else row["row"])
    return "; ".join(f"Table {table} {', '.join(names)}" for table, names in tables.items())


def _millions(value: int) -> str:
    return f"{value / 1_000_000:+.4f}M"


def _differences_sentence(rows: list[dict[str, Any]]) -> str:
    compared = [r for r in rows if r.get("difference")]
    parts = []
    for table in dict.fromkeys(r["table"] for r in compared):
        in_table = [r for r in compared if r["table"] == table]
        missed = [r for r in in_table if not r["difference"]["flops"]["reproduced"]]
        text = f"Table {table}: {len(in_table) - len(missed)} of {len(in_table)}"
        if missed:
            text += " (not: " + ", ".join(
                f"{r['row']} {_millions(r['difference']['flops']['ours'])} against a printed "
                f"{'..'.join(r['difference']['flops']['paper_range'])}M" for r in missed) + ")"
        parts.append(text)
    return ("Each row's FLOPs difference from its table's GIU-GANs row lies within what the printed "
            "values allow for " + "; ".join(parts) + ".")


def counts_passage(rows: list[dict[str, Any]]) -> str:
    """The match counts, the rows behind them and the differences between rows, as one passage."""
    params_missed = [r for r in rows if not r["match"]["params"]]
    flops_matched = [r for r in rows if r["match"]["flops"]]
    params = len(rows) - len(params_missed)
    return (
        f"Of the {len(rows)} rows, Params match the printed value for {params} (judged on "
        f"{PARAMS_RULE.replace(' total', '')}'s own parameter total, the counter the paper used; "
        f"not: {_by_table(params_missed)}) and FLOPs for {len(flops_matched)} "
        f"({_by_table(flops_matched)}). {_differences_sentence(rows)}"
    )


def rows_passage(rows: list[dict[str, Any]]) -> str:
    """Every row: printed Params/FLOPs, ours (thop-2020 parameter total, MACs) and the verdicts."""
    lines = ["| table | data | row | preset | printed Params / FLOPs | ours: params / MACs | match P/F |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        verdict = "/".join("yes" if r["match"][k] else "no" for k in ("params", "flops"))
        lines.append(f"| {r['table']} | {r['dataset']} | {r['row']} | {r['preset']} | {r['paper_params']} / "
                     f"{r['paper_flops']} | {r['params']:,} / {r['macs']:,} | {verdict} |")
    return "\n".join(lines)


def differences_passage(rows: list[dict[str, Any]]) -> str:
    """The Markdown differences tables of ``giugan profile --table 1`` and ``--table 4``."""
    tables = dict.fromkeys(r["table"] for r in rows if r.get("difference"))
    sections = []
    for table in tables:
        rendered = render_differences([r for r in rows if r["table"] == table], "markdown")
        sections.append(f"Table {table}. {rendered}")
    return "\n\n".join(sections)


def blocks(records: list[dict[str, Any]]) -> dict[str, str]:
    """Every generated passage from ``giugan profile --all --format json`` records."""
    rows = [r for r in records if r["table"] != "igan2"]
    return {"profile-counts": counts_passage(rows), "profile-rows": rows_passage(rows),
            "profile-differences": differences_passage(rows)}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {re.escape(name)} -->)(.*?)(<!-- /{re.escape(name)} -->)", re.DOTALL)


def quoted(text: str, name: str) -> str | None:
    """The passage between ``name``'s markers in ``text`` (None without markers)."""
    found = _pattern(name).search(text)
    return found.group(2).strip("\n") if found else None


def fill(text: str, passages: dict[str, str], names: Sequence[str]) -> str:
    """``text`` with each named passage replaced by ``passages[name]`` (ValueError without markers)."""
    for name in names:
        if quoted(text, name) is None:
            raise ValueError(f"no <!-- {name} --> ... <!-- /{name} --> markers to fill")
        block = passages[name]
        # A passage inside a paragraph stays inline; a table gets lines of its own.
        inline = "\n" not in block
        text = _pattern(name).sub(lambda m, b=block, i=inline: m.group(1) + (b if i else f"\n{b}\n") + m.group(3), text)
    return text


def stale_files(root: Path, passages: dict[str, str]) -> list[str]:
    """The marked files under ``root`` whose passages differ from ``passages``."""
    return [name for name, names in MARKED_FILES.items()
            if fill((root / name).read_text(), passages, names) != (root / name).read_text()]


def current_records() -> list[dict[str, Any]]:
    """The records of ``giugan profile --all --format json``, computed here."""
    from giugan.profiling.profile import ProfileCache, paper_rows

    cache = ProfileCache()
    rows = paper_rows(None, cache)
    cache.save()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite (or with ``--check`` compare) the generated passages of a checkout."""
    parser = argparse.ArgumentParser(prog="python -m giugan.profiling.doc_numbers", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2],
                        help="the repository checkout (default: the one this giugan is imported from)")
    parser.add_argument("--check", action="store_true", help="only list the files whose passages differ")
    args = parser.parse_args(argv)
    passages = blocks(current_records())
    stale = stale_files(args.root, passages)
    if args.check:
        for name in stale:
            print(f"{args.root / name}: the profile numbers differ; run python -m giugan.profiling.doc_numbers",
                  file=sys.stderr)
        return 1 if stale else 0
    for name in stale:
        path = args.root / name
        path.write_text(fill(path.read_text(), passages, MARKED_FILES[name]))
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
