"""Precision/recall and density/coverage: known answers, invariants, and the score in the suite."""

from __future__ import annotations

import math

import pytest
import torch

from giugan.metrics.precision_recall import (
    PrecisionRecallScore,
    density_coverage,
    precision_recall,
)
from giugan.metrics.registry import SCORES

from .conftest import FAKE, REAL, filled


def brute_force(real: torch.Tensor, fake: torch.Tensor, k_pr: int, k_dc: int) -> dict[str, float]:
    """The four values from their definitions, with the full distance matrices in float64."""
    real, fake = real.double(), fake.double()
    radius_real_pr = torch.cdist(real, real).sort(dim=1).values[:, k_pr]
    radius_fake = torch.cdist(fake, fake).sort(dim=1).values[:, k_pr]
    radius_real_dc = torch.cdist(real, real).sort(dim=1).values[:, k_dc]
    between = torch.cdist(fake, real)  # (m, n)
    return {
        "precision": float((between <= radius_real_pr).any(dim=1).double().mean()),
        "recall": float((between.T <= radius_fake).any(dim=1).double().mean()),
        "density": float((between <= radius_real_dc).double().sum() / (k_dc * fake.shape[0])),
        "coverage": float((between <= radius_real_dc).any(dim=0).double().mean()),
    }


def test_a_set_against_itself_has_precision_recall_and_coverage_one() -> None:
    points = torch.randn(300, 16, generator=torch.Generator().manual_seed(0))
    assert precision_recall(points, points, k=3) == {"precision": 1.0, "recall": 1.0}
    assert density_coverage(points, points, k=5)["coverage"] == 1.0


def test_disjoint_sets_give_zero() -> None:
    points = torch.randn(200, 8, generator=torch.Generator().manual_seed(1))
    assert precision_recall(points, points + 100.0) == {"precision": 0.0, "recall": 0.0}
    assert density_coverage(points, points + 100.0) == {"density": 0.0, "coverage": 0.0}


def test_shifted_grids_have_the_worked_out_values() -> None:
    """Reals at 0..19 and fakes at 10.25..29.25 on a line, k=1 (every radius is 1).

    Fakes 10.25..19.25 lie within 1 of a real (precision 10/20), reals 10..19 within 1 of a fake
    (recall and coverage 10/20); nine fakes lie in two real balls and 19.25 in one, so density is
    (2 * 9 + 1) / (1 * 20).
    """
    real = torch.arange(20.0)[:, None]
    fake = real + 10.25
    assert precision_recall(real, fake, k=1) == {"precision": 0.5, "recall": 0.5}
    assert density_coverage(real, fake, k=1) == {"density": pytest.approx(19 / 20), "coverage": 0.5}


def test_same_distribution_matches_the_expected_density_and_coverage() -> None:
    """Naeem et al. 2020, section 4: for two samples of one continuous distribution E[density]=1
    and E[coverage] = 1 - prod_{i=1..k} (N - i) / (M + N - i), whatever the distribution."""
    draws = []
    for seed in range(5):  # five independent pairs of samples, averaged
        generator = torch.Generator().manual_seed(seed)
        real, fake = torch.randn(1500, 4, generator=generator), torch.randn(1500, 4, generator=generator)
        draws.append(density_coverage(real, fake, k=5))
    expected = 1 - math.prod((1500 - i) / (3000 - i) for i in range(1, 6))  # 0.9689
    assert sum(d["density"] for d in draws) / 5 == pytest.approx(1.0, abs=0.03)
    assert sum(d["coverage"] for d in draws) / 5 == pytest.approx(expected, abs=0.006)


def test_values_equal_the_definitions_and_ignore_the_block_size(monkeypatch) -> None:
    generator = torch.Generator().manual_seed(3)
    real, fake = torch.randn(130, 6, generator=generator), torch.randn(90, 6, generator=generator) + 0.5
    expected = brute_force(real, fake, 3, 5)
    got = {**precision_recall(real, fake, 3), **density_coverage(real, fake, 5)}
    assert got == pytest.approx(expected)
    monkeypatch.setattr("giugan.metrics.precision_recall.DISTANCE_BLOCK", 7)
    got = {**precision_recall(real, fake, 3), **density_coverage(real, fake, 5)}
    assert got == pytest.approx(expected)


def test_too_few_samples_name_k() -> None:
    with pytest.raises(ValueError, match=r"k=3 needs more than 3 .* got 3 real"):
        precision_recall(torch.zeros(3, 2), torch.zeros(10, 2), k=3)


# --------------------------------------------------------------------------- in the suite
def test_registered_and_off_by_default(standin_metrics) -> None:
    assert SCORES["precision_recall"] is PrecisionRecallScore
    assert "precision_recall" not in standin_metrics().scores


def test_suite_values_on_the_shared_features(standin_metrics) -> None:
    metrics = filled(standin_metrics(kid=False, precision_recall=True, precision_recall_k=4))
    scores = metrics.compute()
    extractor = metrics.extractor
    expected = brute_force(extractor(REAL)[0], extractor(FAKE)[0], 4, 5)
    assert {name: scores[name] for name in expected} == pytest.approx(expected, abs=1e-6)
    assert "fid" in scores and metrics.last_counts == {"real": 160, "fake": 160}


def test_suite_against_itself_is_one(standin_metrics) -> None:
    scores = filled(standin_metrics(kid=False, precision_recall=True), fake=REAL).compute()
    assert scores["precision"] == scores["recall"] == scores["coverage"] == 1.0


def test_real_features_are_cached_and_survive_reset_fake(standin_metrics) -> None:
    first = standin_metrics(kid=False, precision_recall=True)
    key = first.reference_key("toy-16", num_real=160)
    filled(first)
    first.save_reference(key)
    before = first.compute()
    first.reset_fake()
    first.update_fake(FAKE)
    assert first.compute() == pytest.approx(before)
    second = standin_metrics(kid=False, precision_recall=True)
    assert second.load_reference(key)
    second.update_fake(FAKE)
    assert second.compute() == pytest.approx(before)


def test_too_few_samples_in_the_suite(standin_metrics) -> None:
    metrics = standin_metrics(kid=False, precision_recall=True)
    metrics.update_real(REAL)
    metrics.update_fake(FAKE[:5])
    with pytest.raises(ValueError, match=r"k=5 real and generated .* 160 real and 5 generated"):
        metrics.compute()


def test_protocol_records_k_and_implementations(standin_metrics) -> None:
    protocol = standin_metrics(precision_recall=True, density_coverage_k=7).protocol()
    assert protocol["precision_recall"] is True
    assert protocol["precision_recall_k"] == 3 and protocol["density_coverage_k"] == 7
    assert "torch-fidelity" in protocol["precision_recall_implementation"]
    assert standin_metrics().protocol()["precision_recall"] is False


def test_bad_k_names_the_key(standin_metrics) -> None:
    with pytest.raises(ValueError, match=r"`precision_recall_k` must be an integer >= 1"):
        standin_metrics(precision_recall_k=0)
