"""``giugan profile``: our parameter/MAC counts next to the papers' printed Params and FLOPs.

Every row of GIU-GANs Tables 1-8 is data here (:data:`PAPER_ROWS`): the row name as printed, the
preset that reproduces it, the printed Params and FLOPs, the counting rule, and a note where the
row does not match. ``--table igan2`` prints the iGAN report's Table 2 (module parameter counts).
Counts use :mod:`giugan.profiling.counting` (2020 thop rules, batch 1, G + D; docs/counting.md).

Examples::

    giugan profile --all
    giugan profile --table 5 --format markdown
    giugan profile --preset giu_gan_64 --format json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import torch

from giugan.profiling.counting import PairCount, count_pair

__all__ = [
    "IGAN_TABLE2",
    "PAPER_ROWS",
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

#: Counting-rule variants (docs/counting.md). ``thop-2020``: ReLU counts 0. ``thop-2020+relu``: ReLU
#: counts
#: one op per input element, the older thop rule that reproduces the WGAN-GP rows.
RULES: dict[str, bool] = {"thop-2020": False, "thop-2020+relu": True}

CIFAR = "CIFAR-10"
CELEBA = "CelebA"


@dataclass(frozen=True)
class PaperRow:
    """One printed row of a GIU-GANs table and the preset that reproduces it.

    ``paper_params`` / ``paper_flops`` are the strings exactly as printed (stored by meaning: for
    Table 4, whose header swaps the two columns, ``paper_params`` holds the value printed under
    "FLOPs"). ``note`` says why a row does not match, or anything else a reader must know.
    """

    table: str
    dataset: str
    row: str
    preset: str
    paper_params: str
    paper_flops: str
    rule: str = "thop-2020"
    note: str = ""


# --- notes (shared by several rows) --------------------------------------------------------------

_RELU_RULE = (
    "Counted with ReLU = 1 op per element (the older thop rule, a documented rule variant; "
    "docs/counting.md): the WGAN-GP rows exceed the architecturally identical SNGAN rows by exactly one "
    "op per hidden G activation."
)
_GIU_FLOPS = (
    "Params match. FLOPs: the paper's GIU-GAN MACs are 0.01-0.08M above our count for every "
    "GIU row (docs/counting.md: something small the authors counted that we cannot identify); the "
    "differences between GIU rows (Table 4's K / Group_Channels sweep, Table 1's placements) are "
    "reproduced."
)
_RBN = (
    " RBN replaces G's first and last BN: thop-2020 does not count it as BatchNorm (exact types) "
    "but counts its AdaptiveAvgPool2d twice per call, (H*W+1)*C each, a net +2C per RBN layer."
)
_TABLE4 = (
    " Table 4's header reads 'Params FLOPs' but the values are FLOPs then Params; stored by "
    "meaning."
)
_V_ROW = "Same network as GIU-GANs (giu_gan_32); only the optimiser differs: "
_V_COUNTS = (
    " Params match; FLOPs 0.02M low like every GIU row (see the GIU-GANs rows of Tables 5, 7)."
)
_RBN_PARAMS = (
    " Params: the match is judged on thop-2020's own parameter total (`thop_params`), the counter "
    "the paper used for both columns; it sums leaf modules only, so RBN's own 5C per layer is left "
    "out. Our trainable count (`params`, RBN included) rounds one step above the printed value."
)


def _giu(note: str = "") -> str:
    return _GIU_FLOPS + _RBN + note


#: Every row of GIU-GANs Tables 1-8, in print order.
PAPER_ROWS: tuple[PaperRow, ...] = (
    # Table 1: placement and number of GIU modules (CIFAR-10).
    PaperRow("1", CIFAR, "Middle D and G", "giu_gan_middle_32", "1.86M", "97.24m",
             note="GIU(128) after G block 2 and D block 2." + _RBN_PARAMS + " FLOPs: printed "
                  "with a lower-case 'm' (read as M); 0.03M low like every GIU row." + _RBN),
    PaperRow("1", CIFAR, "Shallow D and Deep G", "giu_gan_shallow_d_deep_g_32", "1.92M", "98.15M",
             note="No match (docs/counting.md): GIU(64) after D block 1 and G block 3 gives 1.85M / "
                  "97.25M; the printed 1.92M equals the Deep-D-Shallow-G row, so the paper's row "
                  "is probably wrong."),
    PaperRow("1", CIFAR, "Deep D and Shallow G", "giu_gan_32", "1.92M", "97.23M",
             note=_giu(" This is the GIU-GANs model of Tables 2-8.")),
    PaperRow("1", CIFAR, "All the D and G", "giu_gan_all_32", "1.94M", "99.03M", note=_giu()),
    PaperRow("1", CIFAR, "Only G", "giu_gan_only_g_32", "1.88M", "96.79M", note=_giu()),
    PaperRow("1", CIFAR, "Only D", "giu_gan_only_d_32", "1.88M", "96.79M",
             note=_giu(" Only D keeps RBN in G, as the GIU-GANs model does.")),
    # Table 2: parameter settings (same network, different optimisers).
    PaperRow("2", CIFAR, "GIU-GANs-V1", "giu_gan_32", "1.92M", "97.23M",
             note=_V_ROW + "Adam, D_lr 0.0001, G_lr 0.0004 (probably swapped vs the heykeetae "
                  "defaults)." + _V_COUNTS),
    PaperRow("2", CIFAR, "GIU-GANs-V2", "giu_gan_32", "1.92M", "97.23M",
             note=_V_ROW + "Adam, D_lr = G_lr = 0.0003." + _V_COUNTS),
    PaperRow("2", CIFAR, "GIU-GANs-V3", "giu_gan_32", "1.92M", "97.23M",
             note=_V_ROW + "Adam, D_lr = G_lr = 0.0002 (the chosen setting)." + _V_COUNTS),
    PaperRow("2", CIFAR, "GIU-GANs-V4", "giu_gan_32", "1.92M", "97.23M",
             note=_V_ROW + "Adagrad, D_lr = G_lr = 0.0002." + _V_COUNTS),
    PaperRow("2", CIFAR, "GIU-GANs-V5", "giu_gan_32", "1.92M", "97.23M",
             note=_V_ROW + "RMSprop, D_lr = G_lr = 0.0002." + _V_COUNTS),
    # Table 3: results of the Table 2 settings.
    PaperRow("3", CIFAR, "GIU-GANs-V1", "giu_gan_32", "1.92M", "97.23M",
             note="Results of the Table 2 setting of the same name. " + _V_ROW + "see Table 2."
                  + _V_COUNTS),
    PaperRow("3", CIFAR, "GIU-GANs-V2", "giu_gan_32", "1.92M", "97.23M",
             note="Results of the Table 2 setting of the same name. " + _V_ROW + "see Table 2."
                  + _V_COUNTS),
    PaperRow("3", CIFAR, "GIU-GANs-V3", "giu_gan_32", "1.92M", "97.23M",
             note="Results of the Table 2 setting of the same name. " + _V_ROW + "see Table 2."
                  + _V_COUNTS),
    PaperRow("3", CIFAR, "GIU-GANs-V4", "giu_gan_32", "1.92M", "97.23M",
             note="Results of the Table 2 setting of the same name. " + _V_ROW + "see Table 2."
                  + _V_COUNTS),
    PaperRow("3", CIFAR, "GIU-GANs-V5", "giu_gan_32", "1.92M", "97.23M",
             note="Results of the Table 2 setting of the same name. " + _V_ROW + "see Table 2."
                  + _V_COUNTS),
    # Table 4: K and Group_Channels (header swapped).
    PaperRow("4", CIFAR, "K=3, Group_Channels=16", "giu_gan_32", "1.92M", "97.23M",
             note=_giu(_TABLE4)),
    PaperRow("4", CIFAR, "K=5, Group_Channels=16", "giu_gan_k5_32", "1.95M", "97.76M",
             note=_giu(_TABLE4)),
    PaperRow("4", CIFAR, "K=7, Group_Channels=16", "giu_gan_k7_32", "1.99M", "98.56M",
             note="Params 2.00M vs printed 1.99M (docs/counting.md): 1,999,876, and still 1,998,916 "
                  "without RBN / 1,998,276 by thop-2020's own parameter total; FLOPs 0.02M low "
                  "like every GIU row. The K=3->7 increments (+0.08M params, +1.33M FLOPs) are "
                  "reproduced." + _RBN + _TABLE4),
    PaperRow("4", CIFAR, "K=3, Group_Channels=8", "giu_gan_gc8_32", "1.93M", "97.52M",
             note=_RBN_PARAMS.strip() + " FLOPs 0.01M low like every GIU row." + _RBN + _TABLE4),
    PaperRow("4", CIFAR, "K=3, Group_Channels=32", "giu_gan_gc32_32", "1.91M", "97.08M",
             note=_giu(_TABLE4)),
    # Table 5: CIFAR-10 comparison.
    PaperRow("5", CIFAR, "DCGANs", "dcgan_32", "4.34M", "309.24M"),
    PaperRow("5", CIFAR, "WGAN-GP", "wgan_gp_32", "1.85M", "96.39M", rule="thop-2020+relu",
             note=_RELU_RULE),
    PaperRow("5", CIFAR, "LSGANs", "lsgan_32", "1.15M", "117.25M"),
    PaperRow("5", CIFAR, "SNGANs", "sngan_32", "1.85M", "96.36M"),
    PaperRow("5", CIFAR, "SAGANs", "sagan_32", "1.98M", "101.65M"),
    PaperRow("5", CIFAR, "GIU-GANs", "giu_gan_32", "1.92M", "97.23M", note=_giu()),
    # Table 6: CelebA comparison.
    PaperRow("6", CELEBA, "WGAN-GP", "wgan_gp_64", "6.57M", "536.58M", rule="thop-2020+relu",
             note=_RELU_RULE),
    PaperRow("6", CELEBA, "WGAN-GP(+2)", "wgan_gp_plus2_64", "12.47M", "687.72M",
             rule="thop-2020+relu", note=_RELU_RULE),
    PaperRow("6", CELEBA, "WGAN-GP(+3)", "wgan_gp_plus3_64", "12.66M", "764.48M",
             rule="thop-2020+relu",
             note="Params match with extra 3x3 conv blocks after G blocks 1,2,3 and D blocks "
                  "1,3,4, but FLOPs are 763.48M vs the printed 764.48M, exactly 1.00M off; a "
                  "symmetric third pair (G block 3 + D block 2) would give 12.77M params. "
                  "Unresolved (docs/counting.md). " + _RELU_RULE),
    PaperRow("6", CELEBA, "LSGANs", "lsgan_64", "1.89M", "694.48M",
             note="No match (docs/counting.md, unresolved): the 32x32 PyTorch-GAN LSGAN recipe at 64x64 "
                  "has 3.63M params / 469.00M MACs (its Linear alone is 3.3M); the paper used a "
                  "different LSGAN at 64x64 that we cannot identify."),
    PaperRow("6", CELEBA, "SNGANs", "sngan_64", "6.57M", "536.48M",
             note="Params match; FLOPs 536.46M vs printed 536.48M (0.02M low, docs/counting.md), although "
                  "the same backbone reproduces WGAN-GP's 536.58M and SAGAN's 557.58M exactly."),
    PaperRow("6", CELEBA, "SAGANs", "sagan_64", "7.00M", "557.58M",
             note="FLOPs match; params 7,008,184 round to 7.01M, printed 7.00M (docs/counting.md; "
                  "probably truncated rather than rounded)."),
    PaperRow("6", CELEBA, "GIU-GANs", "giu_gan_64", "6.91M", "543.28M", note=_giu()),
    # Table 7: GIU ablation (CIFAR-10).
    PaperRow("7", CIFAR, "baseline", "baseline_32", "1.85M", "96.36M",
             note="WGAN-GP with spectral norm on G and D: the SN backbone (same count as SNGANs)."),
    PaperRow("7", CIFAR, "GIU-GANs without GIU module", "giu_gan_no_giu_32", "1.85M", "96.36M",
             note="Backbone + RBN in G's first and last block." + _RBN),
    PaperRow("7", CIFAR, "GIU-GANs", "giu_gan_32", "1.92M", "97.23M", note=_giu()),
    # Table 8: RBN ablation (CIFAR-10 half, CelebA half).
    PaperRow("8", CIFAR, "GIU-GANs without RBN", "giu_gan_no_rbn_32", "1.92M", "97.22M",
             note=_GIU_FLOPS),
    PaperRow("8", CIFAR, "GIU-GANs", "giu_gan_32", "1.92M", "97.23M", note=_giu()),
    PaperRow("8", CELEBA, "GIU-GANs without RBN", "giu_gan_no_rbn_64", "6.91M", "543.28M",
             note=_GIU_FLOPS),
    PaperRow("8", CELEBA, "GIU-GANs", "giu_gan_64", "6.91M", "543.28M", note=_giu()),
)


@dataclass(frozen=True)
class IGANCase:
    """One row of the iGAN report's Table 2 (C = 64): K, G, R and the printed '#parameters'."""

    case: int
    kernel_size: int
    groups: int
    reduction_ratio: int
    printed: int
    preset: str
    note: str = ""


_IGAN_NOTE = (
    "The report's '#parameters' is its eq. (4), (C/G + K^2) * C/(R*G) * G: the weights of a "
    "grouped, bias-free kernel generator (docs/operators.md). The module the iGAN code runs is ungrouped "
    "with a BN and a span bias, so its real count (module_params) is larger."
)

#: The iGAN report's Table 2, in print order (channels C = 64).
IGAN_TABLE2: tuple[IGANCase, ...] = (
    IGANCase(1, 3, 4, 2, 800, "igan_64", _IGAN_NOTE + " Case 1 is the iGAN default."),
    IGANCase(2, 7, 4, 8, 520, "igan_case2_64", _IGAN_NOTE),
    IGANCase(3, 7, 4, 2, 2080, "igan_case3_64", _IGAN_NOTE),
    IGANCase(4, 3, 4, 8, 200, "igan_case4_64", _IGAN_NOTE),
    IGANCase(5, 3, 1, 2, 2336, "igan_case5_64", _IGAN_NOTE),
    IGANCase(6, 1, 4, 2, 644, "igan_case6_64",
             "Typo in the report: it prints 644, but its own eq. (4) gives 544 for K=1, G=4, "
             "R=2 (the other six cases are reproduced exactly). " + _IGAN_NOTE),
    IGANCase(7, 5, 4, 2, 1312, "igan_case7_64", _IGAN_NOTE),
)

IGAN_CHANNELS = 64


def table_ids() -> list[str]:
    """Table identifiers accepted by ``--table``: "1".."8" and "igan2"."""
    return sorted({row.table for row in PAPER_ROWS}, key=int) + ["igan2"]


# --- counting with a per-run cache --------------------------------------------------------------


class ProfileCache:
    """Counts each preset once per run (several rows share a preset)."""

    def __init__(self) -> None:
        self._counts: dict[str, PairCount] = {}

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
            finally:
                torch.set_num_threads(threads)
        return self._counts[preset]


def _decimals(printed: str) -> int:
    number = printed.rstrip("Mm")
    return len(number.split(".")[1]) if "." in number else 0


def _round_millions(value: int, decimals: int) -> Decimal:
    quantum = Decimal(1).scaleb(-decimals)
    return (Decimal(value) / Decimal(1_000_000)).quantize(quantum, rounding=ROUND_HALF_UP)


def values_match(ours: int, printed: str) -> bool:
    """Whether ``ours`` equals a printed value like "1.92M" after rounding to its precision.

    Rounds half up (``1,915,000`` -> 1.92M); "97.24m" (Table 1's lower-case m) reads as millions.
    """
    if not printed or printed[-1] not in "Mm":
        raise ValueError(f"values_match: {printed!r} is not a value in millions like '1.92M'.")
    return _round_millions(ours, _decimals(printed)) == Decimal(printed[:-1])


def _format_millions(value: int, decimals: int = 2) -> str:
    return f"{_round_millions(value, decimals)}M"


def paper_rows(table: str | None, cache: ProfileCache) -> list[dict[str, Any]]:
    """The GIU-GANs rows of ``table`` (all tables when None) with our counts, as JSON-ready dicts."""
    rows = []
    for spec in PAPER_ROWS:
        if table is not None and spec.table != table:
            continue
        counts = cache.pair(spec.preset)
        macs = counts.macs(RULES[spec.rule])
        rows.append(
            {
                "table": spec.table,
                "dataset": spec.dataset,
                "row": spec.row,
                "preset": spec.preset,
                "params": counts.params,
                "macs": macs,
                "thop_params": counts.thop_params,
                "paper_params": spec.paper_params,
                "paper_flops": spec.paper_flops,
                "match": {
                    "params": values_match(counts.thop_params, spec.paper_params),
                    "flops": values_match(macs, spec.paper_flops),
                },
                "rule": spec.rule,
                "note": spec.note,
            }
        )
    return rows


def igan_table2_rows() -> list[dict[str, Any]]:
    """The iGAN report's Table 2 with eq. (4) and the real module count, as JSON-ready dicts.

    ``params`` is our eq.-(4) value (what the report's column prints, compared in ``match``);
    ``module_params`` is the trainable parameter count of the :class:`IGANInvolution2d` the
    preset inserts (twice: once in G, once in D).
    """
    from giugan.profiling.counting import trainable_parameters
    from giugan.ops import IGANInvolution2d, igan_report_parameter_count

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
                "formula_params": formula,
                "module_params": trainable_parameters(module),
                "macs": None,
                "paper_params": str(case.printed),
                "paper_flops": None,
                "match": {"params": formula == case.printed, "flops": None},
                "rule": "iGAN report eq. (4)",
                "note": case.note,
            }
        )
    return rows


# --- rendering -----------------------------------------------------------------------------------


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _paper_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]], list[str]]:
    header = ["table", "data", "row", "preset", "paper params", "our params", "paper FLOPs",
              "our MACs", "rule", "match P/F"]
    body = []
    notes = []
    for row in rows:
        body.append(
            [
                row["table"],
                row["dataset"],
                row["row"],
                row["preset"],
                row["paper_params"],
                f"{_format_millions(row['params'])} ({row['params']:,})",
                row["paper_flops"],
                f"{_format_millions(row['macs'])} ({row['macs']:,})",
                "relu=1" if row["rule"] == "thop-2020+relu" else "2020",
                f"{_yes_no(row['match']['params'])}/{_yes_no(row['match']['flops'])}",
            ]
        )
        notes.append(row["note"])
    return header, body, notes


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
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    numeric = {i for i, name in enumerate(header) if name.startswith(("our", "module", "eq."))}

    def line(cells: list[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([title, line(header), line(["-" * w for w in widths])] + [line(c) for c in body])


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
        f"Ours: thop-2020 MACs, batch 1, G + D (docs/counting.md); 'relu=1' rows count ReLU as 1 op/element."
    )


def _title(table: str) -> str:
    if table == "igan2":
        return "iGAN report, Table 2 (involution layer #parameters, C = 64)"
    return f"GIU-GANs, Table {table}"


def _render(tables: list[str], fmt: str, cache: ProfileCache) -> str:
    records: list[dict[str, Any]] = []
    sections: list[str] = []
    numbers: dict[str, int] = {}
    for table in tables:
        rows = igan_table2_rows() if table == "igan2" else paper_rows(table, cache)
        records += rows
        if fmt == "json":
            continue
        header, body, notes = _igan_table(rows) if table == "igan2" else _paper_table(rows)
        if fmt == "text":
            sections.append(_render_text(_title(table), header, body, notes, numbers))
        else:
            sections.append(_render_markdown(_title(table), header, body, notes))
    if fmt == "json":
        return json.dumps(records, indent=2)
    giu_rows = [r for r in records if r["table"] != "igan2"]
    if giu_rows:
        sections.append(_summary(giu_rows))
    if numbers:
        sections.append("\n".join(f"[{n}] {note}" for note, n in numbers.items()))
    return "\n\n".join(sections)


def _render_preset(name: str, fmt: str, relu_ops: bool, cache: ProfileCache) -> str:
    from giugan.nets.presets import PRESETS

    counts = cache.pair(name)
    rule = "thop-2020+relu" if relu_ops else "thop-2020"
    used_by = [f"Table {r.table} {r.row} ({r.dataset})" for r in PAPER_ROWS if r.preset == name]
    used_by += [f"iGAN report Table 2 case {c.case}" for c in IGAN_TABLE2 if c.preset == name]
    record = {
        "preset": name,
        "description": PRESETS[name].description,
        "rule": rule,
        "generator": {"params": counts.generator_params, "macs": counts.generator(relu_ops)},
        "discriminator": {
            "params": counts.discriminator_params,
            "macs": counts.discriminator(relu_ops),
        },
        "params": counts.params,
        "macs": counts.macs(relu_ops),
        "rows": used_by,
    }
    if fmt == "json":
        return json.dumps(record, indent=2)
    header = ["network", "params", "MACs"]
    body = [
        [part, f"{_format_millions(record[key]['params'])} ({record[key]['params']:,})",
         f"{_format_millions(record[key]['macs'])} ({record[key]['macs']:,})"]
        for part, key in (("G", "generator"), ("D", "discriminator"))
    ]
    body.append(["G + D", f"{_format_millions(counts.params)} ({counts.params:,})",
                 f"{_format_millions(record['macs'])} ({record['macs']:,})"])
    title = f"{name}: {record['description']} [rule {rule}]"
    if fmt == "markdown":
        out = [f"### {title}", "", "| network | params | MACs |", "| --- | --- | --- |"]
        out += ["| " + " | ".join(cells) + " |" for cells in body]
    else:
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(3)]
        out = [title]
        out += [
            "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                      for i, c in enumerate(cells))
            for cells in [header, *body]
        ]
    if used_by:
        out += ["", "reproduces: " + "; ".join(used_by)]
    return "\n".join(out)


# --- command line --------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="giugan profile",
        description="Parameters and MACs (2020 thop rules, batch 1, G + D) next to the papers' "
        "Params/FLOPs columns (docs/architectures.md).",
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
    cache = ProfileCache()
    if args.preset is not None:
        from giugan.nets.presets import PRESETS, build_preset

        if args.preset not in PRESETS:
            try:
                build_preset(args.preset)
            except ValueError as error:
                print(f"giugan profile: {error}", file=sys.stderr)
            return 2
        print(_render_preset(args.preset, args.format, args.relu_ops, cache))
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
