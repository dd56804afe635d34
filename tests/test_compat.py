"""One test per seam of ``giugan.compat``: each fails loudly when a pinned library changes it."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from giugan import compat
from giugan.metrics.score import PrecomputedFeatures

WIDTH = 4


def _fid(samples: int = 6, repeats: int = 1) -> FrechetInceptionDistance:
    metric = FrechetInceptionDistance(
        feature=PrecomputedFeatures(WIDTH), reset_real_features=False, normalize=False
    )
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(samples, WIDTH, generator=generator)
    fake = torch.randn(samples, WIDTH, generator=generator) + 1
    for _ in range(repeats):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    return metric


def _two_rank_gather(tensor: torch.Tensor, group: object = None) -> list[torch.Tensor]:
    """A stand-in for ``gather_all_tensors``: two ranks holding the same states."""
    return [tensor, tensor.clone()]


# -------------------------------------------------------------------------------- torchmetrics
def test_is_synced_follows_sync_and_unsync() -> None:
    metric = _fid()
    assert compat.is_synced(metric) is False
    metric.sync(dist_sync_fn=_two_rank_gather, distributed_available=lambda: True)
    assert compat.is_synced(metric) is True
    assert int(metric.real_features_num_samples) == 12  # sum-reduced over the two "ranks"
    metric.unsync()
    assert compat.is_synced(metric) is False
    assert int(metric.real_features_num_samples) == 6  # local states restored


def test_forget_computed_drops_the_cached_result() -> None:
    metric = _fid()
    first = metric.compute()
    metric.fake_features_sum = metric.fake_features_sum + 6.0  # assigning a state keeps the cache
    assert torch.equal(metric.compute(), first)
    compat.forget_computed(metric)
    assert not torch.equal(metric.compute(), first)


def test_compute_from_states_bypasses_the_wrapper() -> None:
    metric = _fid()
    assert hasattr(metric.compute, "__wrapped__")  # torchmetrics wraps compute per instance
    expected = metric.compute()
    compat.forget_computed(metric)
    assert torch.equal(compat.compute_from_states(metric), expected)
    # synced by hand: the gathered states are used as they are (not gathered a second time),
    # giving the FID of every sample seen twice
    metric.sync(dist_sync_fn=_two_rank_gather, distributed_available=lambda: True)
    torch.testing.assert_close(compat.compute_from_states(metric), _fid(repeats=2).compute())
    metric.unsync()
    metric.fake_features_sum = metric.fake_features_sum + 6.0
    assert not torch.equal(compat.compute_from_states(metric), expected)  # no cache
    empty = KernelInceptionDistance(feature=PrecomputedFeatures(WIDTH), subset_size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the wrapper's "compute before update" warning
        with pytest.raises((RuntimeError, ValueError)):
            compat.compute_from_states(empty)


def test_set_fid_result_dtype_keeps_the_float64_result() -> None:
    metric = _fid()
    assert metric.compute().dtype == torch.float32  # cast to the features' dtype by default
    compat.set_fid_result_dtype(metric, torch.float64)
    value = compat.compute_from_states(metric)
    assert value.dtype == torch.float64
    torch.testing.assert_close(value.float(), metric.compute())


def test_metric_state_lists_every_state_with_list_states_as_lists() -> None:
    """``Metric.metric_state`` (public) is what ``giugan.metrics.distributed`` walks."""
    assert set(_fid().metric_state) == {
        "real_features_sum", "real_features_cov_sum", "real_features_num_samples",
        "fake_features_sum", "fake_features_cov_sum", "fake_features_num_samples",
    }  # fmt: skip
    kid = KernelInceptionDistance(feature=PrecomputedFeatures(WIDTH), subset_size=2)
    assert kid.metric_state == {"real_features": [], "fake_features": []}


# ------------------------------------------------------------------------------ torch-fidelity
def test_fidelity_inception_extractor_public_interface() -> None:
    """The parts of torch-fidelity's public InceptionV3 the protocol relies on."""
    import torch_fidelity.interpolate_compat_tensorflow as fidelity_resize
    from torch_fidelity.feature_extractor_inceptionv3 import (
        FeatureExtractorInceptionV3,
        interpolate_bilinear_2d_like_tensorflow1x,
    )

    provided = FeatureExtractorInceptionV3.get_provided_features_list()
    assert "2048" in provided and "logits_unbiased" in provided
    assert FeatureExtractorInceptionV3.INPUT_IMAGE_SIZE == 299
    parameters = inspect.signature(FeatureExtractorInceptionV3.__init__).parameters
    assert {"name", "features_list", "feature_extractor_weights_path"} <= set(parameters)
    assert parameters["feature_extractor_internal_dtype"].default is None  # float32
    # its forward resizes with the TF-1.x compatible bilinear resize, nothing else
    assert interpolate_bilinear_2d_like_tensorflow1x is (
        fidelity_resize.interpolate_bilinear_2d_like_tensorflow1x
    )
    source = inspect.getsource(FeatureExtractorInceptionV3.forward)
    assert "interpolate_bilinear_2d_like_tensorflow1x(" in source and "antialias" not in source
