"""Inception Score (Salimans et al. 2016, "Improved techniques for training GANs", section 4):
``exp(E_x KL(p(y|x) || p(y)))`` of the generated images' class distributions, averaged over
``inception_score_splits`` splits of the samples. No real statistics.

The logits are the extractor's: torch-fidelity's ``logits_unbiased`` for Inception (as
torch-fidelity and torchmetrics use), the stand-in's logits otherwise. The samples are shuffled
under a fixed seed (:data:`~giugan.metrics.distributed.SUBSET_SEED`) before splitting, as
torchmetrics does. The reported standard deviation is the population std over the splits
(``ddof=0``, ``np.std`` in the original TF code and in torch-fidelity), not torchmetrics'
``ddof=1``, which is ``sqrt(splits / (splits - 1))`` larger (x1.054 for 10 splits).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.image.inception import InceptionScore
from torchmetrics.utilities.data import dim_zero_cat

from giugan.metrics.distributed import rows, seeded
from giugan.metrics.score import Logged, PrecomputedFeatures, Score, ScoreSettings


def inception_score(logits: Tensor, splits: int, shuffle: bool = True) -> tuple[float, float]:
    """Mean and population std (``ddof=0``) of the Inception Score over ``splits`` splits.

    Per split ``k``: ``exp(mean_x KL(p(y|x) || p_k(y)))`` with ``p_k(y)`` the split's marginal
    (Salimans et al. 2016, section 4). The splits are ``logits.chunk(splits)`` of the samples,
    shuffled first with ``torch.randperm`` when ``shuffle`` (torchmetrics' order, so the mean is
    torchmetrics' to the bit); the std is ``np.std`` of the split scores, as in torch-fidelity's
    ``isc_features_to_metric`` and the original TF code.

    Args:
        logits: ``(N, classes)`` unnormalised class scores.
        splits: number of splits (at most N).
        shuffle: permute the samples with the global torch generator before splitting.
    """
    if shuffle:
        logits = logits[torch.randperm(logits.shape[0])]
    prob, log_prob = logits.softmax(dim=1), logits.log_softmax(dim=1)
    scores = []
    for p, log_p in zip(prob.chunk(splits, dim=0), log_prob.chunk(splits, dim=0)):
        marginal = p.mean(dim=0, keepdim=True)
        scores.append((p * (log_p - marginal.log())).sum(dim=1).mean().exp())
    values = torch.stack(scores)
    return float(values.mean()), float(values.std(correction=0))


class ISScore(Score):
    """The Inception Score of the generated images' logits, mean and std over the splits."""

    name = "inception_score"
    label = "IS"
    logged = (Logged("is_mean", "higher"), Logged("is_std"))
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
            mean, std = inception_score(
                dim_zero_cat(metric.features), self.settings.inception_score_splits
            )
        return {"is_mean": mean, "is_std": std}

    @classmethod
    def protocol(cls, settings: ScoreSettings, enabled: bool) -> dict[str, Any]:
        return {
            "inception_score": enabled,
            "inception_score_splits": settings.inception_score_splits,
            "inception_score_logits": "logits_unbiased"
            if settings.extractor == "inception"
            else "logits",
            "inception_score_std": "population std over splits (ddof=0, as torch-fidelity and "
            "the TF code); samples shuffled (torchmetrics' order) before splitting",
        }


__all__ = ["ISScore", "inception_score"]
