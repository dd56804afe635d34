"""The adversarial step as plain functions: one critic step, one generator step (no Lightning).

``GANModule.training_step`` and the bare PyTorch loop of ``benchmarks/train_step.py`` both call
these, so the benchmark compares the Lightning Trainer against the very same math. What differs
between the two callers is passed in as a :class:`StepBackend`: how a loss is back-propagated
(``LightningModule.manual_backward`` or ``Tensor.backward``), how the other network is frozen
(``toggle_optimizer`` or ``requires_grad_``), and the NaN guard.

The loss object (``giugan.losses.AdversarialLoss``) owns the objectives and the penalty; the steps
call it and know no loss by name. Per critic step (GIU-GANs Algorithm 2, eq. 14): ``fake = G(z)``
under ``no_grad``; ``loss_d = loss.critic_loss(D(real), D(fake))``; per-sample ``alpha ~ U[0, 1)``;
with the penalty in the critic step one backward of ``loss_d + lambda * GP``, in its own step a
second optimiser step on ``lambda * GP`` (the iGAN / SAGAN-code behaviour). Per generator step:
fresh ``z``, ``loss_g = loss.generator_loss(D(G(z)))`` (with ``D(real)`` of the last critic
mini-batch for a loss that asks for it, e.g. a relativistic one), backward, optimiser step. All
noise comes from one ``torch.Generator`` per generator iteration, drawn in this order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from giugan.losses import AdversarialLoss
from giugan.training.callbacks.guards import (
    NonFiniteError,
    buffers_finite_flag,
    ensure_finite,
    floating_buffers,
    non_finite_names,
    stop_message,
    total_grad_norm,
)


@dataclass(frozen=True)
class StepSettings:
    """The settings of one generator iteration (``GANModule``'s init args of the same names)."""

    #: The objectives and the gradient penalty (its weight and mode).
    loss: AdversarialLoss
    nan_guard: bool = True
    #: Compute gradient norms for the logs (the NaN guard checks them too when on).
    grad_norms: bool = True


def _plain_backward(loss: Tensor) -> None:
    loss.backward()


@contextlib.contextmanager
def _freeze_others(optimizer: torch.optim.Optimizer, models: tuple[nn.Module, ...]) -> Iterator[None]:
    """Only the optimiser's parameters require grad inside (what ``toggle_optimizer`` does)."""
    own = {id(p) for group in optimizer.param_groups for p in group["params"]}
    frozen = [p for m in models for p in m.parameters() if id(p) not in own and p.requires_grad]
    for parameter in frozen:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)


@dataclass
class StepBackend:
    """How a caller back-propagates, freezes the other network and guards against NaN.

    Args:
        backward: back-propagates a scalar loss (``manual_backward`` under Lightning).
        toggle: context manager making only one optimiser's parameters trainable.
        grad_scale: the loss scale of a mixed-precision grad scaler (1 without one).
        check: raises on non-finite values before an optimiser step; receives name -> tensor.
        compiled_generator, compiled_discriminator: ``torch.compile``d versions of the networks
            (same parameters) for the ordinary forwards. The penalty always differentiates the
            eager discriminator: a compiled graph does not support the double backward it needs.
    """

    backward: Callable[[Tensor], None] = _plain_backward
    toggle: Callable[[torch.optim.Optimizer], contextlib.AbstractContextManager[Any]] | None = None
    grad_scale: Callable[[], float] = field(default=lambda: 1.0)
    check: Callable[[dict[str, Tensor]], None] = field(default=lambda values: ensure_finite(values, -1))
    compiled_generator: Callable[[Tensor], Tensor] | None = None
    compiled_discriminator: Callable[[Tensor], Tensor] | None = None

    @classmethod
    def plain(cls, generator: nn.Module, discriminator: nn.Module) -> StepBackend:
        """Plain PyTorch: ``Tensor.backward`` and ``requires_grad_`` freezing of the other network."""
        return cls(toggle=lambda optimizer: _freeze_others(optimizer, (generator, discriminator)))

    def toggled(self, optimizer: torch.optim.Optimizer) -> contextlib.AbstractContextManager[Any]:
        return self.toggle(optimizer) if self.toggle is not None else contextlib.nullcontext()


def sample_noise(batch_size: int, z_dim: int, rng: torch.Generator, device: torch.device) -> Tensor:
    """Standard-normal latents ``(batch_size, z_dim)`` drawn from ``rng``."""
    return torch.randn(batch_size, z_dim, device=device, generator=rng)


def critic_step(
    generator: nn.Module,
    discriminator: nn.Module,
    optimizer: torch.optim.Optimizer,
    real: Tensor,
    rng: torch.Generator,
    settings: StepSettings,
    backend: StepBackend,
) -> dict[str, Tensor]:
    """One discriminator update on ``real``; returns detached statistics for the logs.

    Under mixed precision the losses are computed in float32 from the scores.
    """
    device = real.device
    loss = settings.loss
    forward_g = backend.compiled_generator or generator
    forward_d = backend.compiled_discriminator or discriminator
    with torch.no_grad():
        fake = forward_g(sample_noise(real.shape[0], generator.z_dim, rng, device))
    with backend.toggled(optimizer):
        real_scores = forward_d(real).float()
        fake_scores = forward_d(fake).float()
        loss_d = loss.critic_loss(real_scores, fake_scores)
        alpha = torch.rand(real.shape[0], 1, 1, 1, device=device, generator=rng, dtype=real.dtype)
        penalty = torch.zeros((), device=device)
        total = loss_d
        if loss.penalty_in_critic_step:
            penalty = loss.penalty(discriminator, real, fake, alpha, backend.grad_scale())
            total = loss_d + loss.weighted(penalty)
        optimizer.zero_grad(set_to_none=True)
        backend.backward(total)
        grad_norm = _grad_norm(discriminator, settings)
        if settings.nan_guard:
            backend.check({"loss_d": loss_d, "gp": penalty, "grad_norm_d": grad_norm,
                           "buffers": _buffers_flag(generator, discriminator)})
        optimizer.step()
        if loss.penalty_in_own_step:
            penalty = loss.penalty(discriminator, real, fake, alpha, backend.grad_scale())
            optimizer.zero_grad(set_to_none=True)
            backend.backward(loss.weighted(penalty))
            if settings.nan_guard:
                backend.check({"gp": penalty, "grad_norm_gp": _grad_norm(discriminator, settings)})
            optimizer.step()
    stats = {
        "loss_d": loss_d.detach(),
        "gp": penalty.detach(),
        "d_real": real_scores.detach().mean(),
        "d_fake": fake_scores.detach().mean(),
    }
    if settings.grad_norms:
        stats["grad_norm_d"] = grad_norm.detach()
    if loss.logs_wasserstein_estimate:
        stats["wasserstein"] = stats["d_real"] - stats["d_fake"]
    return stats


def generator_step(
    generator: nn.Module,
    discriminator: nn.Module,
    optimizer: torch.optim.Optimizer,
    real: Tensor,
    rng: torch.Generator,
    settings: StepSettings,
    backend: StepBackend,
) -> dict[str, Tensor]:
    """One generator update on as many fresh latents as ``real`` has images; detached statistics.

    ``real`` (the last critic mini-batch) is scored by D only for a loss that asks for it
    (``needs_real_scores_for_generator``, e.g. a relativistic loss); the others never run D on it.
    """
    device = next(generator.parameters()).device
    loss = settings.loss
    forward_g = backend.compiled_generator or generator
    forward_d = backend.compiled_discriminator or discriminator
    with backend.toggled(optimizer):
        fake_scores = forward_d(forward_g(sample_noise(real.shape[0], generator.z_dim, rng, device))).float()
        real_scores = forward_d(real).float() if loss.needs_real_scores_for_generator else None
        loss_g = loss.generator_loss(fake_scores, real_scores)
        optimizer.zero_grad(set_to_none=True)
        backend.backward(loss_g)
        grad_norm = _grad_norm(generator, settings)
        if settings.nan_guard:
            backend.check({"loss_g": loss_g, "grad_norm_g": grad_norm,
                           "buffers": _buffers_flag(generator, discriminator)})
        optimizer.step()
    stats = {"loss_g": loss_g.detach()}
    if settings.grad_norms:
        stats["grad_norm_g"] = grad_norm.detach()
    return stats


def generator_iteration(
    generator: nn.Module,
    discriminator: nn.Module,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    real_batches: Tensor,
    n_critic: int,
    rng: torch.Generator,
    settings: StepSettings,
    backend: StepBackend,
) -> dict[str, Tensor]:
    """``n_critic`` critic steps on the stacked ``real_batches``, then one generator step.

    ``real_batches`` holds ``n_critic`` mini-batches stacked along dim 0 (what the data modules
    deliver with ``batches_per_iteration = n_critic``). Returns the last critic step's statistics
    merged with the generator step's.
    """
    if real_batches.shape[0] % n_critic != 0:
        raise ValueError(
            f"A training batch of {real_batches.shape[0]} images cannot be split into "
            f"n_critic={n_critic} mini-batches; set data.init_args.batches_per_iteration to "
            f"n_critic (the CLI links them)."
        )
    optimizer_g, optimizer_d = optimizers
    buffers = floating_buffers({"generator": generator, "discriminator": discriminator})
    before = [b.clone() for b in buffers.values()] if settings.nan_guard else []
    try:
        for real in real_batches.chunk(n_critic):
            d_stats = critic_step(generator, discriminator, optimizer_d, real, rng, settings, backend)
        g_stats = generator_step(generator, discriminator, optimizer_g, real, rng, settings, backend)
    except NonFiniteError as error:
        if not before:
            raise
        # The forward passes of this iteration already updated the buffers (BatchNorm running
        # statistics, spectral-norm vectors): put back their values from before it, so the
        # networks hold the last good state, and say which ones had gone bad.
        bad_buffers = non_finite_names(buffers)
        with torch.no_grad():
            for buffer, saved in zip(buffers.values(), before):
                buffer.copy_(saved)
        bad = {k: v for k, v in getattr(error, "bad", {}).items() if k != "buffers"}
        rates = {"optimizer_g": float(optimizer_g.param_groups[0]["lr"]),
                 "optimizer_d": float(optimizer_d.param_groups[0]["lr"])}
        iteration = getattr(error, "iteration", -1)
        raised = NonFiniteError(stop_message(iteration, bad, bad_buffers, rates))
        raised.iteration, raised.bad, raised.buffers = iteration, bad, bad_buffers
        raise raised from None
    return {**d_stats, **g_stats}


def _buffers_flag(generator: nn.Module, discriminator: nn.Module) -> Tensor:
    """0 when every floating-point buffer of G and D is finite, NaN otherwise."""
    buffers = floating_buffers({"generator": generator, "discriminator": discriminator})
    return buffers_finite_flag(buffers.values())


def _grad_norm(module: nn.Module, settings: StepSettings) -> Tensor:
    if not (settings.grad_norms or settings.nan_guard):
        return torch.zeros(())
    return total_grad_norm(list(module.parameters()))
