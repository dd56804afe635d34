"""The one table of scores that :class:`~giugan.metrics.GenerativeMetrics` computes.

Each entry maps the score's switch (a boolean argument of ``GenerativeMetrics`` of the same
name, e.g. ``fid: true`` in a config's ``metrics.init_args``) to its
:class:`~giugan.metrics.score.Score` class. Scores are built, updated, computed and written
into the protocol in this order.

Adding a score (as precision/recall was added):

1. one new file ``giugan/metrics/<score>.py`` with a :class:`~giugan.metrics.score.Score`
   subclass: ``name``, ``label``, ``consumes`` ("features" or "logits"), ``needs_real`` and, when
   it does, ``reference_shapes``/``export_reference``/``reference_count``/``load_reference``/
   ``reset_real``; then ``build_metric``, ``counts``, ``check_counts``, ``values`` and
   ``protocol``;
2. one line in :data:`SCORES` below;
3. its test ``tests/metrics/test_<score>.py`` (values against a reference implementation,
   the count check's message, the protocol entries).

The reference cache and the DDP code need no change. The coordinator needs one only because
the config schema is built from the signature of ``GenerativeMetrics``: a score that a config
switches on needs a boolean argument there named as its key here (and an entry in its
``enabled`` dict); options of its own are further arguments, passed on in
:class:`~giugan.metrics.score.ScoreSettings`.
"""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn

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
}


def build_scores(
    settings: ScoreSettings, enabled: dict[str, bool], extractor: nn.Module | None
) -> dict[str, Score]:
    """The enabled scores, in table order, for ``extractor`` (none when it is ``None``)."""
    if extractor is None:
        return {}
    width = {"features": extractor.num_features, "logits": extractor.num_classes, "images": 3}
    with warnings.catch_warnings():  # torchmetrics' "features kept in memory" notices
        warnings.simplefilter("ignore", UserWarning)
        return {
            name: score(settings, width[score.consumes])
            for name, score in SCORES.items()
            if enabled.get(name, False)
        }


def scores_protocol(settings: ScoreSettings, enabled: dict[str, bool]) -> dict[str, Any]:
    """The protocol entries of every registered score, enabled or not."""
    entries: dict[str, Any] = {}
    for name, score in SCORES.items():
        entries.update(score.protocol(settings, enabled.get(name, False)))
    return entries


__all__ = ["SCORES", "build_scores", "scores_protocol"]
