"""benchmarks/involution_aggregation.py: it times the formulations the dispatch chooses between.

No timing is asserted here (speed comparisons live in ``benchmarks/``); the run is tiny.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from benchmark_scripts import load_benchmark

bench = load_benchmark("involution_aggregation")
pytestmark = pytest.mark.usefixtures("single_thread")


def test_timed_functions_are_the_two_formulations_of_the_dispatch() -> None:
    from giugan.ops import involution_aggregate

    values, kernel = bench._inputs(16, 2, 4, 3, 2, torch.device("cpu"))
    expected = involution_aggregate(values, kernel, 3, 2)
    for function in bench.FORMULATIONS.values():
        torch.testing.assert_close(function(values, kernel, 3, 2), expected)


def test_main_prints_every_shape_and_appends_a_record(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(bench, "SHAPES", (("small", 8, 2, 4, 3), ("large", 8, 2, 16, 3)))
    argv = ["--rounds", "1", "--batch-size", "1", "--results-dir", str(tmp_path)]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "small" in out and "dispatch takes matmul" in out
    assert "large" in out and "dispatch takes unfold" in out
    (path,) = tmp_path.glob("involution_aggregation-*.json")
    (record,) = json.loads(path.read_text())
    assert [row["dispatch"] for row in record["results"]] == ["matmul", "unfold"]
    for row in record["results"]:
        for case in ("fwd_bwd", "double_backward"):
            medians = row["median_ms"][case]
            assert medians["unfold"] > 0 and medians["matmul"] > 0
            assert row["unfold_over_matmul"][case] == pytest.approx(medians["unfold"] / medians["matmul"])
    assert record["settings"]["matmul_max_pixels_per_tap"] > 0
