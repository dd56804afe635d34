"""Fréchet Inception Distance (Heusel et al. 2017, "GANs trained by a two time-scale update rule
converge to a local Nash equilibrium", eq. 6): the Fréchet distance of two Gaussians fitted to the
pool features of real and generated images.

:class:`FIDScore` keeps torchmetrics' ``FrechetInceptionDistance`` sums (feature sum, sum of
outer products, count; float64), caches the real ones, and evaluates the score in float64.
:func:`frechet_distance` is the same distance as a pure function of two Gaussians.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance

from giugan import compat
from giugan.metrics.distributed import synchronised
from giugan.metrics.score import Logged, PrecomputedFeatures, Score, ScoreSettings

_SUMS = ("real_features_sum", "real_features_cov_sum", "fake_features_sum", "fake_features_cov_sum")


ArrayLike = np.ndarray | Tensor | list | tuple


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    r"""Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2), in float64.

    :math:`d^2 = \lVert\mu_1-\mu_2\rVert^2 + \operatorname{tr}(\Sigma_1 + \Sigma_2
    - 2(\Sigma_1\Sigma_2)^{1/2})` (Heusel et al. 2017, the FID). The trace of the matrix square
    root is computed by the symmetric eigen method: :math:`\operatorname{tr}(\Sigma_1\Sigma_2)^{1/2}
    = \sum_i \sqrt{\lambda_i(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})}`, with eigenvalues clipped
    at zero, which stays real and stable for the singular covariances of few samples.

    Args:
        mu1, mu2: means, shape ``(d,)``.
        sigma1, sigma2: covariances, shape ``(d, d)``, symmetric positive semi-definite.

    Returns:
        The squared Fréchet distance as a Python float.

    Raises:
        ValueError: shapes disagree or an input contains NaN/inf.
    """
    arrays = []
    for name, value in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if isinstance(value, Tensor):
            value = value.detach().cpu().double().numpy()
        array = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"frechet_distance: {name} contains NaN or inf values.")
        arrays.append(array)
    m1, s1, m2, s2 = arrays
    d = m1.shape[0] if m1.ndim == 1 else -1
    if m1.shape != (d,) or m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            "frechet_distance expects mu1, mu2 of shape (d,) and sigma1, sigma2 of shape (d, d); "
            f"got {m1.shape}, {m2.shape}, {s1.shape}, {s2.shape}."
        )
    s1 = (s1 + s1.T) / 2
    s2 = (s2 + s2.T) / 2
    eigenvalues, eigenvectors = np.linalg.eigh(s1)
    s1_root = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T
    inner = s1_root @ s2 @ s1_root
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0.0, None)).sum()
    diff = m1 - m2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt)


class FIDScore(Score):
    """FID on the pool features; real statistics cached (``fid_*`` entries of the reference).

    A Fréchet distance in another extractor's features is this class with another ``name``
    (which prefixes its cached statistics and is its logged key), ``extractor`` and protocol
    (see :mod:`giugan.metrics.fd_dinov2`).
    """

    name = "fid"
    label = "FID"
    logged = (Logged("fid", "lower"),)
    consumes = "features"
    needs_real = True

    def build_metric(self) -> Metric:
        return FrechetInceptionDistance(
            feature=PrecomputedFeatures(self.width), reset_real_features=False, normalize=False
        )

    # ------------------------------------------------------------------ real statistics
    def reference_shapes(self) -> dict[str, tuple[int | None, ...]]:
        width, prefix = self.width, self.name
        return {
            f"{prefix}_features_sum": (width,),
            f"{prefix}_features_cov_sum": (width, width),
            f"{prefix}_num_samples": (),
        }

    def export_reference(self) -> dict[str, Tensor]:
        prefix = self.name
        with synchronised(self.metric, self.width) as metric:
            return {
                f"{prefix}_features_sum": metric.real_features_sum.detach().cpu().clone(),
                f"{prefix}_features_cov_sum": metric.real_features_cov_sum.detach().cpu().clone(),
                f"{prefix}_num_samples": metric.real_features_num_samples.detach().cpu().clone(),
            }

    def reference_count(self, stats: dict[str, Tensor]) -> int:
        return int(stats[f"{self.name}_num_samples"])

    def load_reference(self, stats: dict[str, Tensor], rank: int, world: int) -> None:
        metric, device = self.metric, self.metric.device
        keep = rank == 0  # sum-reduced states: rank 0 holds them, the others zeros
        prefix = self.name
        total = stats[f"{prefix}_features_sum"].to(device, torch.float64)
        cov = stats[f"{prefix}_features_cov_sum"].to(device, torch.float64)
        count = stats[f"{prefix}_num_samples"].to(device, torch.long)
        metric.real_features_sum = total if keep else torch.zeros_like(total)
        metric.real_features_cov_sum = cov if keep else torch.zeros_like(cov)
        metric.real_features_num_samples = count if keep else torch.zeros_like(count)
        compat.forget_computed(metric)

    def reset_real(self) -> None:
        metric = self.metric
        metric.real_features_sum = torch.zeros_like(metric.real_features_sum)
        metric.real_features_cov_sum = torch.zeros_like(metric.real_features_cov_sum)
        metric.real_features_num_samples = torch.zeros_like(metric.real_features_num_samples)
        compat.forget_computed(metric)

    # ------------------------------------------------------------------ computing
    def counts(self, metric: Metric) -> dict[str, int]:
        return {
            "real": int(metric.real_features_num_samples),
            "fake": int(metric.fake_features_num_samples),
        }

    def check_counts(self, counts: dict[str, int]) -> None:
        n_real, n_fake = counts["real"], counts["fake"]
        if n_real >= 2 and n_fake >= 2:
            return
        if n_real < 2:
            hint = (
                "Load or compute the real statistics first (load_reference, or update_real then "
                "save_reference)."
            )
        else:
            hint = "Call update_fake with more generated images (`num_fake`) before compute()."
        raise ValueError(
            f"{self.label} needs at least 2 real and 2 generated images (a covariance), but has {n_real} "
            f"real and {n_fake} generated over all ranks. " + hint
        )

    def values(self, metric: Metric) -> dict[str, float]:
        for name in _SUMS:
            if not torch.isfinite(getattr(metric, name)).all():
                raise RuntimeError(
                    f"{self.label} statistic '{name}' contains NaN/inf; the features were not finite. "
                    "Recompute the real statistics (reset_real) and check the extractor and the "
                    "images."
                )
        compat.set_fid_result_dtype(metric, torch.float64)  # return the float64 result
        value = float(compat.compute_from_states(metric))  # synced already
        if not math.isfinite(value):
            raise RuntimeError(f"{self.label} evaluated to {value} from finite statistics.")
        return {self.name: value}

    # ------------------------------------------------------------------ protocol
    @classmethod
    def protocol(cls, settings: ScoreSettings, enabled: bool) -> dict[str, Any]:
        return {"fid": enabled}


__all__ = ["FIDScore", "frechet_distance"]
