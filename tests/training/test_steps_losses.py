"""The step functions call the loss object: its terms, its penalty and, when it asks, D(real) in
the generator step (giugan/training/steps.py)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from giugan.losses import AdversarialLoss, HingeLoss, RelativisticAverageLoss, WassersteinLoss
from giugan.nets import Generator
from giugan.training.steps import (
    StepBackend,
    StepSettings,
    critic_step,
    generator_iteration,
    generator_step,
)

pytestmark = pytest.mark.usefixtures("single_thread")


class CountingCritic(nn.Module):
    """A linear critic on 32x32 images that counts its forward passes and their batches."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.linear = nn.Linear(3 * 32 * 32, 1)
        self.inputs: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        self.inputs.append(x.detach().clone())
        return self.linear(x.flatten(1)).flatten()


class RecordingRealAwareLoss(WassersteinLoss):
    """A loss asking for D(real) in the generator step that keeps the scores it was handed."""

    needs_real_scores_for_generator = True

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        assert real_scores is not None
        self.seen = (fake_scores.detach().clone(), real_scores.detach().clone())
        return real_scores.mean() - fake_scores.mean()


def _networks() -> tuple[nn.Module, CountingCritic, torch.optim.Optimizer, torch.optim.Optimizer]:
    torch.manual_seed(0)
    generator = Generator(32, z_dim=8, conv_dim=4)
    critic = CountingCritic()
    return (generator, critic, torch.optim.Adam(generator.parameters(), 1e-3),
            torch.optim.Adam(critic.parameters(), 1e-3))


def test_a_loss_asking_for_real_scores_gets_d_of_the_real_batch_in_the_generator_step() -> None:
    generator, critic, opt_g, _ = _networks()
    loss = RecordingRealAwareLoss()
    real = torch.rand(4, 3, 32, 32) * 2 - 1
    stats = generator_step(generator, critic, opt_g, real, torch.Generator().manual_seed(0),
                           StepSettings(loss=loss), StepBackend.plain(generator, critic))
    assert len(critic.inputs) == 2 and torch.equal(critic.inputs[1], real)  # fakes, then the reals
    fake_scores, real_scores = loss.seen
    with torch.no_grad():
        assert torch.equal(real_scores, critic(real))
    assert stats["loss_g"] == loss.generator_loss(fake_scores, real_scores)
    assert all(p.grad is None for p in critic.parameters())  # D is frozen in G's step


def test_other_losses_never_run_d_on_the_real_batch_in_the_generator_step() -> None:
    generator, critic, opt_g, _ = _networks()
    real = torch.rand(4, 3, 32, 32)
    generator_step(generator, critic, opt_g, real, torch.Generator().manual_seed(0),
                   StepSettings(loss=WassersteinLoss()), StepBackend.plain(generator, critic))
    assert len(critic.inputs) == 1 and critic.inputs[0].shape == real.shape


@pytest.mark.parametrize(
    ("loss", "critic_passes", "penalty_logged"),
    [(WassersteinLoss(), 3, True), (WassersteinLoss(gp_mode="separate_step"), 3, True),
     (HingeLoss(), 2, False), (WassersteinLoss(gp_weight=0.0), 2, False)],
    ids=repr,
)
def test_the_critic_step_takes_the_penalty_the_loss_carries(
    loss: AdversarialLoss, critic_passes: int, penalty_logged: bool
) -> None:
    generator, critic, _, opt_d = _networks()
    stats = critic_step(generator, critic, opt_d, torch.rand(4, 3, 32, 32), torch.Generator().manual_seed(0),
                        StepSettings(loss=loss), StepBackend.plain(generator, critic))
    assert len(critic.inputs) == critic_passes  # D(real), D(fake) and, with a penalty, D(x_hat)
    assert (stats["gp"].item() > 0) == penalty_logged
    assert ("wasserstein" in stats) == loss.logs_wasserstein_estimate


def test_a_relativistic_iteration_trains_both_networks() -> None:
    generator, critic, opt_g, opt_d = _networks()
    before = [p.detach().clone() for p in (*generator.parameters(), *critic.parameters())]
    stats = generator_iteration(generator, critic, (opt_g, opt_d), torch.rand(8, 3, 32, 32), 2,
                                torch.Generator().manual_seed(0), StepSettings(loss=RelativisticAverageLoss()),
                                StepBackend.plain(generator, critic))
    after = [*generator.parameters(), *critic.parameters()]
    assert all(not torch.equal(a, b) for a, b in zip(before, after))
    assert torch.isfinite(stats["loss_g"]) and torch.isfinite(stats["loss_d"]) and "wasserstein" not in stats
