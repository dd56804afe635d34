"""FD-CLIP through the command line: ``giugan fit`` evaluates and keeps best.ckpt by it,
``giugan test`` and ``giugan eval`` write it into eval.json with its protocol, and without the
weights offline a start is one paragraph that writes nothing.

The CLIP release is a one-block ViT in OpenAI's TorchScript layout (``clip_networks``).
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch  # noqa: F401  (imported before capsys starts, see tests/conftest.py)
import numpy as np
import pytest
from clip_networks import release_file
from score_runs import fit_kept_by, refused_offline_fit, scores_of_test_and_eval
from tiny_quickstart import QUICKSTART

from giugan.cli import main

pytestmark = pytest.mark.usefixtures("single_thread")


def test_fit_test_and_eval_report_fd_clip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(tmp_path)
    weights = release_file(tmp_path / "ViT-B-32.pt")
    (tmp_path / "overrides.yaml").write_text(
        "trainer:\n  logger:\n    - class_path: giugan.training.loggers.CSVLogger\n"
        f"      init_args: {{save_dir: {tmp_path / 'runs'}, name: tiny, version: ''}}\n"
        "model:\n  metrics:\n    init_args:\n"
        f"      cache_dir: {tmp_path / 'cache'}\n      fd_clip: true\n      clip_weights_path: {weights}\n"
    )
    run, values = fit_kept_by("fd_clip", tmp_path, tmp_path / "overrides.yaml")
    report, scored = scores_of_test_and_eval(run, tmp_path)
    assert report["fd_clip"] == pytest.approx(min(values), rel=1e-5)
    protocol = report["protocol"]
    assert protocol["fd_clip"] is True and protocol["clip_model"] == "clip-vit-b-32"
    assert len(protocol["clip_weights_sha256"]) == 64
    assert scored["fd_clip"] > 0 and np.isfinite(scored["fd_clip"])
    assert scored["protocol"]["clip_weights_sha256"] == protocol["clip_weights_sha256"]


def test_fit_and_eval_without_clip_weights_offline_are_one_paragraph_and_write_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    message = refused_offline_fit(tmp_path, monkeypatch, capsys, "fd_clip")
    assert "giugan: The CLIP weights needed for FD-CLIP are unavailable" in message
    assert "--model.metrics.init_args.clip_weights_path /path/to/ViT-B-32.pt" in message

    samples = tmp_path / "samples"
    samples.mkdir()
    np.savez(samples / "samples.npz", images=np.zeros((4, 32, 32, 3), dtype=np.uint8))
    code = main(["eval", str(samples / "samples.npz"), "--config", QUICKSTART, "--metrics.fd_clip", "true",
                 "--output", str(tmp_path / "out"), "--device", "cpu"])  # fmt: skip
    assert code == 2
    message = capsys.readouterr().err
    assert "--metrics.clip_weights_path /path/to/ViT-B-32.pt" in message
    assert not (tmp_path / "out").exists()
