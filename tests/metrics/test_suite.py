"""GenerativeMetrics with the stand-in extractor: values, cache, errors, unavailability."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from giugan.metrics import (
    INCEPTION_WEIGHTS_FILENAME,
    GenerativeMetrics,
    InceptionWeightsUnavailable,
    InvalidInceptionWeights,
    StandInExtractor,
    compute_reference_statistics,
    frechet_distance,
    quantize_images,
)
from giugan.metrics.suite import SUBSET_SEED

from .conftest import make_images

REAL = make_images(160, seed=10)
FAKE = make_images(160, seed=11, shift=0.15)


def _filled(metrics: GenerativeMetrics, real=REAL, fake=FAKE, batch: int = 40) -> GenerativeMetrics:
    for i in range(0, len(real), batch):
        metrics.update_real(real[i : i + batch])
    for i in range(0, len(fake), batch):
        metrics.update_fake(fake[i : i + batch])
    return metrics


def _gaussian(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    features = StandInExtractor()(images)[0].double().numpy()
    return features.mean(0), np.cov(features, rowvar=False)


# --------------------------------------------------------------------------- values
def test_fid_of_a_set_against_itself_is_zero(standin_metrics) -> None:
    scores = _filled(standin_metrics(), REAL, REAL).compute()
    different = _filled(standin_metrics(), REAL, FAKE).compute()["fid"]
    assert different > 0.1
    assert abs(scores["fid"]) < 1e-3 * different
    assert abs(scores["kid_mean"]) < 1e-3 * different


def test_fid_equals_frechet_distance_of_the_same_features(standin_metrics) -> None:
    fid = _filled(standin_metrics()).compute()["fid"]
    expected = frechet_distance(*_gaussian(REAL), *_gaussian(FAKE))
    assert fid == pytest.approx(expected, rel=1e-6)


@pytest.mark.filterwarnings("ignore:Metric `.*` will save all extracted features")
def test_scores_equal_torchmetrics_run_on_images(standin_metrics) -> None:
    """Sharing one extractor changes nothing: same as each torchmetrics object on its own."""

    class Head(nn.Module):
        def __init__(self, index: int, size: int) -> None:
            super().__init__()
            self.extractor, self.index, self.num_features = StandInExtractor(), index, size

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.extractor(images)[self.index]

    fid = FrechetInceptionDistance(feature=Head(0, 64), reset_real_features=False)
    kid = KernelInceptionDistance(feature=Head(0, 64), subsets=5, subset_size=50)
    inception_score = InceptionScore(feature=Head(1, 10), splits=4)
    for real, fake in zip(REAL.split(40), FAKE.split(40)):
        fid.update(real, real=True), kid.update(real, real=True)
        fid.update(fake, real=False), kid.update(fake, real=False), inception_score.update(fake)
    scores = _filled(standin_metrics()).compute()
    assert scores["fid"] == pytest.approx(float(fid.compute()), rel=1e-5)
    torch.manual_seed(SUBSET_SEED)
    is_mean, is_std = inception_score.compute()
    torch.manual_seed(SUBSET_SEED)
    kid_mean, kid_std = kid.compute()
    assert scores["is_mean"] == pytest.approx(float(is_mean), rel=1e-5)
    assert scores["is_std"] == pytest.approx(float(is_std), rel=1e-4)
    assert scores["kid_mean"] == pytest.approx(float(kid_mean), rel=1e-5)
    assert scores["kid_std"] == pytest.approx(float(kid_std), rel=1e-4)


def test_independent_of_update_batch_size(standin_metrics) -> None:
    by_40 = _filled(standin_metrics(), batch=40).compute()
    by_7 = _filled(standin_metrics(), batch=7).compute()
    assert by_7.keys() == by_40.keys() == {"fid", "is_mean", "is_std", "kid_mean", "kid_std"}
    for name in by_40:
        assert by_7[name] == pytest.approx(by_40[name], rel=1e-5, abs=1e-7), name


def test_compute_is_reproducible_and_leaves_the_global_rng_alone(standin_metrics) -> None:
    metrics = _filled(standin_metrics())
    torch.manual_seed(123)
    first = metrics.compute()
    after = torch.rand(3)
    torch.manual_seed(123)
    torch.rand(3)
    assert metrics.compute() == first
    torch.manual_seed(123)
    assert torch.equal(torch.rand(3), after)


def test_reset_fake_keeps_real_statistics(standin_metrics) -> None:
    metrics = _filled(standin_metrics())
    before = metrics.compute()
    metrics.reset_fake()
    with pytest.raises(ValueError, match="0 generated"):
        metrics.compute()
    for fake in FAKE.split(40):
        metrics.update_fake(fake)
    assert metrics.compute() == before
    assert metrics.last_counts == {"real": 160, "fake": 160}


def test_grayscale_images_are_repeated_to_rgb(standin_metrics) -> None:
    gray = REAL[:, :1]
    one = standin_metrics(kid=False)
    one.update_real(gray), one.update_fake(gray)
    three = standin_metrics(kid=False)
    rgb = gray.expand(-1, 3, -1, -1).contiguous()
    three.update_real(rgb), three.update_fake(rgb)
    assert one.compute() == three.compute()


def test_updates_require_uint8(standin_metrics) -> None:
    with pytest.raises(TypeError, match="quantize_images"):
        standin_metrics().update_fake(torch.rand(2, 3, 16, 16))


# --------------------------------------------------------------------------- errors
def test_too_few_samples_for_fid(standin_metrics) -> None:
    metrics = standin_metrics(inception_score=False, kid=False)
    metrics.update_real(REAL[:10])
    metrics.update_fake(FAKE[:1])
    with pytest.raises(
        ValueError, match=r"at least 2 real and 2 generated.*10 real and 1 generated"
    ):
        metrics.compute()
    empty = standin_metrics(inception_score=False, kid=False)
    empty.update_fake(FAKE[:5])
    with pytest.raises(ValueError, match="0 real.*load_reference"):
        empty.compute()


def test_too_few_samples_for_kid_and_is(standin_metrics) -> None:
    metrics = standin_metrics(fid=False, inception_score=False, kid_subset_size=100)
    metrics.update_real(REAL)
    metrics.update_fake(FAKE[:99])
    with pytest.raises(ValueError, match=r"kid_subset_size=100.*160 real and 99 generated"):
        metrics.compute()
    scores = standin_metrics(fid=False, kid=False, inception_score_splits=10)
    scores.update_fake(FAKE[:9])
    with pytest.raises(ValueError, match="inception_score_splits=10.*has 9"):
        scores.compute()


def test_nan_features_are_an_error(standin_metrics, monkeypatch) -> None:
    metrics = standin_metrics()
    network = metrics.extractor

    def broken(images: torch.Tensor):
        features, logits = StandInExtractor.forward(network, images)
        features[0, 3] = float("nan")
        return features, logits

    monkeypatch.setattr(network, "forward", broken)
    with pytest.raises(RuntimeError, match="NaN/inf pool features for 1 of 8 images"):
        metrics.update_fake(FAKE[:8])


def test_invalid_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="kid_subset_size"):
        GenerativeMetrics(extractor="standin", kid_subset_size=0)
    with pytest.raises(ValueError, match="on_missing_weights"):
        GenerativeMetrics(extractor="standin", on_missing_weights="ignore")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- missing weights
def test_missing_weights_error_mode(tmp_path: Path) -> None:
    with pytest.raises(InceptionWeightsUnavailable) as info:
        GenerativeMetrics(weights_path=str(tmp_path / INCEPTION_WEIGHTS_FILENAME))
    assert INCEPTION_WEIGHTS_FILENAME in str(info.value) and "\n" not in str(info.value)


def test_missing_weights_warn_mode_disables_with_reason(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="disabled") as record:
        metrics = GenerativeMetrics(
            weights_path=str(tmp_path / "absent.pth"), on_missing_weights="warn",
            cache_dir=str(tmp_path),
        )  # fmt: skip
    assert len(record) == 1
    assert not metrics.available
    assert (
        "absent.pth" in metrics.unavailable_reason and "weights_path" in metrics.unavailable_reason
    )
    assert metrics.extractor is None
    metrics.update_real(REAL[:4])  # no-ops, no further warnings
    metrics.update_fake(FAKE[:4])
    metrics.reset_fake()
    assert metrics.load_reference(metrics.reference_key("x", 10)) is True  # nothing to compute
    assert metrics.compute() == {}
    assert metrics.protocol()["available"] is False
    with pytest.raises(RuntimeError, match="unavailable"):
        compute_reference_statistics(metrics, [REAL], "x", 10)


def test_invalid_weights_file_is_an_error_even_in_warn_mode(tmp_path: Path) -> None:
    garbage = tmp_path / INCEPTION_WEIGHTS_FILENAME
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(InvalidInceptionWeights):
        GenerativeMetrics(weights_path=str(garbage), on_missing_weights="warn")


# --------------------------------------------------------------------------- module plumbing
def test_extractor_is_not_in_state_dict_or_parameters(standin_metrics) -> None:
    metrics = _filled(standin_metrics())
    assert metrics.state_dict() == {}
    assert list(metrics.parameters()) == []
    assert all(not isinstance(m, StandInExtractor) for m in metrics.modules())
    metrics.load_state_dict({})  # checkpoints stay loadable whatever the extractor
    # half()/bf16 of the owning module never changes the extractor's dtype
    metrics.to(torch.bfloat16)
    assert metrics.extractor.conv1_weight.dtype == torch.float32


def test_protocol_states_everything(standin_metrics) -> None:
    protocol = standin_metrics().protocol()
    assert protocol["extractor"] == "standin" and protocol["comparable_with_papers"] is False
    assert protocol["quantisation"] == "clamp [-1,1], round((x+1)*127.5), uint8"
    assert protocol["feature_dim"] == 64 and protocol["inception_score_splits"] == 4
    assert protocol["kid_subset_size"] == 50 and protocol["kid_subsets"] == 5
    assert protocol["num_fake"] == 160
    for library in ("torch_version", "torchmetrics_version", "torch_fidelity_version"):
        assert protocol[library]


@pytest.mark.slow
def test_inception_suite_protocol_and_key(random_inception, tmp_path: Path) -> None:
    path, _ = random_inception
    metrics = GenerativeMetrics(weights_path=str(path), cache_dir=str(tmp_path))
    protocol = metrics.protocol()
    assert protocol["resize"].startswith("bilinear, antialias=False, 299x299")
    assert protocol["feature_dim"] == 2048 and protocol["num_classes"] == 1008
    assert protocol["weights_file"] == str(path) and len(protocol["weights_sha256"]) == 64
    key = metrics.reference_key("cifar10-train-32", 50000)
    assert key["weights_sha256"] == protocol["weights_sha256"]
    assert key["resize"] == protocol["resize"] and key["feature_dim"] == 2048


# --------------------------------------------------------------------------- reference cache
def _real_state(metrics: GenerativeMetrics) -> list[torch.Tensor]:
    fid = metrics.fid_metric
    return [
        fid.real_features_sum.clone(),
        fid.real_features_cov_sum.clone(),
        fid.real_features_num_samples.clone(),
        torch.cat(metrics.kid_metric.real_features),
    ]


def test_cache_hit_gives_identical_statistics_and_scores(standin_metrics) -> None:
    computed = standin_metrics()
    key = computed.reference_key("shapes-train-16", 160)
    assert computed.load_reference(key) is False
    for real in REAL.split(40):
        computed.update_real(real)
    path = computed.save_reference(key)
    assert path == computed.reference_path(key) and path.is_file()
    assert path.name.startswith("shapes-train-16-")
    assert not list(path.parent.glob("*.tmp"))  # atomic write leaves no temporary file
    for fake in FAKE.split(40):
        computed.update_fake(fake)

    loaded = standin_metrics()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert loaded.load_reference(key) is True
    for a, b in zip(_real_state(computed), _real_state(loaded)):
        assert torch.equal(a, b)
    for fake in FAKE.split(40):
        loaded.update_fake(fake)
    assert loaded.compute() == computed.compute()


def test_changed_key_misses(standin_metrics, tmp_path: Path) -> None:
    metrics = standin_metrics()
    key = metrics.reference_key("shapes-train-16", 160)
    metrics.update_real(REAL)
    metrics.save_reference(key)
    fresh = standin_metrics()
    assert fresh.load_reference(fresh.reference_key("shapes-test-16", 160)) is False
    assert metrics.load_reference(metrics.reference_key("shapes-test-16", 160)) is False
    assert int(metrics.fid_metric.real_features_num_samples) == 0  # a miss empties the states
    assert metrics.kid_metric.real_features == []
    assert fresh.load_reference(fresh.reference_key("shapes-train-16", 150)) is False
    other = GenerativeMetrics(extractor="standin", cache_dir=str(tmp_path / "cache"))
    # same reference, other extractor identity (seed/dims) -> other key -> other file
    other.extractor.identity = "standin-seed1-features64-classes10"
    other_key = other.reference_key("shapes-train-16", 160)
    assert other_key != key and other.reference_path(other_key) != metrics.reference_path(key)
    assert other.load_reference(other_key) is False


def test_corrupt_cache_file_is_recomputed_with_a_warning(standin_metrics) -> None:
    metrics = standin_metrics()
    key = metrics.reference_key("shapes-train-16", 160)
    path = compute_reference_statistics(metrics, REAL.split(40), "shapes-train-16", 160)
    expected = _real_state(metrics)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
    again = standin_metrics()
    with pytest.warns(UserWarning, match="cannot be read"):
        assert again.load_reference(key) is False
    with pytest.warns(UserWarning, match="cannot be read"):
        compute_reference_statistics(again, REAL.split(40), "shapes-train-16", 160)
    for a, b in zip(expected, _real_state(again)):
        torch.testing.assert_close(a, b)
    assert standin_metrics().load_reference(key) is True  # rewritten, valid again


def test_cache_file_of_another_key_is_not_trusted(standin_metrics) -> None:
    metrics = standin_metrics()
    train = compute_reference_statistics(metrics, [REAL], "shapes-train-16", 160)
    test_key = metrics.reference_key("shapes-test-16", 160)
    metrics.reference_path(test_key).write_bytes(train.read_bytes())  # copied by hand
    with pytest.warns(UserWarning, match="written for another key"):
        assert standin_metrics().load_reference(test_key) is False


def test_cache_with_nan_or_wrong_count_is_not_trusted(standin_metrics) -> None:
    metrics = standin_metrics()
    key = metrics.reference_key("shapes-train-16", 160)
    path = compute_reference_statistics(metrics, [REAL], "shapes-train-16", 160)
    payload = torch.load(path, weights_only=True)
    payload["stats"]["fid_features_sum"][0] = float("nan")
    torch.save(payload, path)
    with pytest.warns(UserWarning, match="NaN"):
        assert standin_metrics().load_reference(key) is False
    payload["stats"]["fid_features_sum"][0] = 0.0
    payload["stats"]["fid_num_samples"] = torch.tensor(150)
    torch.save(payload, path)
    with pytest.warns(UserWarning, match="hold"):
        assert standin_metrics().load_reference(key) is False


def test_cache_without_kid_features_misses_when_kid_is_enabled(standin_metrics) -> None:
    fid_only = standin_metrics(kid=False)
    key = fid_only.reference_key("shapes-train-16", 160)
    compute_reference_statistics(fid_only, [REAL], "shapes-train-16", 160)
    assert standin_metrics(kid=False).load_reference(key) is True
    with pytest.warns(UserWarning, match="kid_real_features"):
        assert standin_metrics(kid=True).load_reference(key) is False


def test_save_reference_checks_the_image_count(standin_metrics) -> None:
    metrics = standin_metrics()
    metrics.update_real(REAL)
    metrics.update_real(REAL[:8])  # e.g. a DistributedSampler padding with repeats
    with pytest.raises(ValueError, match="168 images.*num_real=160.*DistributedSampler"):
        metrics.save_reference(metrics.reference_key("shapes-train-16", 160))


def test_keys_from_another_suite_are_rejected(standin_metrics) -> None:
    key = standin_metrics().reference_key("shapes-train-16", 160)
    key["extractor_identity"] = "something else"
    with pytest.raises(ValueError, match="reference_key"):
        standin_metrics().load_reference(key)


# --------------------------------------------------------------------------- giugan stats
def test_compute_reference_statistics_takes_num_real_images_and_skips_on_hit(
    standin_metrics, monkeypatch
) -> None:
    metrics = standin_metrics()
    floats = REAL.float() / 127.5 - 1.0  # float batches in [-1, 1], as (images, labels) pairs
    batches = [(floats[i : i + 64], torch.zeros(64)) for i in range(0, 160, 64)]
    path = compute_reference_statistics(metrics, batches, "shapes-train-16", 100)
    assert path.is_file() and int(metrics.fid_metric.real_features_num_samples) == 100
    direct = standin_metrics()
    direct.update_real(quantize_images(floats[:100]))
    torch.testing.assert_close(_real_state(direct)[0], _real_state(metrics)[0])

    hit = standin_metrics()
    calls = []
    monkeypatch.setattr(hit, "update_real", lambda images: calls.append(images))
    assert compute_reference_statistics(hit, batches, "shapes-train-16", 100) == path
    assert calls == []
    with pytest.raises(ValueError, match="ran out after 160"):
        compute_reference_statistics(standin_metrics(), [REAL], "shapes-train-16", 200)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        compute_reference_statistics(standin_metrics(), [REAL.float()], "other-16", 100)


# --------------------------------------------------------------------------- Lightning contexts
def test_inference_mode_and_plain_mode_can_be_mixed(standin_metrics) -> None:
    """Lightning validates under torch.inference_mode; states made there stay updatable."""
    metrics = standin_metrics()
    key = metrics.reference_key("shapes-train-16", 160)
    with torch.inference_mode():
        assert metrics.load_reference(key) is False
        metrics.update_real(REAL)
        metrics.save_reference(key)
        metrics.reset_fake()
        metrics.update_fake(FAKE)
        expected = metrics.compute()
    metrics.update_fake(FAKE[:8])  # outside inference mode, on inference-mode states
    metrics.reset_fake()
    metrics.update_fake(FAKE)
    assert metrics.compute() == expected
    loaded = standin_metrics()
    with torch.inference_mode():
        assert loaded.load_reference(key) is True
    loaded.update_real(REAL[:1])  # in-place on inference-mode real states must work
    loaded.reset_real()


def test_autocast_does_not_change_the_protocol(standin_metrics) -> None:
    expected = _filled(standin_metrics()).compute()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = _filled(standin_metrics()).compute()
    assert scores == expected
