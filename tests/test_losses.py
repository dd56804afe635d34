"""Adversarial loss objects against hand-computed values and against the functions they replaced
(bitwise); the gradient penalty against a closed form."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from giugan.losses import (
    LOSS_CLASSES,
    AdversarialLoss,
    HingeLoss,
    LeastSquaresLoss,
    NonSaturatingLoss,
    RelativisticAverageLoss,
    WassersteinLoss,
    gradient_penalty,
)

REAL = torch.tensor([1.0, 2.0])
FAKE = torch.tensor([-1.0, 0.5])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


@pytest.mark.parametrize(
    ("loss", "d_value", "g_value"),
    [
        (WassersteinLoss(), (-1 + 0.5) / 2 - 1.5, 0.25),  # loss_g = -mean(D(G(z))) = -(-0.25)
        (HingeLoss(), 0.0 + (0.0 + 1.5) / 2, 0.25),
        (LeastSquaresLoss(), 0.5 * ((0 + 1) / 2 + (1 + 0.25) / 2), (4 + 0.25) / 2),
        (
            NonSaturatingLoss(),
            (softplus(-1) + softplus(-2)) / 2 + (softplus(-1) + softplus(0.5)) / 2,
            (softplus(1) + softplus(-0.5)) / 2,
        ),
        (
            # mean real 1.5, mean fake -0.25: D = E[sp(-(r + 0.25))] + E[sp(f - 1.5)],
            # G = E[sp(-(f - 1.5))] + E[sp(r + 0.25)]
            RelativisticAverageLoss(),
            (softplus(-1.25) + softplus(-2.25)) / 2 + (softplus(-2.5) + softplus(-1.0)) / 2,
            (softplus(2.5) + softplus(1.0)) / 2 + (softplus(1.25) + softplus(2.25)) / 2,
        ),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, AdversarialLoss) else "",
)
def test_losses_match_hand_computed_values(loss: AdversarialLoss, d_value: float, g_value: float) -> None:
    assert loss.critic_loss(REAL, FAKE).item() == pytest.approx(d_value, rel=1e-6)
    real = REAL if loss.needs_real_scores_for_generator else None
    assert loss.generator_loss(FAKE, real).item() == pytest.approx(g_value, rel=1e-6)


# The objectives as plain functions, copied from giugan/losses.py before the loss objects: every
# table row's loss must stay the same bits.
def _ns_d(real: Tensor, fake: Tensor) -> Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def _ns_g(fake: Tensor) -> Tensor:
    return F.softplus(-fake).mean()


def _ls_d(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * (((real - 1.0) ** 2).mean() + (fake**2).mean())


def _ls_g(fake: Tensor) -> Tensor:
    return ((fake - 1.0) ** 2).mean()


def _w_d(real: Tensor, fake: Tensor) -> Tensor:
    return fake.mean() - real.mean()


def _w_g(fake: Tensor) -> Tensor:
    return -fake.mean()


def _hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


OLD_FUNCTIONS = {
    "non_saturating": (_ns_d, _ns_g),
    "least_squares": (_ls_d, _ls_g),
    "wasserstein": (_w_d, _w_g),
    "hinge": (_hinge_d, _w_g),
}


def _losses_and_score_gradients(
    critic: Callable[[Tensor, Tensor], Tensor], generator: Callable[[Tensor], Tensor]
) -> list[Tensor]:
    torch.manual_seed(3)
    real, fake = torch.randn(64, requires_grad=True), torch.randn(64, requires_grad=True)
    loss_d, loss_g = critic(real, fake), generator(fake)
    grads_d = torch.autograd.grad(loss_d, (real, fake))
    (grad_g,) = torch.autograd.grad(loss_g, fake)
    return [loss_d, loss_g, *grads_d, grad_g]


@pytest.mark.parametrize("name", sorted(OLD_FUNCTIONS))
def test_loss_objects_give_the_same_bits_as_the_functions_they_replaced(name: str) -> None:
    loss = LOSS_CLASSES[name]()
    old = _losses_and_score_gradients(*OLD_FUNCTIONS[name])
    new = _losses_and_score_gradients(loss.critic_loss, lambda fake: loss.generator_loss(fake))
    for before, after in zip(old, new):
        assert torch.equal(before, after)


@pytest.mark.parametrize("loss", [WassersteinLoss(), HingeLoss(gp_weight=5.0)], ids=repr)
def test_the_critic_loss_with_its_penalty_gives_the_same_bits_as_before(loss: AdversarialLoss) -> None:
    """The step's ``loss_d + lambda * GP`` (lambda a Python float) and D's gradients, bit for bit."""
    torch.manual_seed(4)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(48, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
    real, fake, alpha = torch.randn(6, 3, 4, 4), torch.randn(6, 3, 4, 4), torch.rand(6, 1, 1, 1)
    old_d = OLD_FUNCTIONS[loss.name][0]
    results = []
    for total in (
        lambda: old_d(critic(real), critic(fake)) + loss.gp_weight * gradient_penalty(critic, real, fake, alpha),
        lambda: loss.critic_loss(critic(real), critic(fake)) + loss.weighted(loss.penalty(critic, real, fake, alpha)),
    ):
        value = total()
        results.append([value, *torch.autograd.grad(value, list(critic.parameters()))])
    assert loss.penalty_in_critic_step and not loss.penalty_in_own_step
    for before, after in zip(*results):
        assert torch.equal(before, after)


def test_penalty_defaults_follow_the_papers() -> None:
    """WGAN-GP carries lambda 10 (GIU-GANs eq. 14); the others no penalty unless given one."""
    assert (WassersteinLoss().gp_weight, WassersteinLoss().gp_mode) == (10.0, "same_step")
    for cls in (HingeLoss, LeastSquaresLoss, NonSaturatingLoss, RelativisticAverageLoss):
        loss = cls()
        assert loss.gp_weight == 0.0 and not loss.penalty_in_critic_step and not loss.penalty_in_own_step
    separate = WassersteinLoss(gp_mode="separate_step")
    assert separate.penalty_in_own_step and not separate.penalty_in_critic_step
    assert repr(separate) == "WassersteinLoss(gp_weight=10, gp_mode='separate_step')"
    assert separate == WassersteinLoss(10.0, "separate_step") != HingeLoss(10.0, "separate_step")


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"gp_weight": -1.0}, "gp_weight=-1.0"), ({"gp_weight": math.nan}, "gp_weight=nan"),
     ({"gp_mode": "both"}, "gp_mode='both'")],
)
def test_invalid_penalty_settings_name_the_key(kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match="model.loss.init_args") as info:
        HingeLoss(**kwargs)
    assert str(info.value).startswith(f"HingeLoss: {named} is not allowed")


def test_the_relativistic_generator_loss_needs_the_real_scores() -> None:
    loss = RelativisticAverageLoss()
    assert loss.needs_real_scores_for_generator
    assert not any(cls.needs_real_scores_for_generator for cls in (WassersteinLoss, HingeLoss))
    with pytest.raises(ValueError, match="real_scores"):
        loss.generator_loss(FAKE)
    # The generator's objective pulls fakes above the average real: its gradient is negative.
    fake = FAKE.clone().requires_grad_(True)
    loss.generator_loss(fake, REAL).backward()
    assert (fake.grad < 0).all()

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
