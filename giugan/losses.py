"""Adversarial objectives as loss objects, each owning its gradient penalty (pure torch).

A loss object gives the critic's and the generator's terms on raw discriminator scores (B,) and
carries the WGAN-GP penalty's weight and mode; ``giugan.training.steps`` calls it and knows no
loss by name. A new objective is one subclass (docs/configs.md, "Losses"). Conventions follow
the papers' code:

* :class:`NonSaturatingLoss`: Goodfellow et al. / DCGAN, on logits (BCE-with-logits, stable).
* :class:`LeastSquaresLoss`: ``eriklindernoren/PyTorch-GAN`` LSGAN:
  ``D = 0.5*(MSE(D(x),1) + MSE(D(G(z)),0))``, ``G = MSE(D(G(z)), 1)``.
* :class:`WassersteinLoss`: GIU-GANs eq. 14: ``D = E[D(G(z))] - E[D(x)] + lambda*GP``,
  ``G = -E[D(G(z))]``, lambda 10 by default.
* :class:`HingeLoss`: Miyato et al. / SAGAN: ``D = E[relu(1-D(x))] + E[relu(1+D(G(z)))]``,
  ``G = -E[D(G(z))]``.
* :class:`RelativisticAverageLoss`: Jolicoeur-Martineau (ICLR 2019) RaSGAN, which needs D(x) in
  the generator step too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from giugan.validation import check_choice, check_number

GPMode = Literal["same_step", "separate_step"]
GP_MODES = ("same_step", "separate_step")


class AdversarialLoss(ABC):
    """A critic objective, a generator objective and the WGAN-GP penalty they may carry.

    Args:
        gp_weight: lambda of the gradient penalty (GIU-GANs eq. 14: 10); 0 disables it.
        gp_mode: ``same_step`` adds lambda*GP to the critic loss (Gulrajani et al., GIU-GANs
            Algorithm 2); ``separate_step`` takes its own optimiser step on lambda*GP after the
            critic step, as the iGAN / heykeetae code does.
    """

    #: A short name; for the first four, the name configs used before loss objects
    #: (``model.loss: wasserstein``).
    name: ClassVar[str] = ""
    #: Whether :meth:`generator_loss` needs the discriminator's scores of a real batch.
    needs_real_scores_for_generator: ClassVar[bool] = False
    #: Whether ``E[D(x)] - E[D(G(z))]`` estimates a distance worth logging (as ``wasserstein``).
    logs_wasserstein_estimate: ClassVar[bool] = False

    def __init__(self, gp_weight: float = 0.0, gp_mode: GPMode = "same_step") -> None:
        owner = type(self).__name__
        check_number("gp_weight", gp_weight, minimum=0, owner=owner,
                     hint="Set model.loss.init_args.gp_weight (WGAN-GP uses 10; 0 disables the "
                          "penalty).")
        check_choice("gp_mode", gp_mode, GP_MODES, owner=owner,
                     hint="Set model.loss.init_args.gp_mode.")
        self.gp_weight = float(gp_weight)
        self.gp_mode = gp_mode

    @abstractmethod
    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        """The critic's objective without the penalty."""

    @abstractmethod
    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        """The generator's objective; ``real_scores`` only when :attr:`needs_real_scores_for_generator`."""

    @property
    def penalty_in_critic_step(self) -> bool:
        """lambda*GP is added to the critic loss (one backward, one optimiser step)."""
        return self.gp_weight > 0 and self.gp_mode == "same_step"

    @property
    def penalty_in_own_step(self) -> bool:
        """lambda*GP takes its own optimiser step after the critic step."""
        return self.gp_weight > 0 and self.gp_mode == "separate_step"

    def penalty(
        self,
        discriminator: Callable[[Tensor], Tensor],
        real: Tensor,
        fake: Tensor,
        alpha: Tensor,
        grad_scale: float = 1.0,
    ) -> Tensor:
        """The unweighted penalty ``E[(||grad D(x_hat)|| - 1)^2]`` (see :func:`gradient_penalty`)."""
        return gradient_penalty(discriminator, real, fake, alpha, grad_scale)

    def weighted(self, penalty: Tensor) -> Tensor:
        """``lambda * penalty``."""
        return self.gp_weight * penalty

    def __repr__(self) -> str:
        return f"{type(self).__name__}(gp_weight={self.gp_weight:g}, gp_mode={self.gp_mode!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items()))))


class NonSaturatingLoss(AdversarialLoss):
    """Goodfellow et al.'s non-saturating loss on logits, as DCGAN trains (no penalty by default)."""

    name = "non_saturating"

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        return F.softplus(-fake_scores).mean()


class LeastSquaresLoss(AdversarialLoss):
    """LSGAN with targets 1 (real) and 0 (fake), as ``lsgan.py`` trains (no penalty by default)."""

    name = "least_squares"

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return 0.5 * (((real_scores - 1.0) ** 2).mean() + (fake_scores**2).mean())

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        return ((fake_scores - 1.0) ** 2).mean()


class WassersteinLoss(AdversarialLoss):
    """WGAN-GP (GIU-GANs eq. 14, Gulrajani et al.): the penalty's lambda is 10 unless set."""

    name = "wasserstein"
    logs_wasserstein_estimate = True

    def __init__(self, gp_weight: float = 10.0, gp_mode: GPMode = "same_step") -> None:
        super().__init__(gp_weight, gp_mode)

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return fake_scores.mean() - real_scores.mean()

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        return -fake_scores.mean()


class HingeLoss(AdversarialLoss):
    """The hinge loss of Miyato et al. (SNGAN) and Zhang et al. (SAGAN); no penalty by default."""

    name = "hinge"
    logs_wasserstein_estimate = True

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        return -fake_scores.mean()


class RelativisticAverageLoss(AdversarialLoss):
    """RaSGAN (Jolicoeur-Martineau, "The relativistic discriminator", ICLR 2019, section 4.2).

    With ``C`` the critic's raw score, real data should look more real than the average fake and
    fake data less real than the average real:
    ``D = E_x[softplus(-(C(x) - E C(G(z))))] + E_z[softplus(C(G(z)) - E C(x))]``; the generator
    swaps the roles, so it needs ``C(x)`` as well:
    ``G = E_z[softplus(-(C(G(z)) - E C(x)))] + E_x[softplus(C(x) - E C(G(z)))]``.
    No penalty by default.
    """

    name = "relativistic_average"
    needs_real_scores_for_generator = True

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return _relativistic(real_scores, fake_scores)

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor | None = None) -> Tensor:
        if real_scores is None:
            raise ValueError(
                "RelativisticAverageLoss.generator_loss needs the critic's scores of a real batch "
                "(real_scores); the generator step passes them when the loss asks for them."
            )
        return _relativistic(fake_scores, real_scores)


def _relativistic(favoured: Tensor, other: Tensor) -> Tensor:
    """``E[softplus(-(favoured - E other))] + E[softplus(other - E favoured)]``."""
    return F.softplus(-(favoured - other.mean())).mean() + F.softplus(other - favoured.mean()).mean()


#: The loss classes giugan ships, by short name.
LOSS_CLASSES: dict[str, type[AdversarialLoss]] = {
    cls.name: cls
    for cls in (NonSaturatingLoss, LeastSquaresLoss, WassersteinLoss, HingeLoss, RelativisticAverageLoss)
}


def interpolate(real: Tensor, fake: Tensor, alpha: Tensor) -> Tensor:
    """``alpha * real + (1 - alpha) * fake`` with one alpha per sample (WGAN-GP Algorithm 1)."""
    return alpha * real + (1.0 - alpha) * fake


def gradient_penalty(
    discriminator: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    alpha: Tensor | None = None,
    grad_scale: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP penalty ``E[(||grad_x D(x_hat)||_2 - 1)^2]`` (GIU-GANs eq. 14, Gulrajani et al.).

    The gradient is taken with ``torch.autograd.grad(create_graph=True)`` so that one ordinary
    backward of the returned scalar trains D (DDP-safe). The norm is over the whole flattened image.

    Args:
        discriminator: maps images (B, C, H, W) to scores (B,).
        real, fake: image batches of equal shape; ``fake`` should be detached from G.
        alpha: per-sample mixing weights (B, 1, 1, 1); drawn from U[0, 1) when None.
        grad_scale: loss scale of a mixed-precision grad scaler (fp16). The scores are multiplied by it
            before differentiation and the gradients divided by it after, so fp16 gradients do not
            underflow and the penalty is computed on unscaled gradients.
        generator: random generator for ``alpha`` (per-rank reproducible noise).
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} batches must "
            f"have the same shape."
        )
    if alpha is None:
        alpha = torch.rand(
            real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype, generator=generator
        )
    # Mixed precision (e.g. bf16-mixed autocast): the interpolation, the gradient's norm and the
    # penalty are computed in float32; only D's own layers run in the autocast dtype. In float32
    # every cast below is a no-op.
    x_hat = interpolate(real.detach().float(), fake.detach().float(), alpha.float()).requires_grad_(True)
    scores = discriminator(x_hat)
    (grad,) = torch.autograd.grad(
        outputs=scores.float().sum() * grad_scale, inputs=x_hat, create_graph=True
    )
    grad = grad.float() / grad_scale
    norms = grad.flatten(1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()
