"""The shapes judge's four scores as a :class:`~giugan.metrics.score.Score` of the metric suite.

Switched on by ``shapes_judge: true`` in ``GenerativeMetrics``' arguments. The score consumes
the ``shapes_judge`` extractor (the packaged judge of :mod:`giugan.metrics.shapes_judge`, run once
per batch by the suite like any extractor); it logs ``recognisable``, ``modes_covered``,
``mode_balance`` and ``judge_frechet`` (defined in :mod:`giugan.metrics.shapes_scores`). It
measures the built-in shapes set only: another data module's reference is refused, and a folder of
images of unknown origin is warned about once (:meth:`ShapesJudgeScore.check_reference`).

Everything is kept as sums (feature sum, sum of outer products and count for the Fréchet
distance, as FID does; mode histograms for balance and coverage), so the states add up over
batches and DDP ranks and the real ones fit in the reference cache. Their names there carry the
first 12 hex digits of the judge's weights hash: statistics of another judge are never loaded
(they are recomputed).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from giugan import compat
from giugan.metrics.distributed import synchronised
from giugan.metrics.fid import frechet_distance
from giugan.metrics.score import Logged, Score, ScoreSettings
from giugan.metrics.shapes_judge import (
    JUDGE_IMAGE_SIZE,
    SHAPES_JUDGE_SHA256,
    JudgeOutputs,
)
from giugan.metrics.shapes_scores import (
    MODE_PSEUDO_COUNT,
    NUM_MODES,
    RECOGNISABLE_THRESHOLD,
    mode_balance,
    mode_histogram,
    recognisable_mask,
)

__all__ = ["JudgeStatistics", "ShapesJudgeScore"]

#: Prefix of this judge's statistics in the reference cache.
_PREFIX = f"shapes_judge_{SHAPES_JUDGE_SHA256[:12]}"
_SIDES = ("real", "fake")
#: How the built-in shapes set names its reference (``ShapesDataModule.reference_id``), and how
#: images read from files (of unknown origin) are named: ``giugan eval``'s reference images and
#: the image-folder data module.
SHAPES_REFERENCE_PREFIX = "shapes-"
FILES_REFERENCE_PREFIXES = ("images-", "folder-")
_warned_references: set[str] = set()


class JudgeStatistics(Metric):
    """Sum states of the judge's verdicts on real and generated images.

    Per side (``real_*``, ``fake_*``): ``features_sum``, ``features_cov_sum``, ``count`` and
    ``modes`` (histogram of every image's most probable mode); and ``fake_recognisable_modes``
    (histogram of the recognisable generated images only). All float64/int64, sum-reduced.
    """

    full_state_update = False

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        for side in _SIDES:
            self.add_state(f"{side}_features_sum", torch.zeros(feature_dim, dtype=torch.float64), "sum")
            self.add_state(
                f"{side}_features_cov_sum",
                torch.zeros(feature_dim, feature_dim, dtype=torch.float64),
                "sum",
            )
            self.add_state(f"{side}_count", torch.zeros((), dtype=torch.long), "sum")
            self.add_state(f"{side}_modes", torch.zeros(NUM_MODES, dtype=torch.float64), "sum")
        self.add_state(
            "fake_recognisable_modes", torch.zeros(NUM_MODES, dtype=torch.float64), "sum"
        )

    def update(self, outputs: JudgeOutputs, real: bool) -> None:
        side = "real" if real else "fake"
        features = outputs.features.double()
        for name, value in (
            ("features_sum", features.sum(dim=0)),
            ("features_cov_sum", features.T @ features),
            ("count", torch.tensor(features.shape[0], device=features.device)),
            ("modes", mode_histogram(outputs)),
        ):
            setattr(self, f"{side}_{name}", getattr(self, f"{side}_{name}") + value)
        if not real:
            recognisable = mode_histogram(outputs, recognisable_mask(outputs))
            self.fake_recognisable_modes = self.fake_recognisable_modes + recognisable

    def gaussian(self, side: str) -> tuple[Tensor, Tensor]:
        """Mean and unbiased covariance of one side's features, from the sums."""
        count = getattr(self, f"{side}_count").double()
        mean = getattr(self, f"{side}_features_sum") / count
        cov_sum = getattr(self, f"{side}_features_cov_sum")
        return mean, (cov_sum - count * torch.outer(mean, mean)) / (count - 1)

    def compute(self) -> dict[str, float]:
        count = int(self.fake_count)
        return {
            "recognisable": float(self.fake_recognisable_modes.sum()) / max(count, 1),
            "modes_covered": float((self.fake_recognisable_modes > 0).sum()),
            "mode_balance": mode_balance(self.fake_modes, self.real_modes),
            "judge_frechet": frechet_distance(*self.gaussian("fake"), *self.gaussian("real")),
        }


class ShapesJudgeScore(Score):
    """Recognisable fraction, modes covered, mode balance and judge Fréchet distance."""

    name = "shapes_judge"
    label = "shapes judge"
    logged = (
        Logged("recognisable", "higher"),
        Logged("modes_covered", "higher"),
        Logged("mode_balance", "lower"),
        Logged("judge_frechet", "lower", title="judge Fréchet"),
    )
    extractor = "shapes_judge"
    consumes = JudgeOutputs._fields  # all of the judge's outputs: features and three heads
    needs_real = True

    def __init__(self, settings: ScoreSettings, width: int) -> None:
        self.feature_dim = width
        super().__init__(settings, width)

    def build_metric(self) -> Metric:
        return JudgeStatistics(self.feature_dim)

    @classmethod
    def check_reference(cls, reference_id: str) -> None:
        """Refuse a reference that is not the built-in shapes set; warn once about image files.

        The judge classifies the 36 modes of the shapes set: on other images (CIFAR-10, say) it
        still gives numbers, and a Fréchet distance that would pick ``best.ckpt``, but they mean
        nothing.
        """
        if reference_id.startswith(SHAPES_REFERENCE_PREFIX):
            return
        if reference_id.startswith(FILES_REFERENCE_PREFIXES):
            if reference_id not in _warned_references:
                _warned_references.add(reference_id)
                warnings.warn(
                    f"The shapes judge scores the built-in shapes set; the reference images "
                    f"'{reference_id}' were read from files, so giugan cannot tell whether they "
                    "are shapes images. Their judge scores mean something only if they are.",
                    stacklevel=3,
                )
            return
        raise ValueError(
            f"`metrics.init_args.shapes_judge: true` measures the built-in shapes set "
            f"(giugan.data.ShapesDataModule) only, but the reference is '{reference_id}'. On "
            "other images the judge still returns numbers (and would choose best.ckpt by its "
            "Fréchet distance) but they mean nothing. Set `metrics.init_args.shapes_judge: "
            "false` (and use fid, fd_dinov2 or inception_score) or train on the shapes set."
        )

    def update(self, values: Any, real: bool) -> None:
        """Add the judge's verdict on a batch (its four outputs, in order) to one side's sums."""
        self.metric.update(JudgeOutputs(*values), real=real)

    def reset_fake(self) -> None:
        for name in ("features_sum", "features_cov_sum", "count", "modes", "recognisable_modes"):
            state = getattr(self.metric, f"fake_{name}")
            setattr(self.metric, f"fake_{name}", torch.zeros_like(state))
        compat.forget_computed(self.metric)

    # ------------------------------------------------------------------ real statistics
    def reference_shapes(self) -> dict[str, tuple[int | None, ...]]:
        dim = self.feature_dim
        return {
            f"{_PREFIX}_features_sum": (dim,),
            f"{_PREFIX}_features_cov_sum": (dim, dim),
            f"{_PREFIX}_num_samples": (),
            f"{_PREFIX}_modes": (NUM_MODES,),
        }

    def export_reference(self) -> dict[str, Tensor]:
        with synchronised(self.metric, self.width) as metric:
            return {
                f"{_PREFIX}_{stored}": getattr(metric, f"real_{state}").detach().cpu().clone()
                for stored, state in self._stored_states()
            }

    def reference_count(self, stats: dict[str, Tensor]) -> int:
        return int(stats[f"{_PREFIX}_num_samples"])

    def load_reference(self, stats: dict[str, Tensor], rank: int, world: int) -> None:
        metric = self.metric
        for stored, state in self._stored_states():
            current = getattr(metric, f"real_{state}")
            value = stats[f"{_PREFIX}_{stored}"].to(current.device, current.dtype)
            # Sum-reduced states: rank 0 holds them, the others zeros.
            setattr(metric, f"real_{state}", value if rank == 0 else torch.zeros_like(value))
        compat.forget_computed(metric)

    def reset_real(self) -> None:
        for _, state in self._stored_states():
            value = getattr(self.metric, f"real_{state}")
            setattr(self.metric, f"real_{state}", torch.zeros_like(value))
        compat.forget_computed(self.metric)

    @staticmethod
    def _stored_states() -> tuple[tuple[str, str], ...]:
        """(name in the reference file, state name after ``real_``)."""
        return (
            ("features_sum", "features_sum"),
            ("features_cov_sum", "features_cov_sum"),
            ("num_samples", "count"),
            ("modes", "modes"),
        )

    # ------------------------------------------------------------------ computing
    def counts(self, metric: Metric) -> dict[str, int]:
        return {"real": int(metric.real_count), "fake": int(metric.fake_count)}

    def check_counts(self, counts: dict[str, int]) -> None:
        if counts["real"] >= 2 and counts["fake"] >= 2:
            return
        raise ValueError(
            f"The shapes judge's scores need at least 2 real and 2 generated images (a "
            f"covariance), but have {counts['real']} real and {counts['fake']} generated over all "
            "ranks. Load or compute the real statistics first, and generate more images "
            "(`metrics.init_args.num_fake`)."
        )

    def values(self, metric: Metric) -> dict[str, float]:
        return compat.compute_from_states(metric)

    # ------------------------------------------------------------------ protocol
    @classmethod
    def protocol(cls, settings: ScoreSettings, enabled: bool) -> dict[str, Any]:
        return {
            "shapes_judge": enabled,
            "shapes_judge_weights_sha256": SHAPES_JUDGE_SHA256,
            "shapes_judge_resize": (
                f"bilinear, antialias=True, {JUDGE_IMAGE_SIZE}x{JUDGE_IMAGE_SIZE}"
            ),
            "recognisable_threshold": RECOGNISABLE_THRESHOLD,
            "mode_balance": "KL(samples || real) over 36 (shape, colour, background) modes, nats",
            "mode_balance_pseudo_count": MODE_PSEUDO_COUNT,
        }
