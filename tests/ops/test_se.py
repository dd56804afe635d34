"""Squeeze-and-excitation (docs/operators.md): gate range and shape, GAP dependence, counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from giugan.ops import SqueezeExcitation

pytestmark = pytest.mark.usefixtures("single_thread")

def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_gate_shape_and_open_interval() -> None:
    se = SqueezeExcitation(64, reduction=16)
    x = 5 * torch.randn(3, 64, 6, 5)
    s = se.gate(x)
    assert s.shape == (3, 64)
    assert torch.all(s > 0) and torch.all(s < 1)


def test_forward_is_channelwise_gate_times_input() -> None:
    se = SqueezeExcitation(32, reduction=4)
    x = torch.randn(2, 32, 5, 5)
    y = se(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y, x * se.gate(x)[:, :, None, None])


def test_gate_matches_formula() -> None:
    """s = sigmoid(W_up ReLU(W_down GAP(X)) ) with biases (GIU-GANs eq. 8)."""
    se = SqueezeExcitation(32, reduction=8)
    x = torch.randn(2, 32, 4, 6)
    z = x.mean(dim=(2, 3))
    hidden = torch.relu(z @ se.down.weight.T + se.down.bias)
    expected = torch.sigmoid(hidden @ se.up.weight.T + se.up.bias)
    torch.testing.assert_close(se.gate(x), expected)


def test_gate_depends_only_on_channel_means() -> None:
    se = SqueezeExcitation(16, reduction=4)
    x = torch.randn(2, 16, 4, 4)
    # Same per-channel means, different spatial layout -> same gate.
    permuted = x.flatten(2)[..., torch.randperm(16)].view_as(x)
    torch.testing.assert_close(se.gate(x), se.gate(permuted))
    # A different mean in one channel changes the gate.
    shifted = x.clone()
    shifted[:, 3] += 2.0
    assert not torch.allclose(se.gate(x), se.gate(shifted))


def test_samples_are_gated_independently() -> None:
    se = SqueezeExcitation(16, reduction=4)
    x = torch.randn(4, 16, 3, 3)
    torch.testing.assert_close(se.gate(x)[1:2], se.gate(x[1:2]))


@pytest.mark.parametrize(("bias", "expected"), [(True, 8_464), (False, 8_192)])
def test_parameter_count_c256(bias: bool, expected: int) -> None:
    se = SqueezeExcitation(256, reduction=16, bias=bias)
    assert count_params(se) == expected
    assert (se.down.bias is None) == (not bias) and (se.up.bias is None) == (not bias)


@pytest.mark.parametrize(
    ("factory", "needles"),
    [
        (lambda: SqueezeExcitation(20, reduction=16), ["channels=20", "reduction=16"]),
        (lambda: SqueezeExcitation(0), ["channels=0"]),
        (lambda: SqueezeExcitation(64, reduction=0), ["reduction=0"]),
        (lambda: SqueezeExcitation(64, reduction=-4), ["reduction=-4"]),
    ],
)
def test_bad_arguments(factory, needles) -> None:
    with pytest.raises(ValueError) as info:
        factory()
    for needle in needles:
        assert needle in str(info.value)
