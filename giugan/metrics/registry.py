"""The one table of scores that :class:`~giugan.metrics.GenerativeMetrics` computes.

Each entry maps the score's switch (a boolean argument of ``GenerativeMetrics`` of the same
name, e.g. ``fid: true`` in a config's ``metrics.init_args``) to its :class:`~giugan.metrics.score.Score`
class. Scores are built, updated, computed and written into the protocol in this order.

Adding a score, e.g. precision/recall:

1. one new file ``giugan/metrics/<score>.py`` with a :class:`~giugan.metrics.score.Score`
   subclass: ``name``, ``label``, ``consumes`` ("features" or "logits"), ``needs_real`` and, when
   it does, ``reference_shapes``/``export_reference``/``reference_count``/``load_reference``/
   ``reset_real``; then ``build_metric``, ``counts``, ``check_counts``, ``values`` and
   ``protocol``;
2. one line in :data:`SCORES` below;
3. its test ``tests/metrics/test_<score>.py`` (values against a reference implementation,
   the count check's message, the protocol entries).

The coordinator, the reference cache and the DDP code need no change, with one exception: the
config schema is built from the signature of ``GenerativeMetrics``, so a score that a config
switches on (or that has options) also needs that boolean argument, named as its key here (and
its options, added to :class:`~giugan.metrics.score.ScoreSettings`).
"""

from __future__ import annotations

from giugan.metrics.fid import FIDScore
from giugan.metrics.inception_score import ISScore
from giugan.metrics.kid import KIDScore
from giugan.metrics.score import Score

#: Switch name -> score class, in computing order.
SCORES: dict[str, type[Score]] = {
    "fid": FIDScore,
    "inception_score": ISScore,
    "kid": KIDScore,
}

__all__ = ["SCORES"]
