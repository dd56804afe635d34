"""SAGAN self-attention as in heykeetae/Self-Attention-GAN (docs/operators.md, "Self-attention")."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from giugan.ops import SelfAttention

pytestmark = pytest.mark.usefixtures("single_thread")

def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_gamma_zero_at_init_makes_identity() -> None:
    attention = SelfAttention(16)
    assert attention.gamma.shape == (1,) and attention.gamma.item() == 0.0
    x = torch.randn(2, 16, 5, 4)
    assert torch.equal(attention(x), x)
    y, a = attention.attend(x)
    assert torch.equal(y, x)
    assert a.shape == (2, 20, 20)


def test_attention_rows_are_probability_distributions() -> None:
    attention = SelfAttention(16)
    _, a = attention.attend(3 * torch.randn(3, 16, 4, 6))
    assert a.shape == (3, 24, 24)
    assert torch.all(a >= 0)
    torch.testing.assert_close(a.sum(dim=-1), torch.ones(3, 24))


def test_matches_formula() -> None:
    """E = Q^T K, A = softmax over keys, O_i = sum_j A_ij V_j, Y = gamma O + X."""
    attention = SelfAttention(16)
    with torch.no_grad():
        attention.gamma.fill_(0.7)
    x = torch.randn(2, 16, 3, 4)
    b, c, n = 2, 16, 12
    flat = x.view(b, c, n)

    def conv(layer, t):
        return torch.einsum("oc,bcn->bon", layer.weight[:, :, 0, 0], t) + layer.bias[None, :, None]

    q, k, v = conv(attention.query, flat), conv(attention.key, flat), conv(attention.value, flat)
    energy = torch.einsum("bci,bcj->bij", q, k)
    a = torch.softmax(energy, dim=-1)
    out = torch.einsum("bij,bcj->bci", a, v)
    expected = (0.7 * out + flat).view_as(x)
    y, got_a = attention.attend(x)
    torch.testing.assert_close(got_a, a, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(attention(x), y)


def test_output_minus_residual_is_convex_combination_of_inputs() -> None:
    attention = SelfAttention(16)
    with torch.no_grad():
        attention.gamma.fill_(1.0)
        attention.value.weight.copy_(torch.eye(16)[:, :, None, None])
        attention.value.bias.zero_()
        # Sharpen the attention so the test is not trivially satisfied by near-uniform weights.
        attention.query.weight.mul_(4)
        attention.key.weight.mul_(4)
    x = torch.randn(2, 16, 5, 5)
    y, a = attention.attend(x)
    mixed = (y - x).flatten(2)  # (B, C, N): sum_j A_ij x_j
    lo = x.flatten(2).amin(dim=2, keepdim=True)
    hi = x.flatten(2).amax(dim=2, keepdim=True)
    tol = 1e-5
    assert torch.all(mixed >= lo - tol) and torch.all(mixed <= hi + tol)
    torch.testing.assert_close(mixed, torch.bmm(x.flatten(2), a.transpose(1, 2)))
    assert a.max() > 0.2  # attention is not uniform (1/25)


def test_layout_has_biases_and_no_spectral_norm() -> None:
    attention = SelfAttention(64)
    assert attention.query.out_channels == attention.key.out_channels == 8
    assert attention.value.out_channels == 64
    for layer in (attention.query, attention.key, attention.value):
        assert layer.kernel_size == (1, 1) and layer.bias is not None
        assert not torch.nn.utils.parametrize.is_parametrized(layer)


@pytest.mark.parametrize(
    ("channels", "expected"), [(64, 5_201), (128, 20_641), (256, 82_241), (512, 328_321)]
)
def test_parameter_counts(channels: int, expected: int) -> None:
    assert count_params(SelfAttention(channels)) == expected
    c = channels
    assert expected == 2 * (c * c // 8 + c // 8) + c * c + c + 1


def test_gamma_receives_gradient_at_init() -> None:
    attention = SelfAttention(8)
    attention(torch.randn(2, 8, 3, 3)).pow(2).sum().backward()
    assert attention.gamma.grad is not None and attention.gamma.grad.abs().item() > 0


@pytest.mark.parametrize(("channels", "needle"), [(12, "channels=12"), (0, "channels=0")])
def test_bad_channels(channels: int, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        SelfAttention(channels)
