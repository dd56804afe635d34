"""The shapes judge as a score of GenerativeMetrics: values, reference cache, protocol, best.ckpt."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from giugan.data.shapes_render import render_labelled_shapes
from giugan.metrics import GenerativeMetrics
from giugan.metrics.shapes_judge import SHAPES_JUDGE_SHA256
from giugan.metrics.shapes_scores import shapes_judge_scores
from giugan.training.callbacks.checkpoints import BestCheckpoint

pytestmark = pytest.mark.usefixtures("single_thread")

REAL, _ = render_labelled_shapes(200, 32, seed=0)
FAKE, _ = render_labelled_shapes(120, 32, seed=7)
NOISE = torch.randint(0, 256, (60, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))


def judged(cache: Path, **switches: bool) -> GenerativeMetrics:
    switches = {"fid": False, "inception_score": False, "shapes_judge": True} | switches
    return GenerativeMetrics(extractor="standin", num_fake=120, cache_dir=str(cache), **switches)


def fill_real(metrics: GenerativeMetrics, batch: int = 64) -> dict:
    key = metrics.reference_key("shapes-test-32", REAL.shape[0])
    if not metrics.load_reference(key):
        for part in REAL.split(batch):
            metrics.update_real(part)
        metrics.save_reference(key)
    return key


def scores_of(metrics: GenerativeMetrics, images: torch.Tensor, batch: int) -> dict[str, float]:
    metrics.reset_fake()
    for part in images.split(batch):
        metrics.update_fake(part)
    return metrics.compute()


def test_values_equal_the_pure_functions_at_any_batch_size(tmp_path: Path) -> None:
    expected = shapes_judge_scores(FAKE, REAL)
    metrics = judged(tmp_path)
    fill_real(metrics, batch=37)
    for batch in (17, 120):
        values = scores_of(metrics, FAKE, batch)
        assert set(values) == {"recognisable", "modes_covered", "mode_balance", "judge_frechet"}
        for name, value in expected.items():
            assert values[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
    assert metrics.last_counts == {"real": 200, "fake": 120}


def test_generated_images_are_forgotten_and_real_statistics_kept(tmp_path: Path) -> None:
    metrics = judged(tmp_path)
    fill_real(metrics)
    noise = scores_of(metrics, NOISE, 60)
    again = scores_of(metrics, FAKE, 60)
    assert again["recognisable"] == pytest.approx(shapes_judge_scores(FAKE, REAL)["recognisable"])
    assert noise["recognisable"] < 0.1 < again["recognisable"]
    assert noise["judge_frechet"] > 10 * again["judge_frechet"]


def test_real_statistics_come_from_the_cache_keyed_by_the_judge(tmp_path: Path) -> None:
    first = judged(tmp_path)
    key = fill_real(first)
    stored = torch.load(first.reference_path(key), weights_only=True)["stats"]
    assert {f"shapes_judge_{SHAPES_JUDGE_SHA256[:12]}_{s}" for s in ("features_sum", "modes")} <= set(stored)
    assert int(stored[f"shapes_judge_{SHAPES_JUDGE_SHA256[:12]}_num_samples"]) == 200
    second = judged(tmp_path)
    assert second.load_reference(key)  # a hit: no real image fed
    assert scores_of(second, FAKE, 60) == pytest.approx(scores_of(first, FAKE, 60))
    # The key names the judge's network: the statistics of FID alone, or of another judge, are
    # other files, never read for the judge's.
    fid_only = judged(tmp_path / "other", fid=True, shapes_judge=False)
    fid_key = fill_real(fid_only)
    with_judge = judged(tmp_path / "other", fid=True)
    both_key = with_judge.reference_key("shapes-test-32", REAL.shape[0])
    assert "extractors" not in fid_key
    assert both_key["extractors"] == {"shapes_judge": with_judge.extractors.network("shapes_judge").identity}
    assert with_judge.reference_path(both_key) != fid_only.reference_path(fid_key)
    assert not with_judge.load_reference(both_key)
    retrained = judged(tmp_path)
    retrained.extractors.network("shapes_judge").identity = "shapes-judge/sha256:retrained"
    retrained_key = retrained.reference_key("shapes-test-32", REAL.shape[0])
    assert retrained.reference_path(retrained_key) != first.reference_path(key)
    assert not retrained.load_reference(retrained_key)


def test_too_few_images_name_the_fix(tmp_path: Path) -> None:
    metrics = judged(tmp_path)
    metrics.update_fake(FAKE[:5])
    with pytest.raises(ValueError, match=re.escape("need at least 2 real and 2 generated images")):
        metrics.compute()


def test_protocol_states_threshold_smoothing_and_weights(tmp_path: Path) -> None:
    protocol = judged(tmp_path).protocol()
    assert protocol["shapes_judge"] is True
    assert protocol["recognisable_threshold"] == 0.9
    assert protocol["mode_balance_pseudo_count"] == 0.5
    assert protocol["shapes_judge_weights_sha256"] == SHAPES_JUDGE_SHA256
    assert protocol["num_fake"] == 120
    assert judged(tmp_path, shapes_judge=False).protocol()["shapes_judge"] is False


@pytest.mark.parametrize(
    ("switches", "monitor", "mode"),
    [
        ({"fid": True, "shapes_judge": True, "inception_score": True}, "eval/fid", "min"),
        ({"fid": False, "shapes_judge": True, "inception_score": True}, "eval/judge_frechet", "min"),
        ({"fid": False, "shapes_judge": False, "inception_score": True}, "eval/is_mean", "max"),
    ],
)
def test_best_checkpoint_follows_the_main_enabled_score(
    switches: dict[str, bool], monitor: str, mode: str
) -> None:
    best = BestCheckpoint.for_metrics(switches)
    assert best is not None and (best.monitor, best.mode) == (monitor, mode)
    assert BestCheckpoint.for_metrics({"kid": True}) is None


def test_the_judge_refuses_other_datasets_and_warns_once_about_image_files(tmp_path: Path) -> None:
    import warnings

    metrics = judged(tmp_path)
    with pytest.raises(ValueError, match=r"shapes set .* only, but the reference is 'cifar10-train-32'") as info:
        metrics.reference_key("cifar10-train-32", 50000)
    assert "shapes_judge: false" in str(info.value) and "\n" not in str(info.value)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(2):  # once per reference
            metrics.reference_key("images-0123456789abcdef-32x32", 10)
    warned = [str(w.message) for w in record if "shapes images" in str(w.message)]
    assert len(warned) == 1 and "'images-0123456789abcdef-32x32' were read from files" in warned[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics.reference_key("shapes-seed0-n96-32", 96)  # the shapes set: silent
    assert not judged(tmp_path, shapes_judge=False).check_reference("cifar10-train-32")  # judge off: no objection
