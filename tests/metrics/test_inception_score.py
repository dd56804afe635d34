"""ISScore in the suite: its sample-count check."""

from __future__ import annotations

import pytest

from .conftest import FAKE


def test_too_few_samples_for_is(standin_metrics) -> None:
    scores = standin_metrics(fid=False, kid=False, inception_score_splits=10)
    scores.update_fake(FAKE[:9])
    with pytest.raises(ValueError, match="inception_score_splits=10.*has 9"):
        scores.compute()
