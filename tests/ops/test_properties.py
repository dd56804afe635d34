"""Property tests: random valid configurations keep shape and dtype and stay finite."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from giugan.ops import (
    GIU,
    IGANInvolution2d,
    Involution2d,
    RepresentativeBatchNorm2d,
    SelfAttention,
)

pytestmark = pytest.mark.usefixtures("single_thread")

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True)

dtypes = st.sampled_from([torch.float32, torch.float64])
kernel_sizes = st.sampled_from([1, 3, 5, 7])


def divisor_of(n: int) -> st.SearchStrategy[int]:
    return st.sampled_from([d for d in range(1, n + 1) if n % d == 0])


@st.composite
def feature_maps(draw, channels: int) -> tuple[torch.Tensor, torch.dtype]:
    """Finite inputs (B, C, H, W) with at least two values per channel (BN in train mode)."""
    dtype = draw(dtypes)
    batch = draw(st.integers(1, 3))
    height = draw(st.integers(1, 6))
    width = draw(st.integers(2 if batch == 1 and height == 1 else 1, 6))
    seed = draw(st.integers(0, 2**16))
    scale = draw(st.sampled_from([1e-3, 1.0, 100.0]))
    generator = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(batch, channels, height, width, generator=generator, dtype=dtype)
    return x, dtype


def check(module: torch.nn.Module, x: torch.Tensor, dtype: torch.dtype, expected_shape) -> None:
    module = module.to(dtype)
    y = module(x)
    assert y.shape == expected_shape
    assert y.dtype == dtype
    assert torch.isfinite(y).all()


@SETTINGS
@given(data=st.data(), group_channels=st.sampled_from([1, 2, 4, 8]), groups=st.integers(1, 4),
       kernel_size=kernel_sizes, training=st.booleans())
def test_involution2d(data, group_channels, groups, kernel_size, training) -> None:
    channels = group_channels * groups
    r = data.draw(divisor_of(channels), label="reduction_ratio")
    x, dtype = data.draw(feature_maps(channels), label="x")
    module = Involution2d(channels, kernel_size, 1, group_channels, r).train(training)
    check(module, x, dtype, x.shape)


@SETTINGS
@given(data=st.data(), groups=st.integers(1, 4), per_group=st.sampled_from([1, 4, 8]),
       kernel_size=kernel_sizes, training=st.booleans())
def test_igan_involution2d(data, groups, per_group, kernel_size, training) -> None:
    channels = groups * per_group
    r = data.draw(divisor_of(channels), label="reduction_ratio")
    x, dtype = data.draw(feature_maps(channels), label="x")
    module = IGANInvolution2d(channels, kernel_size, groups, r).train(training)
    check(module, x, dtype, x.shape)


@SETTINGS
@given(data=st.data(), group_channels=st.sampled_from([2, 4, 8]), groups=st.integers(1, 4),
       kernel_size=kernel_sizes, aggregate_from=st.sampled_from(["input", "recalibrated"]),
       se_bias=st.booleans(), training=st.booleans())
def test_giu(data, group_channels, groups, kernel_size, aggregate_from, se_bias, training) -> None:
    channels = group_channels * groups
    r1 = data.draw(divisor_of(channels), label="reduction_ratio")
    r2 = data.draw(divisor_of(channels), label="se_reduction")
    x, dtype = data.draw(feature_maps(channels), label="x")
    module = GIU(channels, kernel_size, group_channels, r1, r2, se_bias, aggregate_from)
    check(module.train(training), x, dtype, x.shape)


@SETTINGS
@given(data=st.data(), channels=st.integers(1, 12), training=st.booleans(),
       momentum=st.sampled_from([0.1, 0.5, None]), affine=st.booleans())
def test_representative_batch_norm(data, channels, training, momentum, affine) -> None:
    x, dtype = data.draw(feature_maps(channels), label="x")
    if training and x.shape[0] < 2:
        x = torch.cat([x, -x + 1], dim=0)  # B >= 2 in train mode
    module = RepresentativeBatchNorm2d(channels, momentum=momentum, affine=affine)
    check(module.train(training), x, dtype, x.shape)
    assert torch.isfinite(module.running_mean).all() and torch.isfinite(module.running_var).all()


@SETTINGS
@given(data=st.data(), eighths=st.integers(1, 4), gamma=st.sampled_from([0.0, 0.5, 3.0]))
def test_self_attention(data, eighths, gamma) -> None:
    channels = 8 * eighths
    x, dtype = data.draw(feature_maps(channels), label="x")
    module = SelfAttention(channels)
    with torch.no_grad():
        module.gamma.fill_(gamma)
    check(module, x, dtype, x.shape)
    _, a = module.to(dtype).attend(x)
    n = x.shape[2] * x.shape[3]
    assert a.shape == (x.shape[0], n, n)
    torch.testing.assert_close(a.sum(-1), torch.ones(x.shape[0], n, dtype=dtype))
