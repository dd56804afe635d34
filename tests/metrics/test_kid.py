"""KIDScore in the suite: its sample-count check."""

from __future__ import annotations

import pytest

from .conftest import FAKE, REAL


def test_too_few_samples_for_kid(standin_metrics) -> None:
    metrics = standin_metrics(fid=False, inception_score=False, kid_subset_size=100)
    metrics.update_real(REAL)
    metrics.update_fake(FAKE[:99])
    with pytest.raises(ValueError, match=r"kid_subset_size=100.*160 real and 99 generated"):
        metrics.compute()
