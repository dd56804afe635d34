"""GenerativeMetrics builds the default-lookup Inception extractor only when something is measured."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from giugan.metrics import GenerativeMetrics, InceptionWeightsUnavailable
from giugan.metrics.extractors import WEIGHTS_ENV_VAR
from giugan.nets import build_preset
from giugan.training.module import GANModule


@pytest.fixture
def no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No Inception weights anywhere: the variable names a missing file (so nothing downloads)."""
    missing = tmp_path / "absent.pth"
    monkeypatch.setenv(WEIGHTS_ENV_VAR, str(missing))
    return missing


def test_a_model_with_inception_metrics_samples_without_the_weights(no_weights: Path) -> None:
    metrics = GenerativeMetrics(cache_dir=str(no_weights.parent))  # nothing looked up yet
    generator, discriminator = build_preset("dcgan_32")
    module = GANModule(generator=generator, discriminator=discriminator, metrics=metrics)
    module.to(torch.float32)  # moving the module does not build the extractor either
    images = module.generate(torch.randn(2, module.z_dim))
    assert images.shape == (2, 3, 32, 32)
    assert "not built yet" in repr(metrics)
    # the first question about the metrics looks the weights up, with the usual paragraph
    with pytest.raises(InceptionWeightsUnavailable, match=WEIGHTS_ENV_VAR):
        _ = metrics.available


def test_warn_mode_warns_at_first_use_and_disables(no_weights: Path) -> None:
    metrics = GenerativeMetrics(cache_dir=str(no_weights.parent), on_missing_weights="warn")
    with pytest.warns(UserWarning, match="disabled"):
        assert metrics.available is False
    assert metrics.compute() == {} and str(no_weights) in metrics.unavailable_reason


def test_an_explicit_weights_file_is_still_checked_at_once(tmp_path: Path) -> None:
    with pytest.raises(InceptionWeightsUnavailable):
        GenerativeMetrics(weights_path=str(tmp_path / "absent.pth"))
    with pytest.raises(ValueError, match="on_missing_weights"):
        GenerativeMetrics(on_missing_weights="ignore")  # type: ignore[arg-type]
