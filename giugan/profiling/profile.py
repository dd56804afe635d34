"""``giugan profile``: our parameter/MAC counts next to the papers' printed Params and FLOPs.

Every row of GIU-GANs Tables 1-8 is data (:data:`~giugan.profiling.paper_tables.PAPER_ROWS`): the
row name as printed, the preset that reproduces it, the printed Params and FLOPs, the MAC rule,
and a note where the row does not match. ``--table igan2`` prints the iGAN report's Table 2
(module parameter counts). Counts use :mod:`giugan.profiling.counting` (2020 thop rules, batch 1,
G + D; ``docs/counting.md``). One parameter rule judges every row, and the value judged is the
value shown as ``params``: thop-2020's own parameter total
(:data:`~giugan.profiling.paper_tables.PARAMS_RULE`); the trainable count is shown beside it.

Examples::

    giugan profile --all
    giugan profile --table 5 --format markdown
    giugan profile --preset giu_gan_64 --format json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import torch

from giugan.profiling.counting import PairCount, count_pair
from giugan.profiling.differences import row_differences
from giugan.profiling.paper_tables import (
    CELEBA,
    IGAN_CHANNELS,
    IGAN_TABLE2,
    PAPER_ROWS,
    PARAMS_RULE,
    RULES,
    IGANCase,
    PaperRow,
    table_ids,
    values_match,
)
from giugan.profiling.render import render_preset, render_tables

__all__ = [
    "IGAN_TABLE2",
    "PAPER_ROWS",
    "PARAMS_RULE",
    "RULES",
    "IGANCase",
    "PaperRow",
    "ProfileCache",
    "igan_table2_rows",
    "main",
    "paper_rows",
    "table_ids",
    "values_match",
]

# --- counting with a cache ----------------------------------------------------------------------


class ProfileCache:
    """Counts each preset once per run (several rows share a preset), kept on disk between runs.

    With ``disk`` (the default), counts come from :mod:`giugan.profiling.count_cache` when its
    file for the installed sources exists, and :meth:`save` writes the ones counted anew.
    """

    def __init__(self, disk: bool = True) -> None:
        from giugan.profiling.count_cache import cache_file, load_counts

        self._path = cache_file() if disk else None
        self._counts: dict[str, PairCount] = load_counts(self._path) if self._path else {}
        self._new = False

    def pair(self, preset: str) -> PairCount:
        """G and D counts of ``preset`` (built on first use)."""
        if preset not in self._counts:
            from giugan.nets.presets import build_preset

            # Batch-1 work is tiny: one intra-op thread avoids OpenMP contention (several times
            # faster on a busy 2-core machine). Restored afterwards.
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                generator, discriminator = build_preset(preset)
                self._counts[preset] = count_pair(generator, discriminator)
                self._new = True
            finally:
                torch.set_num_threads(threads)
        return self._counts[preset]

    def save(self) -> None:
        """Write the counts to the disk cache if any were counted in this run."""
        from giugan.profiling.count_cache import save_counts

        if self._path is not None and self._new:
            save_counts(self._path, self._counts)


def paper_rows(table: str | None, cache: ProfileCache) -> list[dict[str, Any]]:
    """The GIU-GANs rows of ``table`` (all tables when None) with our counts, as JSON-ready dicts.

    ``difference``: the row's Params/FLOPs difference from its table's GIU-GANs row against the
    printed one (Tables 1 and 4, see :mod:`giugan.profiling.differences`), else None.
    """
    rows = []
    for entry in PAPER_ROWS:
        if table is not None and entry.table != table:
            continue
        counts = cache.pair(entry.preset)
        macs = counts.macs(RULES[entry.rule])
        rows.append(
            {
                "table": entry.table,
                "dataset": entry.dataset,
                "row": entry.row,
                "preset": entry.preset,
                "params": counts.thop_params,
                "trainable_params": counts.params,
                "macs": macs,
                "paper_params": entry.paper_params,
                "paper_flops": entry.paper_flops,
                "match": {
                    "params": values_match(counts.thop_params, entry.paper_params),
                    "flops": values_match(macs, entry.paper_flops),
                },
                "params_rule": PARAMS_RULE,
                "rule": entry.rule,
                "note": entry.note,
            }
        )
    differences = row_differences(rows)
    for row in rows:
        row["difference"] = differences.get((row["table"], row["row"]))
    return rows


def igan_table2_rows() -> list[dict[str, Any]]:
    """The iGAN report's Table 2 with eq. (4) and the real module count, as JSON-ready dicts.

    ``params`` is our eq.-(4) value (what the report's column prints, compared in ``match``);
    ``module_params`` is the trainable parameter count of the :class:`IGANInvolution2d` the
    preset inserts (twice: once in G, once in D).
    """
    from giugan.ops import IGANInvolution2d, igan_report_parameter_count
    from giugan.profiling.counting import trainable_parameters

    rows = []
    for case in IGAN_TABLE2:
        formula = igan_report_parameter_count(
            IGAN_CHANNELS, case.kernel_size, case.groups, case.reduction_ratio
        )
        module = IGANInvolution2d(
            IGAN_CHANNELS, case.kernel_size, case.groups, case.reduction_ratio
        )
        rows.append(
            {
                "table": "igan2",
                "dataset": CELEBA,
                "row": f"case {case.case}",
                "preset": case.preset,
                "kernel_size": case.kernel_size,
                "groups": case.groups,
                "reduction_ratio": case.reduction_ratio,
                "params": formula,
                "trainable_params": None,
                "formula_params": formula,
                "module_params": trainable_parameters(module),
                "macs": None,
                "paper_params": str(case.printed),
                "paper_flops": None,
                "match": {"params": formula == case.printed, "flops": None},
                "params_rule": "iGAN report eq. (4)",
                "rule": "iGAN report eq. (4)",
                "note": case.note,
            }
        )
    return rows


def _render(tables: list[str], fmt: str, cache: ProfileCache) -> str:
    sections = [
        (table, igan_table2_rows() if table == "igan2" else paper_rows(table, cache))
        for table in tables
    ]
    return render_tables(sections, fmt)


def _preset_record(name: str, relu_ops: bool, cache: ProfileCache) -> dict[str, Any]:
    from giugan.nets.presets import PRESETS

    counts = cache.pair(name)
    used_by = [f"Table {r.table} {r.row} ({r.dataset})" for r in PAPER_ROWS if r.preset == name]
    used_by += [f"iGAN report Table 2 case {c.case}" for c in IGAN_TABLE2 if c.preset == name]
    return {
        "preset": name,
        "description": PRESETS[name].description,
        "rule": "thop-2020+relu" if relu_ops else "thop-2020",
        "params_rule": PARAMS_RULE,
        "generator": {
            "params": counts.generator_thop_params,
            "trainable_params": counts.generator_params,
            "macs": counts.generator(relu_ops),
        },
        "discriminator": {
            "params": counts.discriminator_thop_params,
            "trainable_params": counts.discriminator_params,
            "macs": counts.discriminator(relu_ops),
        },
        "params": counts.thop_params,
        "trainable_params": counts.params,
        "macs": counts.macs(relu_ops),
        "rows": used_by,
    }


# --- command line --------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="giugan profile",
        description="Parameters and MACs (2020 thop rules, batch 1, G + D) next to the papers' "
        "Params/FLOPs columns. Params: thop-2020's parameter total; see docs/counting.md.",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--table", metavar="ID",
                       help=f"one table: {', '.join(table_ids())} (igan2 = iGAN report Table 2)")
    which.add_argument("--all", action="store_true", help="every table (the default)")
    which.add_argument("--preset", metavar="NAME",
                       help="one preset's params/MACs, G and D separately")
    parser.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    parser.add_argument("--relu-ops", action="store_true",
                        help="with --preset: count ReLU as 1 op per element (older thop rule)")
    parser.add_argument("--no-cache", action="store_true",
                        help="count every preset now; neither read nor write the counts cache "
                        "(kept per version of the network sources, see docs/counting.md)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``giugan profile [--table ID | --all | --preset NAME] [--format text|markdown|json]``.

    Returns 0 on success, 2 on a usage error (unknown table or preset, bad option).
    """
    parser = _parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:  # argparse already printed the message
        return exit_.code if isinstance(exit_.code, int) else 2
    if args.relu_ops and args.preset is None:
        print(
            "giugan profile: --relu-ops applies to --preset only; table rows carry their own rule "
            "(see the 'rule' column).",
            file=sys.stderr,
        )
        return 2
    cache = ProfileCache(disk=not args.no_cache)
    if args.preset is not None:
        from giugan.nets.presets import PRESETS, build_preset

        if args.preset not in PRESETS:
            try:
                build_preset(args.preset)
            except ValueError as error:
                print(f"giugan profile: {error}", file=sys.stderr)
            return 2
        print(render_preset(_preset_record(args.preset, args.relu_ops, cache), args.format))
        cache.save()
        return 0
    if args.table is not None:
        if args.table not in table_ids():
            print(
                f"giugan profile: unknown table {args.table!r}; choose one of "
                f"{', '.join(table_ids())} (igan2 = the iGAN report's Table 2), or use --all.",
                file=sys.stderr,
            )
            return 2
        tables = [args.table]
    else:
        tables = table_ids()
    print(_render(tables, args.format, cache))
    cache.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
