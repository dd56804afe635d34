"""The one table of scores that :class:`~giugan.metrics.GenerativeMetrics` computes, and what is
derived from it.

Each entry maps the score's switch (a boolean argument of ``GenerativeMetrics`` of the same
name, e.g. ``fid: true`` in a config's ``metrics.init_args``) to its
:class:`~giugan.metrics.score.Score` class, which declares its logged keys and their directions,
the extractor it consumes and its protocol entries. Scores are built, updated, computed and written
into the protocol in this order. Derived here, for the rest of giugan (which names no score):

* which extractors to build (:func:`needed_extractors`);
* the score that decides "best" (:data:`BEST_BY`, :func:`best_criterion`,
  :func:`lower_is_better`) and ``best.ckpt``'s monitor (:func:`monitored_scores`);
* the loggers' summaries (:func:`summaries`).

Adding a score (as FD-DINOv2 was added):

1. one new file ``giugan/metrics/<score>.py`` with a :class:`~giugan.metrics.score.Score`
   subclass: ``name``, ``label``, ``logged``, ``extractor``, ``consumes``, ``needs_real`` and,
   when it does, ``reference_shapes``/``export_reference``/``reference_count``/
   ``load_reference``/``reset_real``; then ``build_metric``, ``counts``, ``check_counts``,
   ``values`` and ``protocol``;
2. one line in :data:`SCORES` below (and in :data:`BEST_BY` if it may decide "best");
3. its switch, a boolean argument of ``GenerativeMetrics`` named as its key here (configs are
   built from that signature; a test checks the two agree);
4. its test ``tests/metrics/test_<score>.py``.

A score on a new extractor adds that extractor's module and its line in
:data:`~giugan.metrics.extractor_registry.EXTRACTORS`.
"""

from __future__ import annotations

import warnings
from typing import Any

from giugan.metrics.fd_clip import FDCLIPScore
from giugan.metrics.fd_dinov2 import FDDINOv2Score
from giugan.metrics.features import FeatureExtractors
from giugan.metrics.fid import FIDScore
from giugan.metrics.inception_score import ISScore
from giugan.metrics.kid import KIDScore
from giugan.metrics.precision_recall import PrecisionRecallScore
from giugan.metrics.score import Score, ScoreSettings
from giugan.metrics.shapes_metric import ShapesJudgeScore

#: Switch name -> score class, in computing order.
SCORES: dict[str, type[Score]] = {
    "fid": FIDScore,
    "inception_score": ISScore,
    "kid": KIDScore,
    "precision_recall": PrecisionRecallScore,
    "shapes_judge": ShapesJudgeScore,
    "fd_dinov2": FDDINOv2Score,
    "fd_clip": FDCLIPScore,
}

#: The logged keys that may decide the best evaluation (and ``best.ckpt``), first present wins.
BEST_BY: tuple[str, ...] = ("fid", "fd_dinov2", "fd_clip", "judge_frechet", "is_mean")


def _directions() -> dict[str, str | None]:
    return {value.key: value.better for score in SCORES.values() for value in score.logged}


def _score_logging(key: str) -> type[Score]:
    return next(score for score in SCORES.values() if any(v.key == key for v in score.logged))


def needed_extractors(enabled: dict[str, bool]) -> list[str]:
    """The extractors (registered names or roles) the enabled scores consume, in table order."""
    return list(dict.fromkeys(s.extractor for n, s in SCORES.items() if enabled.get(n, False)))


def build_scores(
    settings: ScoreSettings, enabled: dict[str, bool], extractors: FeatureExtractors
) -> dict[str, Score]:
    """The enabled scores, in table order, sized by the outputs of their ``extractors``."""
    built: dict[str, Score] = {}
    with warnings.catch_warnings():  # torchmetrics' "features kept in memory" notices
        warnings.simplefilter("ignore", UserWarning)
        for name, score in SCORES.items():
            if enabled.get(name, False):
                first = score.consumes if isinstance(score.consumes, str) else score.consumes[0]
                built[name] = score(settings, extractors.width(score.extractor, first))
    return built


def scores_protocol(settings: ScoreSettings, enabled: dict[str, bool]) -> dict[str, Any]:
    """The protocol entries of every registered score, enabled or not."""
    entries: dict[str, Any] = {}
    for name, score in SCORES.items():
        entries.update(score.protocol(settings, enabled.get(name, False)))
    return entries


def lower_is_better(key: str) -> bool:
    """Whether a lower value of the logged ``key`` is better (``ValueError`` for a key that has
    no direction)."""
    direction = _directions().get(key)
    if direction is None:
        raise ValueError(f"The logged value {key!r} has no direction (lower or higher is better).")
    return direction == "lower"


def best_criterion(values: dict[str, Any]) -> str | None:
    """The logged key that decides whether ``values`` are the best: the first of :data:`BEST_BY`
    present (None when none is)."""
    return next((key for key in BEST_BY if key in values), None)


def monitored_scores() -> tuple[tuple[str, str, str], ...]:
    """``(switch, "eval/<key>", "min" | "max")`` for :data:`BEST_BY`, in order: the first whose
    switch is on is ``best.ckpt``'s monitor."""
    return tuple(
        (_score_logging(key).name, f"eval/{key}", "min" if lower_is_better(key) else "max")
        for key in BEST_BY
    )


def summaries() -> dict[str, str]:
    """``"eval/<key>"`` -> ``"min"`` or ``"max"``: how a dashboard summarises each score that may
    decide the best (its best value rather than its last)."""
    return {monitor: mode for _, monitor, mode in monitored_scores()}


__all__ = [
    "BEST_BY",
    "SCORES",
    "best_criterion",
    "build_scores",
    "lower_is_better",
    "monitored_scores",
    "needed_extractors",
    "scores_protocol",
    "summaries",
]


def reported_values() -> dict[str, str]:
    """The logged keys that rank a run (lower or higher is better), in table order, with their
    column titles (``giugan report``'s columns; docs/reporting.md)."""
    titles: dict[str, str] = {}
    for score in SCORES.values():
        ranked = [value for value in score.logged if value.better is not None]
        for value in ranked:
            titles[value.key] = value.title or (score.label if len(ranked) == 1 else value.key.replace("_", " "))
    return titles


def switches() -> tuple[str, ...]:
    """The scores' switches (``GenerativeMetrics`` arguments), in table order."""
    return tuple(SCORES)
