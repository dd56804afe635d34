"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs", section 3): the
unbiased squared MMD between real and generated pool features with the cubic polynomial kernel
``k(x, y) = (x·y / d + 1)^3``, mean and std over ``kid_subsets`` random subsets of
``kid_subset_size`` images each (drawn under :data:`~giugan.metrics.distributed.SUBSET_SEED`).

KID keeps every real and generated feature in memory; the real ones are cached
(``kid_real_features`` in the reference file).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities.data import dim_zero_cat

from giugan import compat
from giugan.metrics.distributed import rows, seeded, synchronised
from giugan.metrics.score import Logged, PrecomputedFeatures, Score, ScoreSettings


class KIDScore(Score):
    """KID on the pool features; real features cached and sharded over ranks."""

    name = "kid"
    label = "KID"
    logged = (Logged("kid_mean", "lower"), Logged("kid_std"))
    consumes = "features"
    needs_real = True

    def build_metric(self) -> Metric:
        return KernelInceptionDistance(
            feature=PrecomputedFeatures(self.width),
            subsets=self.settings.kid_subsets,
            subset_size=self.settings.kid_subset_size,
            reset_real_features=False,
            normalize=False,
        )

    # ------------------------------------------------------------------ real statistics
    def reference_shapes(self) -> dict[str, tuple[int | None, ...]]:
        return {"kid_real_features": (None, self.width)}

    def export_reference(self) -> dict[str, Tensor]:
        with synchronised(self.metric, self.width) as metric:
            return {"kid_real_features": dim_zero_cat(metric.real_features).detach().cpu().clone()}

    def reference_count(self, stats: dict[str, Tensor]) -> int:
        return int(stats["kid_real_features"].shape[0])

    def load_reference(self, stats: dict[str, Tensor], rank: int, world: int) -> None:
        features = stats["kid_real_features"]
        n = features.shape[0]  # contiguous shards: the gather restores the original order
        shard = features[rank * n // world : (rank + 1) * n // world]
        self.metric.real_features = [shard.to(self.metric.device, torch.float32)]
        compat.forget_computed(self.metric)

    def reset_real(self) -> None:
        self.metric.real_features = []
        compat.forget_computed(self.metric)

    # ------------------------------------------------------------------ computing
    def counts(self, metric: Metric) -> dict[str, int]:
        return {"real": rows(metric.real_features), "fake": rows(metric.fake_features)}

    def check_counts(self, counts: dict[str, int]) -> None:
        size = self.settings.kid_subset_size
        if counts["real"] < size or counts["fake"] < size:
            raise ValueError(
                f"KID draws subsets of kid_subset_size={size} images but has {counts['real']} "
                f"real and {counts['fake']} generated over all ranks. Lower "
                "`metrics.init_args.kid_subset_size` (at most the smaller count) or use more "
                "images."
            )

    def values(self, metric: Metric) -> dict[str, float]:
        with seeded():
            mean, std = compat.compute_from_states(metric)
        return {"kid_mean": float(mean), "kid_std": float(std)}

    # ------------------------------------------------------------------ protocol
    @classmethod
    def protocol(cls, settings: ScoreSettings, enabled: bool) -> dict[str, Any]:
        return {
            "kid": enabled,
            "kid_subset_size": settings.kid_subset_size,
            "kid_subsets": settings.kid_subsets,
            "kid_kernel": "polynomial, degree 3, gamma 1/feature_dim, coef 1",
        }


__all__ = ["KIDScore"]
