"""Inception Score (Salimans et al. 2016, "Improved techniques for training GANs", section 4):
``exp(E_x KL(p(y|x) || p(y)))`` of the generated images' class distributions, averaged over
``inception_score_splits`` splits of the samples. No real statistics.

The logits are the extractor's: torch-fidelity's ``logits_unbiased`` for Inception (as
torch-fidelity and torchmetrics use), the stand-in's logits otherwise. The samples are shuffled
under a fixed seed (:data:`~giugan.metrics.distributed.SUBSET_SEED`) before splitting.
"""

from __future__ import annotations

from typing import Any

from torchmetrics import Metric
from torchmetrics.image.inception import InceptionScore

from giugan import compat
from giugan.metrics.distributed import rows, seeded
from giugan.metrics.score import PrecomputedFeatures, Score, ScoreSettings


class ISScore(Score):
    """The Inception Score of the generated images' logits, mean and std over the splits."""

    name = "inception_score"
    label = "IS"
    consumes = "logits"

    def build_metric(self) -> Metric:
        return InceptionScore(
            feature=PrecomputedFeatures(self.width),
            splits=self.settings.inception_score_splits,
            normalize=False,
        )

    def counts(self, metric: Metric) -> dict[str, int]:
        return {"fake": rows(metric.features)}

    def check_counts(self, counts: dict[str, int]) -> None:
        splits = self.settings.inception_score_splits
        if counts["fake"] < splits:
            raise ValueError(
                f"The Inception Score needs at least inception_score_splits={splits} generated "
                f"images, but has {counts['fake']} over all ranks. Generate more images "
                "(`num_fake`) or lower `metrics.init_args.inception_score_splits`."
            )

    def values(self, metric: Metric) -> dict[str, float]:
        with seeded():
            mean, std = compat.compute_from_states(metric)
        single = self.settings.inception_score_splits == 1
        return {"is_mean": float(mean), "is_std": 0.0 if single else float(std)}

    @classmethod
    def protocol(cls, settings: ScoreSettings, enabled: bool) -> dict[str, Any]:
        return {
            "inception_score": enabled,
            "inception_score_splits": settings.inception_score_splits,
            "inception_score_logits": "logits_unbiased"
            if settings.extractor == "inception"
            else "logits",
            "inception_score_std": "torchmetrics: std over splits with ddof=1, samples shuffled",
        }


__all__ = ["ISScore"]
