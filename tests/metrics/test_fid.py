"""FID: frechet_distance against closed forms and scipy's sqrtm, and FIDScore in the suite."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from giugan.metrics import frechet_distance

from .conftest import FAKE, REAL, filled, gaussian


def test_diagonal_closed_form() -> None:
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    var1, var2 = rng.uniform(0.1, 3, size=6), rng.uniform(0.1, 3, size=6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2))
    value = frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert value == pytest.approx(expected, rel=1e-12)


def test_full_covariances_match_scipy_sqrtm() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(8, 8)), rng.normal(size=(8, 8))
    s1, s2 = a @ a.T + 0.1 * np.eye(8), b @ b.T + 0.1 * np.eye(8)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    # symmetric in its two Gaussians
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-9)


def test_identical_and_singular_gaussians() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 10))  # 5 samples in 10-d: rank-4 covariance
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    # sqrt of the (numerically +-1e-16) null eigenvalues costs ~1e-8 each: still ~0 relative
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6 * np.trace(sigma)
    assert frechet_distance(mu, sigma, mu + 1, sigma) == pytest.approx(10.0, rel=1e-6)


def test_accepts_torch_tensors() -> None:
    mu, sigma = torch.zeros(3), torch.eye(3)
    assert frechet_distance(mu, sigma, mu + 1, 4 * sigma) == pytest.approx(3 + 3 * (1 + 4 - 4))


def test_errors_on_shapes_and_non_finite() -> None:
    with pytest.raises(ValueError, match="shape"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.array([0.0, np.nan]), np.eye(2), np.zeros(2), np.eye(2))


# --------------------------------------------------------------------------- in the suite
def test_fid_of_a_set_against_itself_is_zero(standin_metrics) -> None:
    scores = filled(standin_metrics(), REAL, REAL).compute()
    different = filled(standin_metrics(), REAL, FAKE).compute()["fid"]
    assert different > 0.1
    assert abs(scores["fid"]) < 1e-3 * different
    assert abs(scores["kid_mean"]) < 1e-3 * different


def test_fid_equals_frechet_distance_of_the_same_features(standin_metrics) -> None:
    fid = filled(standin_metrics()).compute()["fid"]
    expected = frechet_distance(*gaussian(REAL), *gaussian(FAKE))
    assert fid == pytest.approx(expected, rel=1e-6)


def test_too_few_samples_for_fid(standin_metrics) -> None:
    metrics = standin_metrics(inception_score=False, kid=False)
    metrics.update_real(REAL[:10])
    metrics.update_fake(FAKE[:1])
    with pytest.raises(
        ValueError, match=r"at least 2 real and 2 generated.*10 real and 1 generated"
    ):
        metrics.compute()
    empty = standin_metrics(inception_score=False, kid=False)
    empty.update_fake(FAKE[:5])
    with pytest.raises(ValueError, match="0 real.*load_reference"):
        empty.compute()
