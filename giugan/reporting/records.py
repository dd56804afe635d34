"""What a finished (or unfinished) run recorded: read back from its folder, never recomputed.

A run folder (``runs/<name>/``) holds ``config.yaml`` (the resolved config), ``metrics.csv``,
``checkpoints/last.ckpt`` (whose ``giugan`` section holds the generator iteration reached and the
evaluation record: ``best``, ``last`` and ``history``, best-of-N over every attempt of the run)
and, after ``giugan test``, ``eval.json``. docs/reporting.md.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from giugan.metrics.registry import switches

#: ``<row>-s<seed>``: the run names ``giugan sweep`` gives.
SWEEP_RUN_NAME = re.compile(r"^(?P<row>.+)-s(?P<seed>\d+)$")
#: Metrics settings that change the numbers (file locations and the missing-weights policy do not).
_PROTOCOL_METRICS_KEYS = (
    "extractor", "weights_sha256", *switches(), "inception_score_splits", "kid_subset_size", "kid_subsets",
    "precision_recall_k", "density_coverage_k", "resize", "num_fake", "dinov2_model",
    "clip_model",
)
#: Data settings that change the reference images.
_PROTOCOL_DATA_KEYS = ("image_size", "reference_split", "crop_size", "num_images", "split")


@dataclass
class RunRecord:
    """One run as recorded on disk.

    ``status`` is ``finished`` (``last.ckpt`` reached ``model.generator_iterations``),
    ``unfinished`` (short of it), ``no checkpoint`` or ``no metrics`` (finished, never evaluated).
    ``best``/``last`` map score names to values at the best / last evaluation; ``history`` is every
    evaluation (``generator_iteration`` included in each).
    """

    name: str
    folder: Path
    row: str
    seed: int | None
    status: str
    reached: int | None
    target: int | None
    preset: str | None
    protocol: dict[str, Any]
    best: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    test_report: dict[str, Any] | None = None

    @property
    def protocol_id(self) -> str:
        """A short fingerprint of :attr:`protocol` (runs with equal ones are comparable)."""
        return hashlib.sha256(json.dumps(self.protocol, sort_keys=True, default=str).encode()).hexdigest()[:8]

    @property
    def checkpoint(self) -> Path:
        return self.folder / "checkpoints" / "last.ckpt"


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run folders among ``paths``: each a run folder (it holds ``config.yaml``) or a folder of them."""
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            raise OSError(
                f"giugan report {given}: no such folder. Give run folders (runs/<name>, holding "
                f"config.yaml) or folders holding them (e.g. runs)."
            )
        if (path / "config.yaml").is_file():
            found.append(path)
        else:
            found += sorted(p.parent for p in path.glob("*/config.yaml"))
    return list(dict.fromkeys(found))


def protocol_of(config: dict[str, Any]) -> dict[str, Any]:
    """The settings of a run's ``config.yaml`` that decide what its scores measure."""
    model = config.get("model") or {}
    metrics = (model.get("metrics") or {}).get("init_args") or {}
    data = config.get("data") or {}
    data_args = data.get("init_args") or {}
    return {
        "metrics": {k: metrics.get(k) for k in _PROTOCOL_METRICS_KEYS if k in metrics},
        "data": {"class_path": data.get("class_path"), **{k: data_args[k] for k in _PROTOCOL_DATA_KEYS if k in data_args}},
        "generator": "EMA" if model.get("ema_decay") else "G",
        "generator_mode": model.get("eval_generator_mode"),
    }


def _csv_evaluations(path: Path) -> tuple[list[dict[str, float]], dict[str, float], int | None]:
    """``(history, best, last generator iteration)`` from ``metrics.csv``'s ``eval/`` columns."""
    if not path.is_file():
        return [], {}, None
    history, best, reached = [], {}, None
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            iteration = row.get("generator_iteration") or ""
            if iteration:
                reached = max(reached or 0, int(float(iteration)))
            scores = {k[5:]: float(v) for k, v in row.items()
                      if k and k.startswith("eval/") and not k.startswith("eval/best_") and v}
            if scores and iteration:
                history.append({**scores, "generator_iteration": float(iteration)})
            best_values = {k[10:]: float(v) for k, v in row.items() if k and k.startswith("eval/best_") and v}
            best = best_values or best
    return history, best, reached


def read_run(folder: Path) -> RunRecord:
    """The record of the run in ``folder``."""
    config = yaml.safe_load((folder / "config.yaml").read_text()) or {}
    model = config.get("model") or {}
    match = SWEEP_RUN_NAME.match(folder.name)
    row = match["row"] if match else folder.name
    seed = model.get("seed")
    history, best, reached = _csv_evaluations(folder / "metrics.csv")
    last = {k: v for k, v in history[-1].items() if k != "generator_iteration"} if history else {}
    target = model.get("generator_iterations")
    record_path = folder / "checkpoints" / "last.ckpt"
    if record_path.is_file():
        from giugan.sweeps.runs import read_checkpoint

        checkpoint = read_checkpoint(record_path)
        reached = int(checkpoint["giugan"]["generator_iteration"])
        target = int(checkpoint["hyper_parameters"]["generator_iterations"])
        evaluation = checkpoint["giugan"].get("evaluation") or {}
        if evaluation.get("history"):
            history = [dict(e) for e in evaluation["history"]]
            best = {k: v for k, v in (evaluation.get("best") or {}).items() if k != "generator_iteration"}
            last = {k: v for k, v in (evaluation.get("last") or {}).items() if k != "generator_iteration"}
    test_report = None
    if (folder / "eval.json").is_file():
        test_report = json.loads((folder / "eval.json").read_text())
    if not record_path.is_file():
        status = "no checkpoint"
    elif target is not None and reached is not None and reached < target:
        status = "unfinished"
    elif not history:
        status = "no metrics"
    else:
        status = "finished"
    return RunRecord(folder.name, folder, row, int(seed) if seed is not None else None, status, reached,
                     int(target) if target is not None else None, model.get("preset"), protocol_of(config),
                     best, last, history, test_report)
