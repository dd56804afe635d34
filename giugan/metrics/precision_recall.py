"""Improved precision and recall (Kynkäänniemi et al. 2019, "Improved precision and recall metric
for assessing generative models", section 3) and density and coverage (Naeem et al. 2020,
"Reliable fidelity and diversity metrics for generative models", eqs. 6 and 7), on the pool
features every other score uses.

Both pairs describe each set by the balls around its points whose radius is the distance to the
point's ``k``-th nearest neighbour in the same set:

* **precision**: the fraction of generated samples inside at least one real ball (fidelity);
  **recall**: the fraction of real samples inside at least one generated ball (diversity). Computed
  by torch-fidelity's ``prc_features_to_metric`` (its ``prc`` metric), ``k`` = ``prc_neighborhood``
  (3 in the paper and in torch-fidelity).
* **density**: the number of real balls containing each generated sample, averaged and divided by
  ``k`` (about 1 when the two sets share a distribution; above 1 where samples crowd the real
  modes); **coverage**: the fraction of real balls containing at least one generated sample (in
  [0, 1]). No maintained library offers these (the authors' ``prdc`` package has had no release
  since 2020), so :func:`density_coverage` implements eqs. 6-7 in a few batched lines (``k`` = 5
  in the paper).

:class:`PrecisionRecallScore` keeps every real and generated feature (like KID); the real ones are
cached in the reference file (``prdc_real_features``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch_fidelity.metric_prc import prc_features_to_metric
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from giugan import compat
from giugan.metrics.distributed import rows, synchronised
from giugan.metrics.score import Logged, Score, ScoreSettings

#: Rows of one block of pairwise distances (bounds the memory to ``block x count`` floats).
DISTANCE_BLOCK = 1024


def _knn_radii(features: Tensor, k: int) -> Tensor:
    """Distance of each row of ``features`` to its ``k``-th nearest other row."""
    radii = [
        torch.cdist(block, features).kthvalue(k + 1, dim=1).values  # +1: the row itself (0)
        for block in features.split(DISTANCE_BLOCK)
    ]
    return torch.cat(radii)


def _check_sets(real: Tensor, fake: Tensor, k: int, what: str) -> None:
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"{what} takes two (n, d) feature matrices of the same width; got "
            f"{tuple(real.shape)} real and {tuple(fake.shape)} generated."
        )
    if min(real.shape[0], fake.shape[0]) <= k:
        raise ValueError(
            f"{what} with k={k} needs more than {k} real and generated samples (a k-th nearest "
            f"neighbour); got {real.shape[0]} real and {fake.shape[0]} generated."
        )


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision and recall of ``fake`` against ``real`` (Kynkäänniemi et al. 2019).

    Computed by torch-fidelity (``prc_features_to_metric``, generated first, in float32, blocks of
    :data:`DISTANCE_BLOCK` rows); a sample on the border of a ball counts as inside.

    Args:
        real: real features ``(n, d)``.
        fake: generated features ``(m, d)``.
        k: the neighbourhood size (torch-fidelity's ``prc_neighborhood``).

    Returns:
        ``{"precision": ..., "recall": ...}``, both in [0, 1].
    """
    _check_sets(real, fake, k, "precision_recall")
    result = prc_features_to_metric(
        fake.float(),
        real.float(),
        prc_neighborhood=k,
        prc_batch_size=DISTANCE_BLOCK,
        save_cpu_ram=True,
        verbose=False,
    )
    return {"precision": float(result["precision"]), "recall": float(result["recall"])}


def density_coverage(real: Tensor, fake: Tensor, k: int = 5) -> dict[str, float]:
    r"""Density and coverage of ``fake`` against ``real`` (Naeem et al. 2020, eqs. 6 and 7).

    With :math:`B(X_i, r_i)` the ball around real sample :math:`X_i` whose radius is the distance
    to its ``k``-th nearest real neighbour, :math:`N` real and :math:`M` generated samples
    :math:`Y_j`:
    :math:`\text{density} = \frac{1}{kM}\sum_j \sum_i 1[Y_j \in B(X_i, r_i)]` and
    :math:`\text{coverage} = \frac{1}{N}\sum_i 1[\exists j: Y_j \in B(X_i, r_i)]`.
    A sample on the border of a ball counts as inside (as in precision/recall).

    Args:
        real: real features ``(n, d)``.
        fake: generated features ``(m, d)``.
        k: the neighbourhood size.

    Returns:
        ``{"density": ..., "coverage": ...}``.
    """
    _check_sets(real, fake, k, "density_coverage")
    real, fake = real.float(), fake.float()
    radii = _knn_radii(real, k)
    inside_count = torch.zeros((), dtype=torch.float64, device=real.device)
    covered = torch.zeros(real.shape[0], dtype=torch.bool, device=real.device)
    for block in fake.split(DISTANCE_BLOCK):
        inside = torch.cdist(block, real) <= radii  # (block, n): Y_j in B(X_i, r_i)
        inside_count += inside.sum(dtype=torch.float64)
        covered |= inside.any(dim=0)
    density = float(inside_count) / (k * fake.shape[0])
    return {"density": density, "coverage": float(covered.float().mean())}


class FeatureSets(Metric):
    """Every real and generated feature row, as list states gathered over ranks.

    ``reset()`` forgets the generated features only (the real ones are the cached reference, as
    with ``reset_real_features=False`` in torchmetrics' FID and KID).
    """

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")

    def update(self, features: Tensor, real: bool) -> None:
        """Keep a batch of features ``(B, d)`` of real or generated images."""
        (self.real_features if real else self.fake_features).append(features.float())

    def compute(self) -> Tensor:
        """Number of generated samples (the values come from :class:`PrecisionRecallScore`)."""
        return torch.tensor(rows(self.fake_features))

    def reset(self) -> None:
        real = list(self.real_features)  # torchmetrics clears list states in place
        super().reset()
        self.real_features = real


def _all_rows(state: list[Tensor] | Tensor) -> Tensor:
    return dim_zero_cat(state) if isinstance(state, Tensor) or state else torch.empty(0, 0)


class PrecisionRecallScore(Score):
    """Precision, recall, density and coverage on the pool features; real features cached."""

    name = "precision_recall"
    label = "Precision/recall"
    logged = (
        Logged("precision", "higher"),
        Logged("recall", "higher"),
        Logged("density"),  # about 1 for matching distributions: neither higher nor lower
        Logged("coverage", "higher"),
    )
    consumes = "features"
    needs_real = True

    def build_metric(self) -> Metric:
        return FeatureSets()

    # ------------------------------------------------------------------ real statistics
    def reference_shapes(self) -> dict[str, tuple[int | None, ...]]:
        return {"prdc_real_features": (None, self.width)}

    def export_reference(self) -> dict[str, Tensor]:
        with synchronised(self.metric, self.width) as metric:
            return {"prdc_real_features": _all_rows(metric.real_features).detach().cpu().clone()}

    def reference_count(self, stats: dict[str, Tensor]) -> int:
        return int(stats["prdc_real_features"].shape[0])

    def load_reference(self, stats: dict[str, Tensor], rank: int, world: int) -> None:
        features = stats["prdc_real_features"]
        n = features.shape[0]  # contiguous shards: the gather restores the original order
        shard = features[rank * n // world : (rank + 1) * n // world]
        self.metric.real_features = [shard.to(self.metric.device, torch.float32)]
        compat.forget_computed(self.metric)

    def reset_real(self) -> None:
        self.metric.real_features = []
        compat.forget_computed(self.metric)

    # ------------------------------------------------------------------ computing
    def counts(self, metric: Metric) -> dict[str, int]:
        return {
            "real": int(_all_rows(metric.real_features).shape[0]),
            "fake": int(_all_rows(metric.fake_features).shape[0]),
        }

    def check_counts(self, counts: dict[str, int]) -> None:
        k = max(self.settings.precision_recall_k, self.settings.density_coverage_k)
        if counts["real"] <= k or counts["fake"] <= k:
            raise ValueError(
                f"Precision/recall and density/coverage need more than k={k} real and generated "
                f"samples (a k-th nearest neighbour) but have {counts['real']} real and "
                f"{counts['fake']} generated over all ranks. Use more images or lower "
                "`metrics.init_args.precision_recall_k` / `density_coverage_k`."
            )

    def values(self, metric: Metric) -> dict[str, float]:
        real, fake = _all_rows(metric.real_features), _all_rows(metric.fake_features)
        return {
            **precision_recall(real, fake, self.settings.precision_recall_k),
            **density_coverage(real, fake, self.settings.density_coverage_k),
        }

    # ------------------------------------------------------------------ protocol
    @classmethod
    def protocol(cls, settings: ScoreSettings, enabled: bool) -> dict[str, Any]:
        return {
            "precision_recall": enabled,
            "precision_recall_k": settings.precision_recall_k,
            "precision_recall_implementation": "torch-fidelity prc_features_to_metric "
            "(Kynkaenniemi et al. 2019)",
            "density_coverage_k": settings.density_coverage_k,
            "density_coverage_implementation": "giugan (Naeem et al. 2020, eqs. 6-7)",
        }


__all__ = ["FeatureSets", "PrecisionRecallScore", "density_coverage", "precision_recall"]
