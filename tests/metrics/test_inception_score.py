"""Inception Score: the pure function against a hand computation and torch-fidelity; ISScore."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.image.inception import InceptionScore

from giugan.metrics import StandInExtractor
from giugan.metrics.distributed import SUBSET_SEED
from giugan.metrics.inception_score import inception_score
from giugan.metrics.score import PrecomputedFeatures

from .conftest import FAKE


def test_too_few_samples_for_is(standin_metrics) -> None:
    scores = standin_metrics(fid=False, kid=False, inception_score_splits=10)
    scores.update_fake(FAKE[:9])
    with pytest.raises(ValueError, match="inception_score_splits=10.*has 9"):
        scores.compute()


def _split_scores_by_hand(logits: np.ndarray, splits: int) -> list[float]:
    """exp(mean KL(p(y|x) || p(y))) per split, in numpy, straight from the definition."""
    scores = []
    for part in np.split(logits, splits):
        p = np.exp(part - part.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        marginal = p.mean(0, keepdims=True)
        scores.append(float(np.exp((p * (np.log(p) - np.log(marginal))).sum(1).mean())))
    return scores


def test_std_is_the_population_std_of_a_hand_computation() -> None:
    logits = np.array(
        [[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0], [1.0, 1.0, 0.0],
         [2.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 3.0, 1.0], [0.5, 0.0, 0.0]]
    )  # fmt: skip
    scores = _split_scores_by_hand(logits, 2)
    mean, std = inception_score(torch.from_numpy(logits), splits=2, shuffle=False)
    assert mean == pytest.approx((scores[0] + scores[1]) / 2, rel=1e-12)
    assert std == pytest.approx(abs(scores[0] - scores[1]) / 2, rel=1e-12)  # ddof=0
    assert std > 0.1  # the two splits differ, so ddof matters here


def test_matches_torch_fidelity_isc() -> None:
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = torch.randn(200, 10, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = isc_features_to_metric(3 * logits, splits=10, shuffle=False)
    mean, std = inception_score(3 * logits, splits=10, shuffle=False)
    assert mean == pytest.approx(expected["inception_score_mean"], rel=1e-12)
    assert std == pytest.approx(expected["inception_score_std"], rel=1e-10)


def test_the_suite_reports_the_population_std_of_torchmetrics_splits(standin_metrics) -> None:
    """Same splits as torchmetrics (mean to the bit), std smaller by sqrt((k - 1) / k)."""
    metrics = standin_metrics(fid=False, kid=False, inception_score_splits=4)
    metrics.update_fake(FAKE)
    reference = InceptionScore(feature=PrecomputedFeatures(10), splits=4)
    reference.update(StandInExtractor()(FAKE)[1])
    scores = metrics.compute()
    torch.manual_seed(SUBSET_SEED)
    tm_mean, tm_std = reference.compute()
    assert scores["is_mean"] == float(tm_mean)
    assert scores["is_std"] == pytest.approx(float(tm_std) * math.sqrt(3 / 4), rel=1e-5)
    assert metrics.protocol()["inception_score_std"].startswith("population std")
    single = standin_metrics(fid=False, kid=False, inception_score_splits=1)
    single.update_fake(FAKE)
    assert single.compute()["is_std"] == 0.0
