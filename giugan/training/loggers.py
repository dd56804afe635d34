"""A CSV logger that survives resumes: it appends to the run's ``metrics.csv`` instead of deleting it.

Lightning's ``CSVLogger`` removes an existing ``metrics.csv`` when it starts, so resuming a run
with ``--ckpt_path last`` into the same run directory would erase the curves of everything before
the resume. This subclass keeps the file (and its header), and :meth:`CSVLogger.truncate_after`
drops rows a killed attempt wrote after the checkpoint it is resumed from, so the history has each
generator iteration once.
"""

from __future__ import annotations

import csv
from typing import Any

from lightning.pytorch.loggers import CSVLogger as _LightningCSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only


class _AppendingExperimentWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
                self.metrics_keys = list(next(csv.reader(handle), []))

    def truncate_after(self, step: int) -> int:
        """Remove rows whose ``step`` exceeds ``step``; return how many were removed."""
        self.save()
        if not self._fs.isfile(self.metrics_file_path):
            return 0
        with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
            reader = csv.DictReader(handle)
            fieldnames = list(reader.fieldnames or [])
            rows = list(reader)
        kept = [r for r in rows if not r.get("step") or float(r["step"]) <= step]
        if len(kept) == len(rows):
            return 0
        tmp = self.metrics_file_path + ".tmp"
        with self._fs.open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(kept)
        self._fs.mv(tmp, self.metrics_file_path)  # a rename: the old file stays whole until then
        return len(rows) - len(kept)


class CSVLogger(_LightningCSVLogger):
    """Lightning's ``CSVLogger`` that appends on resume (same arguments)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is not None:
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = _AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment

    @rank_zero_only
    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` by an attempt that was killed (called on resume)."""
        self.experiment.truncate_after(step)
