"""Adversarial losses against hand-computed values; the gradient penalty against a closed form."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from giugan.losses import LOSSES, get_loss, gradient_penalty

REAL = torch.tensor([1.0, 2.0])
FAKE = torch.tensor([-1.0, 0.5])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


@pytest.mark.parametrize(
    ("name", "d_value", "g_value"),
    [
        ("wasserstein", (-1 + 0.5) / 2 - 1.5, 0.25),  # loss_g = -mean(D(G(z))) = -(-0.25)
        ("hinge", 0.0 + (0.0 + 1.5) / 2, 0.25),
        ("least_squares", 0.5 * ((0 + 1) / 2 + (1 + 0.25) / 2), (4 + 0.25) / 2),
        (
            "non_saturating",
            (softplus(-1) + softplus(-2)) / 2 + (softplus(-1) + softplus(0.5)) / 2,
            (softplus(1) + softplus(-0.5)) / 2,
        ),
    ],
)
def test_losses_match_hand_computed_values(name: str, d_value: float, g_value: float) -> None:
    loss = get_loss(name)
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(d_value, rel=1e-6)
    assert loss.generator(FAKE).item() == pytest.approx(g_value, rel=1e-6)


def test_unknown_loss_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="hinge") as info:
        get_loss("wgan")
    assert "'wgan'" in str(info.value)
    assert set(LOSSES) == {"non_saturating", "least_squares", "wasserstein", "hinge"}


class LinearCritic(nn.Module):
    """D(x) = <w, x> + b: its input gradient is w everywhere, so GP = (||w|| - 1)^2."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone())
        self.bias = nn.Parameter(torch.tensor(0.3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) * self.weight.flatten()).sum(1) + self.bias


@pytest.mark.parametrize("norm", [0.5, 1.0, 3.0])
def test_gradient_penalty_equals_closed_form_for_a_linear_critic(norm: float) -> None:
    weight = torch.randn(3, 4, 4)
    weight = weight / weight.norm() * norm
    critic = LinearCritic(weight)
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    penalty = gradient_penalty(critic, real, fake)
    assert penalty.item() == pytest.approx((norm - 1.0) ** 2, abs=1e-5)


def test_gradient_penalty_is_independent_of_grad_scale_and_trains_the_critic() -> None:
    weight = torch.randn(3, 4, 4)
    weight = weight / weight.norm() * 2.0
    critic = LinearCritic(weight)
    real, fake = torch.randn(4, 3, 4, 4), torch.randn(4, 3, 4, 4)
    alpha = torch.rand(4, 1, 1, 1)
    unscaled = gradient_penalty(critic, real, fake, alpha)
    scaled = gradient_penalty(critic, real, fake, alpha, grad_scale=1024.0)
    assert scaled.item() == pytest.approx(unscaled.item(), rel=1e-6)
    scaled.backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    expected = 2 * (2.0 - 1.0) * critic.weight.detach() / 2.0
    torch.testing.assert_close(critic.weight.grad, expected, rtol=1e-5, atol=1e-6)


def test_gradient_penalty_interpolates_per_sample() -> None:
    seen: list[torch.Tensor] = []

    def critic(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.detach())
        return x.flatten(1).sum(1)

    real, fake = torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)
    alpha = torch.tensor([0.25, 0.75]).view(2, 1, 1, 1)
    gradient_penalty(critic, real, fake, alpha)
    torch.testing.assert_close(seen[0][:, 0, 0, 0], torch.tensor([0.25, 0.75]))


def test_gradient_penalty_rejects_mismatched_batches() -> None:
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(lambda x: x.sum((1, 2, 3)), torch.zeros(2, 3, 4, 4), torch.zeros(3, 3, 4, 4))
