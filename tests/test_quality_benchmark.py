"""benchmarks/quality.py: reading the judge's rows from a run's metrics.csv and drawing its figures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"


def load_quality():
    spec = importlib.util.spec_from_file_location("quality_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_from_metrics_csv_and_figures(tmp_path: Path) -> None:
    quality = load_quality()
    run = tmp_path / "runs" / "quickstart"
    (run / "samples").mkdir(parents=True)
    grid = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    Image.fromarray(grid).save(run / "samples" / "latest.png")
    header = "step,loss_d,eval/recognisable,eval/modes_covered,eval/mode_balance,eval/judge_frechet\n"
    (run / "metrics.csv").write_text(
        header + "25,0.5,,,,\n1000,,0.25,12,0.9,80.5\n2000,,0.5,30,0.2,20.0\n"
    )
    rows = quality.evaluations(run / "metrics.csv")
    assert [r["generator_iteration"] for r in rows] == [1000, 2000]
    assert rows[-1] == {"generator_iteration": 2000, "recognisable": 0.5, "modes_covered": 30.0,
                        "mode_balance": 0.2, "judge_frechet": 20.0}
    assert "2000" in quality.format_table(rows).splitlines()[-1]
    written = quality.write_figures(rows, run, tmp_path / "figures", "a title")
    assert [p.name for p in written] == ["quickstart-grid.png", "quickstart-judge.png"]
    assert np.array_equal(np.asarray(Image.open(written[0])), grid)
    curves = Image.open(written[1])
    assert curves.size == (800, 300)
