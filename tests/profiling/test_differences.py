"""Differences between rows against the range the printed (rounded) values allow."""

from __future__ import annotations

from decimal import Decimal

from giugan.profiling.differences import printed_difference_range, row_differences


def test_printed_difference_range_is_one_unit_either_way() -> None:
    assert printed_difference_range("99.03M", "97.23M") == (Decimal("1.79"), Decimal("1.81"))
    assert printed_difference_range("97.24m", "97.23M") == (Decimal("0.00"), Decimal("0.02"))
    assert printed_difference_range("1.9M", "1.92M") == (Decimal("-0.075"), Decimal("0.035"))  # 0.05 + 0.005


def _row(table: str, row: str, preset: str, params: int, macs: int, paper: tuple[str, str]) -> dict:
    return {"table": table, "row": row, "preset": preset, "params": params, "macs": macs,
            "paper_params": paper[0], "paper_flops": paper[1]}


def test_row_differences_compare_with_the_tables_giu_gan_row() -> None:
    rows = [
        _row("1", "Deep D and Shallow G", "giu_gan_32", 1_915_076, 97_211_009, ("1.92M", "97.23M")),
        _row("1", "All the D and G", "giu_gan_all_32", 1_937_012, 98_956_289, ("1.94M", "99.03M")),
        _row("1", "Edge", "x", 1_915_076, 97_211_009 + 1_810_000, ("1.92M", "99.04M")),
        _row("5", "DCGANs", "dcgan_32", 4_341_248, 309_239_808, ("4.34M", "309.24M")),
    ]
    differences = row_differences(rows)
    assert set(differences) == {("1", "All the D and G"), ("1", "Edge")}  # not the reference, not Table 5
    all_rows = differences[("1", "All the D and G")]
    assert all_rows["reference"] == "Deep D and Shallow G"
    assert all_rows["flops"] == {"ours": 1_745_280, "paper_range": ["1.790", "1.810"], "reproduced": False}
    assert all_rows["params"] == {"ours": 21_936, "paper_range": ["0.010", "0.030"], "reproduced": True}
    assert differences[("1", "Edge")]["flops"]["reproduced"]  # +1.81M: on the range's edge
