"""The score table: every entry honours the Score interface; build_scores and the protocol."""

from __future__ import annotations

import pytest

from giugan.metrics import GenerativeMetrics, StandInExtractor
from giugan.metrics.fid import FIDScore
from giugan.metrics.inception_score import ISScore
from giugan.metrics.kid import KIDScore
from giugan.metrics.registry import SCORES, build_scores, scores_protocol
from giugan.metrics.score import Score, ScoreSettings

SETTINGS = ScoreSettings("standin", inception_score_splits=4, kid_subset_size=50, kid_subsets=5)


def test_the_table_lists_fid_is_kid_in_computing_order() -> None:
    assert list(SCORES.items())[:3] == [
        ("fid", FIDScore), ("inception_score", ISScore), ("kid", KIDScore),
    ]  # fmt: skip
    for name, score in SCORES.items():
        assert issubclass(score, Score) and score.name == name
        assert score.consumes in ("features", "logits", "images")


def test_every_switch_is_a_generative_metrics_argument() -> None:
    """A config switches a score with the GenerativeMetrics argument named as its key."""
    import inspect

    parameters = inspect.signature(GenerativeMetrics.__init__).parameters
    for name in SCORES:
        assert parameters[name].annotation in (bool, "bool"), name


def test_build_scores_builds_the_enabled_ones_with_their_widths() -> None:
    extractor = StandInExtractor(num_features=32, num_classes=7)
    scores = build_scores(SETTINGS, {"fid": True, "inception_score": True}, extractor)
    assert list(scores) == ["fid", "inception_score"]
    assert scores["fid"].width == 32 and scores["inception_score"].width == 7
    assert build_scores(SETTINGS, {"fid": True}, None) == {}


def test_needs_real_and_reference_shapes() -> None:
    scores = build_scores(SETTINGS, dict.fromkeys(SCORES, True), StandInExtractor())
    assert {name: score.needs_real for name, score in scores.items()}.items() >= {
        "fid": True, "inception_score": False, "kid": True,
    }.items()  # fmt: skip
    assert scores["fid"].reference_shapes() == {
        "fid_features_sum": (64,), "fid_features_cov_sum": (64, 64), "fid_num_samples": (),
    }  # fmt: skip
    assert scores["kid"].reference_shapes() == {"kid_real_features": (None, 64)}
    assert scores["inception_score"].reference_shapes() == {}


def test_protocol_entries_are_written_for_disabled_scores_too() -> None:
    entries = scores_protocol(SETTINGS, {"fid": True})
    assert entries["fid"] is True and entries["inception_score"] is False
    assert entries["kid"] is False and entries["kid_subset_size"] == 50
    assert entries["inception_score_splits"] == 4 and entries["inception_score_logits"] == "logits"


@pytest.mark.parametrize(
    ("name", "value"), [("kid_subset_size", 1), ("kid_subsets", 0), ("inception_score_splits", 0)]
)
def test_settings_reject_bad_options_naming_the_key(name: str, value: int) -> None:
    options = {"inception_score_splits": 4, "kid_subset_size": 50, "kid_subsets": 5, name: value}
    with pytest.raises(
        ValueError, match=rf"`{name}` must be an integer.*metrics\.init_args\.{name}"
    ):
        ScoreSettings("standin", **options)
