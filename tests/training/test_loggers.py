"""giugan.training.loggers.CSVLogger keeps a run's history across a resume and drops a killed attempt's tail."""

from __future__ import annotations

import csv
from pathlib import Path

from giugan.training.loggers import CSVLogger


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_csv_logger_appends_on_resume_and_truncates_after_the_checkpoint(tmp_path: Path) -> None:
    first = CSVLogger(save_dir=str(tmp_path), name="run", version="")
    for step in (1, 2, 3, 4):
        first.log_metrics({"loss_d": float(step)}, step=step)
    first.log_metrics({"eval/fid": 7.0}, step=4)
    first.save()
    metrics = tmp_path / "run" / "metrics.csv"
    assert [r["step"] for r in rows(metrics)] == ["1", "2", "3", "4", "4"]

    # the run was killed after step 4; the last checkpoint was taken at step 2
    resumed = CSVLogger(save_dir=str(tmp_path), name="run", version="")
    resumed.truncate_after(2)
    resumed.log_metrics({"loss_d": 30.0, "loss_g": 1.0}, step=3)  # a new column as well
    resumed.save()
    table = rows(metrics)
    assert [r["step"] for r in table] == ["1", "2", "3"]
    assert table[0]["loss_d"] == "1.0" and table[2]["loss_d"] == "30.0" and table[2]["loss_g"] == "1.0"
    assert "eval/fid" in table[0]  # the old header survives
