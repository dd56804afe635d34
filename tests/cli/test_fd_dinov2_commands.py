"""FD-DINOv2 through the command line: ``giugan fit`` evaluates and keeps best.ckpt by it,
``giugan test`` and ``giugan eval`` write it into eval.json with its protocol; the shapes judge
refuses a dataset that is not the shapes set.

The DINOv2 network is timm's DINOv2 ViT layout shrunk to one block (``tiny_dinov2``) at random
weights saved as a release checkpoint; ViT-L/14 itself is checked in tests/metrics/test_dinov2.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data.helpers import write_cifar10
from dinov2_networks import release_checkpoint, tiny_dinov2
from score_runs import fit_kept_by, refused_offline_fit, scores_of_test_and_eval
from tiny_quickstart import QUICKSTART

from giugan.cli import main
from giugan.metrics import dinov2

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(dinov2, "dinov2_network", lambda architecture: tiny_dinov2())
    release_checkpoint(tmp_path / "dinov2_vits14_pretrain.pth")
    (tmp_path / "overrides.yaml").write_text(
        "trainer:\n  logger:\n    - class_path: giugan.training.loggers.CSVLogger\n"
        f"      init_args: {{save_dir: {tmp_path / 'runs'}, name: tiny, version: ''}}\n"
        "model:\n  metrics:\n    init_args:\n"
        f"      cache_dir: {tmp_path / 'cache'}\n      fd_dinov2: true\n"
        "      dinov2_model: vit_small_patch14_dinov2\n"
        f"      dinov2_weights_path: {tmp_path / 'dinov2_vits14_pretrain.pth'}\n"
    )
    return tmp_path


def test_fit_test_and_eval_report_fd_dinov2(run: Path) -> None:
    folder, values = fit_kept_by("fd_dinov2", run, run / "overrides.yaml")
    report, scored = scores_of_test_and_eval(folder, run)
    assert report["fd_dinov2"] == pytest.approx(min(values), rel=1e-5)
    protocol = report["protocol"]
    assert protocol["fd_dinov2"] is True and protocol["dinov2_model"] == "vit_small_patch14_dinov2"
    assert len(protocol["dinov2_weights_sha256"]) == 64
    assert scored["fd_dinov2"] > 0 and np.isfinite(scored["fd_dinov2"])
    assert scored["protocol"]["dinov2_weights_sha256"] == protocol["dinov2_weights_sha256"]


def test_the_shapes_judge_refuses_cifar10(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_cifar10(tmp_path / "data")
    samples = tmp_path / "samples.npz"
    np.savez(samples, images=np.zeros((4, 32, 32, 3), dtype=np.uint8))
    data = f"{{class_path: giugan.data.CIFAR10DataModule, init_args: {{root: {tmp_path / 'data'}, reference_split: test}}}}"
    code = main(["eval", str(samples), "--config", QUICKSTART, "--data", data, "--output", str(tmp_path / "out"),
                 "--metrics.cache_dir", str(tmp_path / "cache"), "--device", "cpu"])  # fmt: skip
    assert code == 2
    message = capsys.readouterr().err
    assert "shapes_judge: true` measures the built-in shapes set" in message and "cifar10" in message
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_fit_without_dinov2_weights_offline_is_one_paragraph_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    message = refused_offline_fit(tmp_path, monkeypatch, capsys, "fd_dinov2")
    assert "giugan: The DINOv2 weights needed for FD-DINOv2 are unavailable" in message
    assert "--model.metrics.init_args.dinov2_weights_path /path/to/dinov2_vitl14_pretrain.pth" in message
