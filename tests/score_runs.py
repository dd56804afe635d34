"""Shared steps of the tests of a score on its own extractor (FD-DINOv2, FD-CLIP): scoring two
image sets with a suite, and a tiny quickstart run through fit, test, predict and eval."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tiny_quickstart import QUICKSTART, TINY_QUICKSTART

from giugan.cli import main
from giugan.metrics import GenerativeMetrics


def score_sets(metrics: GenerativeMetrics, real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    """The suite's scores of ``fake`` against ``real`` (the reference cached on first use)."""
    key = metrics.reference_key("shapes-test-16", real.shape[0])
    if not metrics.load_reference(key):
        for batch in real.split(10):
            metrics.update_real(batch)
        metrics.save_reference(key)
    metrics.reset_fake()
    for batch in fake.split(7):
        metrics.update_fake(batch)
    return metrics.compute()


def torch_fidelity_frechet(network: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> float:
    """torch-fidelity's Fréchet distance between ``network``'s features of two image sets."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    (real_features,) = network(real)
    (fake_features,) = network(fake)
    statistics = [fid_features_to_statistics(f.double()) for f in (fake_features, real_features)]
    return fid_statistics_to_metric(*statistics, verbose=False)["frechet_inception_distance"]


def refused_offline_fit(folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                        switch: str) -> str:
    """A tiny fit with ``metrics.init_args.<switch>`` on, in ``folder``, on a machine without the
    weights or a network: checks exit 2 and that nothing but the hub cache folder was made;
    returns what it printed to stderr."""
    monkeypatch.chdir(folder)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(folder / "hub"))

    def offline(url: str, destination: str, **kwargs: object) -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    code = main(["fit", "--config", QUICKSTART, *TINY_QUICKSTART, "--model.generator_iterations", "2",
                 f"--model.metrics.init_args.{switch}", "true", "--trainer.enable_progress_bar", "false"])  # fmt: skip
    assert code == 2
    assert sorted(p.name for p in folder.iterdir()) == ["hub"]  # no run directory, no cache
    return capsys.readouterr().err


def fit_kept_by(score: str, folder: Path, overrides: Path) -> tuple[Path, list[float]]:
    """A 4-iteration tiny fit evaluated at 2 and 4 logging to ``folder/runs/tiny``; checks that
    ``score`` was logged finite and positive at both and that best.ckpt follows it.
    Returns the run folder and the logged values."""
    fit = ["fit", "--config", QUICKSTART, "--config", str(overrides), *TINY_QUICKSTART,
           "--model.generator_iterations", "4", "--model.eval_every", "2", "--samples.every", "4",
           "--checkpoint.every_n_generator_iterations", "2", "--trainer.enable_progress_bar", "false"]  # fmt: skip
    assert main(fit) == 0
    run = folder / "runs" / "tiny"
    with open(run / "metrics.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get(f"eval/{score}")]
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert all(r.get("eval/judge_frechet") for r in rows)  # the judge still measures alongside
    values = [float(r[f"eval/{score}"]) for r in rows]
    assert all(np.isfinite(values)) and all(v > 0 for v in values)
    best = torch.load(run / "checkpoints" / "best.ckpt", weights_only=False)
    assert best["giugan"]["evaluation"]["best"][score] == pytest.approx(min(values), rel=1e-6)
    monitors = [s["monitor"] for k, s in best["callbacks"].items() if k.startswith("BestCheckpoint")]
    assert monitors == [f"eval/{score}"]  # by this score, not the judge
    return run, values


def scores_of_test_and_eval(run: Path, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``giugan test`` of best.ckpt, then 12 predicted images scored by ``giugan eval``: the two
    eval.json files."""
    config = str(run / "config.yaml")
    assert main(["test", "--config", config, "--ckpt_path", "best"]) == 0
    report = json.loads((run / "eval.json").read_text())
    samples = folder / "samples"
    assert main(["predict", "--config", config, "--ckpt_path", "best", "--predictions.num_images", "12",
                 "--predictions.output_dir", str(samples)]) == 0  # fmt: skip
    assert main(["eval", str(samples), "--config", config, "--output", str(folder / "scored"), "--device", "cpu"]) == 0
    scored = json.loads((folder / "scored" / "eval.json").read_text())
    assert scored["protocol"]["num_fake"] == 12
    return report, scored
