"""Differences between rows of one table: ours against the range the printed values allow.

A row can miss the printed value by a constant offset (every GIU row's MACs are a little low)
and still reproduce what the table is about: how much a change of the network adds. For the
tables that vary the GIU-GANs model (:data:`DIFFERENCE_TABLES`: Table 1's placements, Table 4's
K / Group_Channels), each row's Params and FLOPs difference from the table's GIU-GANs row
(:data:`REFERENCE_PRESET`) is compared with the differences the printed values allow: each
printed value stands for anything that rounds (half up) to it, so the printed difference
``a - b`` allows ``a - b`` plus or minus one unit of the printed precision.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

__all__ = ["DIFFERENCE_TABLES", "REFERENCE_PRESET", "printed_difference_range", "row_differences"]

#: Tables whose rows are variations of the GIU-GANs model, compared with its row.
DIFFERENCE_TABLES = ("1", "4")
#: The GIU-GANs model of Tables 2-8 ("Deep D and Shallow G" in Table 1, K=3, Group_Channels=16 in 4).
REFERENCE_PRESET = "giu_gan_32"


def _printed(value: str) -> tuple[Decimal, Decimal]:
    """A printed value in millions (``"97.24m"`` reads as M) and half a unit of its precision."""
    number = Decimal(value.rstrip("Mm"))
    return number, Decimal(1).scaleb(number.as_tuple().exponent) / 2


def printed_difference_range(printed: str, reference: str) -> tuple[Decimal, Decimal]:
    """The differences ``printed - reference`` (in millions) that the two printed values allow."""
    value, half = _printed(printed)
    base, base_half = _printed(reference)
    return value - base - half - base_half, value - base + half + base_half


def _difference(ours: int, reference: int, printed: str, printed_reference: str) -> dict[str, Any]:
    low, high = printed_difference_range(printed, printed_reference)
    millions = Decimal(ours - reference) / 1_000_000
    return {"ours": ours - reference, "paper_range": [str(low), str(high)],
            "reproduced": low <= millions <= high}


def row_differences(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """``(table, row)`` -> the row's Params and FLOPs differences from its table's GIU-GANs row.

    ``rows`` are :func:`giugan.profiling.profile.paper_rows` records (or ``giugan profile
    --format json`` output); rows of other tables, and the reference rows themselves, get none.
    Each value: ``reference`` (the row compared with), ``params`` and ``flops``, each with
    ``ours`` (an exact integer difference), ``paper_range`` (millions, as strings) and
    ``reproduced``.
    """
    references = {r["table"]: r for r in rows if r["table"] in DIFFERENCE_TABLES and r["preset"] == REFERENCE_PRESET}
    differences = {}
    for row in rows:
        reference = references.get(row["table"])
        if reference is None or row is reference:
            continue
        differences[(row["table"], row["row"])] = {
            "reference": reference["row"],
            "params": _difference(row["params"], reference["params"], row["paper_params"], reference["paper_params"]),
            "flops": _difference(row["macs"], reference["macs"], row["paper_flops"], reference["paper_flops"]),
        }
    return differences
