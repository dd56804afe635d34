"""GenerativeMetrics with the stand-in extractor: values, cache, errors, unavailability."""

from __future__ import annotations

import math
from pathlib import Path

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
)
from giugan.metrics.suite import SUBSET_SEED

from .conftest import FAKE, REAL, filled


# --------------------------------------------------------------------------- values
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
    scores = filled(standin_metrics()).compute()
    assert scores["fid"] == pytest.approx(float(fid.compute()), rel=1e-5)
    torch.manual_seed(SUBSET_SEED)
    is_mean, is_std = inception_score.compute()
    torch.manual_seed(SUBSET_SEED)
    kid_mean, kid_std = kid.compute()
    assert scores["is_mean"] == pytest.approx(float(is_mean), rel=1e-5)
    # torchmetrics' IS std has ddof=1; ours is the population std of the same 4 splits (ddof=0)
    assert scores["is_std"] == pytest.approx(float(is_std) * math.sqrt(3 / 4), rel=1e-4)
    assert scores["kid_mean"] == pytest.approx(float(kid_mean), rel=1e-5)
    assert scores["kid_std"] == pytest.approx(float(kid_std), rel=1e-4)


def test_independent_of_update_batch_size(standin_metrics) -> None:
    by_40 = filled(standin_metrics(), batch=40).compute()
    by_7 = filled(standin_metrics(), batch=7).compute()
    assert by_7.keys() == by_40.keys() == {"fid", "is_mean", "is_std", "kid_mean", "kid_std"}
    for name in by_40:
        assert by_7[name] == pytest.approx(by_40[name], rel=1e-5, abs=1e-7), name


def test_compute_is_reproducible_and_leaves_the_global_rng_alone(standin_metrics) -> None:
    metrics = filled(standin_metrics())
    torch.manual_seed(123)
    first = metrics.compute()
    after = torch.rand(3)
    torch.manual_seed(123)
    torch.rand(3)
    assert metrics.compute() == first
    torch.manual_seed(123)
    assert torch.equal(torch.rand(3), after)


def test_reset_fake_keeps_real_statistics(standin_metrics) -> None:
    metrics = filled(standin_metrics())
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
    metrics = filled(standin_metrics())
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
    expected = filled(standin_metrics()).compute()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = filled(standin_metrics()).compute()
    assert scores == expected


def test_a_suite_whose_weights_cannot_be_had_still_moves_to_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lightning's teardown calls ``.cpu()`` on a suite whose lazy build has just raised: the
    user must see the weights error, not an AttributeError from the half-built suite."""
    from giugan.metrics import suite as suite_module

    def unavailable(*args: object, **kwargs: object) -> None:
        raise InceptionWeightsUnavailable("no weights here")

    monkeypatch.setattr(suite_module, "build_extractors", unavailable)
    metrics = GenerativeMetrics(extractor="inception", weights_path=None)
    with pytest.raises(InceptionWeightsUnavailable):
        _ = metrics.available
    assert metrics.cpu() is metrics  # no AttributeError
    with pytest.raises(InceptionWeightsUnavailable):  # still unbuilt: asked again, the same answer
        _ = metrics.scores
