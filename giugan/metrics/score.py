"""The interface every score of :class:`~giugan.metrics.GenerativeMetrics` implements.

A score is a small ``nn.Module`` around one torchmetrics object that keeps its statistics (and is
synchronised across ranks by :func:`~giugan.metrics.distributed.synchronised`). It declares its
identity:

* its switch (:attr:`Score.name`, a ``GenerativeMetrics`` argument) and the keys it logs, each
  with its direction (:attr:`Score.logged`: lower or higher is better, or neither);
* the extractor it consumes, by registered name (:attr:`Score.extractor`, see
  :mod:`giugan.metrics.extractor_registry`), and which of its outputs (:attr:`Score.consumes`);
  every extractor runs once per batch for all its scores;
* whether it needs real-image statistics, and which it keeps in the reference cache, and how
  they are exported, loaded and sharded over ranks (only when :attr:`Score.needs_real`);
* how it checks the sample counts (:meth:`Score.check_counts`, a ``ValueError`` naming the fix);
* how it computes its values from the synchronised states (:meth:`Score.values`);
* what it writes into the protocol (:meth:`Score.protocol`, also when it is switched off).

The registry (:mod:`giugan.metrics.registry`) lists the scores; the switches, the score that
decides "best", the checkpoints' monitor and the loggers' summaries are derived from it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from torch import Tensor, nn
from torchmetrics import Metric

from giugan.metrics.distributed import synchronised


class PrecomputedFeatures(nn.Module):
    """Identity ``feature`` network: the torchmetrics objects receive features, not images.

    The extractor (TF-compatible Inception or the stand-in) runs **once per batch** in
    :class:`~giugan.metrics.GenerativeMetrics` and returns the pool features and the logits
    together; each torchmetrics object is built with this identity module as its ``feature``
    network and updated with the output it consumes. Why this and not the alternatives:

    * torchmetrics' ``FeatureShare`` shares a network only when every metric asks for the *same*
      output, but FID/KID need the 2048-d pool features and IS the 1008-d logits; its
      ``lru_cache`` is keyed by tensor identity and keeps every input batch alive.
    * A caching wrapper ("run the backbone once, return the requested head") relies on the
      metrics being updated with the very same tensor object in a fixed order; an identity module
      relies on nothing but the documented ``feature: nn.Module`` argument.
    * Features in hand also let us check them for NaN/inf once, with a useful error.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


@dataclass(frozen=True)
class Logged:
    """One value a score logs: its key (``eval/<key>`` in the logs, ``<key>`` in eval.json) and
    whether lower or higher is better (``None``: not a quality, e.g. a spread over splits)."""

    key: str
    better: Literal["lower", "higher"] | None = None
    #: The column title of reports (None: the score's label for its one ranked value, else the key).
    title: str | None = None


def require_int(name: str, value: object, minimum: int) -> None:
    """Raise ``ValueError`` naming the config key unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"GenerativeMetrics: `{name}` must be an integer >= {minimum}, got {value!r}; "
            f"set `metrics.init_args.{name}` accordingly."
        )


@dataclass(frozen=True)
class ScoreSettings:
    """The options of :class:`~giugan.metrics.GenerativeMetrics` that the scores read."""

    extractor: str
    inception_score_splits: int
    kid_subset_size: int
    kid_subsets: int
    precision_recall_k: int = 3
    density_coverage_k: int = 5

    def __post_init__(self) -> None:
        require_int("kid_subset_size", self.kid_subset_size, 2)
        require_int("kid_subsets", self.kid_subsets, 1)
        require_int("inception_score_splits", self.inception_score_splits, 1)
        require_int("precision_recall_k", self.precision_recall_k, 1)
        require_int("density_coverage_k", self.density_coverage_k, 1)


class Score(nn.Module, ABC):
    """One score: its torchmetrics state, its count checks, its values and its protocol entries.

    Args:
        settings: the coordinator's options.
        width: the size of the (first) extractor output it consumes.
    """

    #: The GenerativeMetrics switch and protocol flag, e.g. ``"fid"``.
    name: ClassVar[str]
    #: Short name used in messages, e.g. ``"FID"``.
    label: ClassVar[str]
    #: The values it logs, in order, with their directions.
    logged: ClassVar[tuple[Logged, ...]]
    #: The registered extractor it consumes (``"inception"``: the network the ``extractor``
    #: option chooses, Inception or its stand-in).
    extractor: ClassVar[str] = "inception"
    #: Which output(s) of that extractor the score is updated with (a tuple: all of them, in
    #: that order, as one tuple).
    consumes: ClassVar[str | tuple[str, ...]]
    #: Whether real-image statistics are needed (and cached).
    needs_real: ClassVar[bool] = False

    def __init__(self, settings: ScoreSettings, width: int) -> None:
        super().__init__()
        self.settings = settings
        self.width = width
        self.metric = self.build_metric()

    @abstractmethod
    def build_metric(self) -> Metric:
        """The torchmetrics object holding the states, with an identity ``feature`` network."""

    # ------------------------------------------------------------------ updates
    @classmethod
    def check_reference(cls, reference_id: str) -> None:
        """Raise ``ValueError`` (or warn) when the score cannot measure against ``reference_id``."""

    def update(self, values: Tensor, real: bool) -> None:
        """Add a batch of the consumed output (see :attr:`consumes`) of real or generated images."""
        if real:
            self.metric.update(values, real=True)
        elif self.needs_real:
            self.metric.update(values, real=False)
        else:
            self.metric.update(values)

    def reset_fake(self) -> None:
        """Forget the generated images (real statistics survive: ``reset_real_features=False``)."""
        self.metric.reset()

    # ------------------------------------------------------------------ real statistics
    def reference_shapes(self) -> dict[str, tuple[int | None, ...]]:
        """Statistic name -> shape (``None``: any size) this score keeps in the reference file."""
        return {}

    def export_reference(self) -> dict[str, Tensor]:
        """The rank-synchronised real statistics as CPU tensors (every rank calls it)."""
        return {}

    def reference_count(self, stats: dict[str, Tensor]) -> int:
        """Number of real images the statistics ``stats`` were computed on."""
        raise RuntimeError(f"{self.label} keeps no real statistics; only scores that need real images are asked.")

    def load_reference(self, stats: dict[str, Tensor], rank: int, world: int) -> None:
        """Put the statistics into the states, shared so that a DDP sum/gather restores them."""

    def reset_real(self) -> None:
        """Forget the real statistics."""

    # ------------------------------------------------------------------ computing
    def compute(self) -> tuple[dict[str, float], dict[str, int]]:
        """``(values, counts)`` over all ranks; every rank calls it (the states are synced)."""
        with synchronised(self.metric, self.width) as metric:
            counts = self.counts(metric)
            self.check_counts(counts)
            values = self.values(metric)
        for name, value in values.items():
            if not math.isfinite(value):
                raise RuntimeError(
                    f"Metric '{name}' evaluated to {value}; the features are invalid."
                )
        return values, counts

    @abstractmethod
    def counts(self, metric: Metric) -> dict[str, int]:
        """Sample counts of the synced states: ``{"real": n, "fake": n}`` or ``{"fake": n}``."""

    @abstractmethod
    def check_counts(self, counts: dict[str, int]) -> None:
        """Raise ``ValueError`` (saying what to change) when the counts are too small."""

    @abstractmethod
    def values(self, metric: Metric) -> dict[str, float]:
        """The score's values from the synced states, e.g. ``{"fid": 12.3}``."""

    # ------------------------------------------------------------------ protocol
    @classmethod
    @abstractmethod
    def protocol(cls, settings: ScoreSettings, enabled: bool) -> dict[str, Any]:
        """The protocol entries of this score (written whether or not it is enabled)."""


__all__ = ["Logged", "PrecomputedFeatures", "Score", "ScoreSettings", "require_int"]
