"""Adversarial objectives and the WGAN-GP gradient penalty (pure torch).

Each loss maps discriminator scores (B,) to scalars. Conventions follow the papers' code:
* ``non_saturating``: Goodfellow et al. / DCGAN, on logits (BCE-with-logits, numerically stable).
* ``least_squares``: ``eriklindernoren/PyTorch-GAN`` LSGAN: ``D = 0.5*(MSE(D(x),1) + MSE(D(G(z)),0))``,
  ``G = MSE(D(G(z)), 1)``.
* ``wasserstein``: GIU-GANs eq. 14 without the penalty term: ``D = E[D(G(z))] - E[D(x)]``,
  ``G = -E[D(G(z))]``.
* ``hinge``: Miyato et al. / SAGAN: ``D = E[relu(1-D(x))] + E[relu(1+D(G(z)))]``, ``G = -E[D(G(z))]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

LossName = Literal["non_saturating", "least_squares", "wasserstein", "hinge"]


@dataclass(frozen=True)
class AdversarialLoss:
    """A pair of discriminator and generator objectives on raw discriminator scores."""

    name: str
    discriminator: Callable[[Tensor, Tensor], Tensor]
    generator: Callable[[Tensor], Tensor]
    wasserstein_estimate: bool = False


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


LOSSES: dict[str, AdversarialLoss] = {
    "non_saturating": AdversarialLoss("non_saturating", _ns_d, _ns_g),
    "least_squares": AdversarialLoss("least_squares", _ls_d, _ls_g),
    "wasserstein": AdversarialLoss("wasserstein", _w_d, _w_g, wasserstein_estimate=True),
    "hinge": AdversarialLoss("hinge", _hinge_d, _w_g, wasserstein_estimate=True),
}


def get_loss(name: str) -> AdversarialLoss:
    """Look up a loss by name; ``ValueError`` naming the allowed names otherwise."""
    if name not in LOSSES:
        raise ValueError(
            f"loss={name!r} is not a known adversarial loss; use one of {sorted(LOSSES)} "
            f"(model.init_args.loss)."
        )
    return LOSSES[name]


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
