"""Metric inputs that cannot give a trustworthy number: an error or a recompute,
never a silent NaN. (tests/metrics covers the same behaviour in more depth.)"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch

from giugan.metrics import (
    INCEPTION_WEIGHTS_FILENAME,
    GenerativeMetrics,
    InvalidInceptionWeights,
    compute_reference_statistics,
)

pytestmark = pytest.mark.usefixtures("single_thread")


def images(count: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 4, 4, generator=generator)
    return (torch.nn.functional.interpolate(coarse, size=16) * 255).round().to(torch.uint8)


REAL, FAKE = images(64, 1), images(64, 2)


def standin(tmp_path: Path) -> GenerativeMetrics:
    return GenerativeMetrics(
        extractor="standin", inception_score=False, num_fake=64, cache_dir=str(tmp_path / "cache")
    )


def fid_with_cache(tmp_path: Path) -> float:
    metrics = standin(tmp_path)
    compute_reference_statistics(metrics, REAL.split(16), "robustness-16", 64)
    metrics.update_fake(FAKE)
    return metrics.compute()["fid"]


def test_too_few_samples_is_an_error_not_nan(tmp_path: Path) -> None:
    metrics = standin(tmp_path)
    metrics.update_real(REAL[:10])
    metrics.update_fake(FAKE[:1])  # a covariance of one sample is undefined (NaN in torchmetrics)
    with pytest.raises(ValueError) as info:
        metrics.compute()
    assert "at least 2 real and 2 generated" in str(
        info.value
    ) and "10 real and 1 generated" in str(info.value)


@pytest.mark.parametrize("content", ["html", "wrong_state_dict"])
def test_wrong_weights_file_is_a_clear_error_naming_it(tmp_path: Path, content: str) -> None:
    weights = tmp_path / INCEPTION_WEIGHTS_FILENAME
    if content == "html":  # e.g. a proxy's error page saved under the weights' name
        weights.write_bytes(b"<html>404 Not Found</html>" * 10)
    else:
        torch.save({"fc.weight": torch.zeros(10, 2048)}, weights)
    with pytest.raises(InvalidInceptionWeights) as info:
        GenerativeMetrics(weights_path=str(weights), on_missing_weights="warn")
    assert str(weights) in str(info.value)


def test_stale_reference_cache_is_recomputed_with_a_warning(tmp_path: Path) -> None:
    expected = fid_with_cache(tmp_path / "fresh")
    metrics = standin(tmp_path)
    key = metrics.reference_key("robustness-16", 64)
    # a cache file left by another reference (here: the statistics of 32 images, not 64)
    old = standin(tmp_path)
    compute_reference_statistics(old, REAL[:32].split(16), "robustness-16", 32)
    stale = old.reference_path(old.reference_key("robustness-16", 32))
    metrics.reference_path(key).write_bytes(stale.read_bytes())
    with pytest.warns(UserWarning, match="written for another key.*recomputed"):
        fid = fid_with_cache(tmp_path)
    assert math.isfinite(fid) and fid == pytest.approx(expected, rel=1e-6)


def test_corrupt_reference_cache_is_recomputed_with_a_warning(tmp_path: Path) -> None:
    expected = fid_with_cache(tmp_path)
    path = standin(tmp_path).reference_path(standin(tmp_path).reference_key("robustness-16", 64))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated by a crash
    with pytest.warns(UserWarning, match="cannot be read.*recomputed"):
        fid = fid_with_cache(tmp_path)
    assert math.isfinite(fid) and fid == pytest.approx(expected, rel=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten file is trusted again
        assert fid_with_cache(tmp_path) == pytest.approx(expected, rel=1e-6)
