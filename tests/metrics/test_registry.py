"""The score table: every entry honours the Score interface; build_scores, the protocol, and what
the rest of giugan derives from it (the best-deciding score, monitors, summaries)."""

from __future__ import annotations

import pytest

from giugan.metrics import GenerativeMetrics, StandInExtractor
from giugan.metrics.extractor_registry import EXTRACTORS
from giugan.metrics.features import FeatureExtractors
from giugan.metrics.fid import FIDScore
from giugan.metrics.inception_score import ISScore
from giugan.metrics.kid import KIDScore
from giugan.metrics.registry import (
    BEST_BY,
    SCORES,
    best_criterion,
    build_scores,
    lower_is_better,
    monitored_scores,
    needed_extractors,
    scores_protocol,
    summaries,
)
from giugan.metrics.score import Score, ScoreSettings

SETTINGS = ScoreSettings("standin", inception_score_splits=4, kid_subset_size=50, kid_subsets=5)


def test_the_table_lists_fid_is_kid_in_computing_order() -> None:
    assert list(SCORES.items())[:3] == [
        ("fid", FIDScore), ("inception_score", ISScore), ("kid", KIDScore),
    ]  # fmt: skip
    logged = [value.key for score in SCORES.values() for value in score.logged]
    assert len(logged) == len(set(logged))  # one score per logged key
    for name, score in SCORES.items():
        assert issubclass(score, Score) and score.name == name
        assert score.extractor in EXTRACTORS
        consumed = (score.consumes,) if isinstance(score.consumes, str) else score.consumes
        assert set(consumed) <= {"features", "logits", "shape", "colour", "background"}


def test_every_score_computes_exactly_its_logged_keys(standin_metrics) -> None:
    from .conftest import filled

    metrics = filled(standin_metrics(kid=True))
    values = metrics.compute()
    expected = [v.key for name in metrics.scores for v in SCORES[name].logged]
    assert list(values) == expected


def test_every_switch_is_a_generative_metrics_argument() -> None:
    """A config switches a score with the GenerativeMetrics argument named as its key."""
    import inspect

    parameters = inspect.signature(GenerativeMetrics.__init__).parameters
    for name in SCORES:
        assert parameters[name].annotation in (bool, "bool"), name


def test_build_scores_builds_the_enabled_ones_with_their_widths() -> None:
    extractors = FeatureExtractors({"standin": StandInExtractor(num_features=32, num_classes=7)}, "standin")
    scores = build_scores(SETTINGS, {"fid": True, "inception_score": True}, extractors)
    assert list(scores) == ["fid", "inception_score"]
    assert scores["fid"].width == 32 and scores["inception_score"].width == 7
    assert build_scores(SETTINGS, {}, FeatureExtractors({}, "standin")) == {}


def test_only_the_extractors_of_enabled_scores_are_needed() -> None:
    assert needed_extractors({"fid": True, "inception_score": True, "kid": True}) == ["inception"]
    assert needed_extractors({"shapes_judge": True}) == ["shapes_judge"]
    assert needed_extractors({"fid": True, "fd_dinov2": True}) == ["inception", "dinov2"]
    assert needed_extractors({}) == []


def test_needs_real_and_reference_shapes() -> None:
    switches = {name: name in ("fid", "inception_score", "kid", "precision_recall") for name in SCORES}
    scores = build_scores(SETTINGS, switches, FeatureExtractors({"standin": StandInExtractor()}, "standin"))
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


def test_the_best_deciding_score_and_its_direction_come_from_the_table() -> None:
    assert BEST_BY[0] == "fid"
    assert best_criterion({"is_mean": 3.0, "fid": 10.0}) == "fid"
    assert best_criterion({"is_mean": 3.0, "judge_frechet": 2.0}) == "judge_frechet"
    assert best_criterion({"kid_mean": 0.1}) is None
    assert lower_is_better("fid") and lower_is_better("fd_dinov2") and not lower_is_better("is_mean")
    with pytest.raises(ValueError, match="no direction"):
        lower_is_better("is_std")
    monitors = monitored_scores()
    assert monitors[0] == ("fid", "eval/fid", "min")
    assert ("inception_score", "eval/is_mean", "max") in monitors
    assert ("fd_dinov2", "eval/fd_dinov2", "min") in monitors
    assert summaries() == {monitor: mode for _, monitor, mode in monitors}


def test_no_score_is_named_outside_the_metrics_package() -> None:
    """Switches, logged keys and ``eval/<key>`` appear as string literals only in giugan/metrics/:
    everything else derives them from the table. (``trainer.precision`` is Lightning's option.)"""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "giugan"
    names = set(SCORES) | {value.key for score in SCORES.values() for value in score.logged}
    names |= {f"eval/{name}" for name in names} | {f"eval/best_{name}" for name in names}
    lightning_options = {("cli/runs.py", "precision")}
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if relative.startswith("metrics/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names and (relative, node.value) not in lightning_options:
                found.append(f"{relative}:{node.lineno} {node.value!r}")
    assert found == []
