"""bf16 against fp32 on one generator iteration from identical states, with stated tolerances.

Used by ``tests/training/test_precision.py`` (which pins it) and ``benchmarks/precision_speed.py``
(which prints it beside the speed-ups). bf16 keeps 8 significant bits, so single values differ by
about 0.4 %; the losses of an untrained WGAN critic are small differences of two means and are
judged by absolute error on the score scale instead.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from giugan.losses import WassersteinLoss
from giugan.seeding import step_generator
from giugan.training.steps import StepBackend, StepSettings, critic_step, generator_step

#: Tolerances of bf16-mixed against fp32 after one iteration from the same state.
TOLERANCES = {
    "gp": 1e-2,  # relative: the penalty is computed in float32 from bf16 gradients
    "grad_norm_d": 2e-2,  # relative
    "grad_norm_g": 2e-2,  # relative
    "loss_d": 2e-3,  # absolute (scores of order 0.1)
    "loss_g": 2e-3,  # absolute
    "gradient_cosine_d": 0.995,  # minimum cosine similarity of the whole gradient vectors
    "gradient_cosine_g": 0.97,
}


def small_giu_gan(seed: int) -> tuple[nn.Module, nn.Module]:
    """GIU-GAN 32 at conv_dim 16 (GIU(64) in the paper's slots): small enough for CPU checks."""
    from giugan.nets import Discriminator, Generator
    from giugan.ops import GIU

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return (
            Generator(32, conv_dim=16, rbn_blocks="outer", inserts={1: GIU(64)}),
            Discriminator(32, conv_dim=16, inserts={3: GIU(64)}),
        )


def _one_iteration(
    nets: tuple[nn.Module, nn.Module], real: Tensor, bf16: bool
) -> tuple[dict[str, float], Tensor, Tensor]:
    generator, discriminator = (copy.deepcopy(n).to(real.device).train() for n in nets)
    settings = StepSettings(loss=WassersteinLoss(gp_weight=10.0))
    backend = StepBackend.plain(generator, discriminator)
    frozen_d = torch.optim.SGD(discriminator.parameters(), lr=0.0)  # gradients only, no update
    frozen_g = torch.optim.SGD(generator.parameters(), lr=0.0)
    rng = step_generator(0, 0, 0, real.device)
    with torch.autocast(real.device.type, dtype=torch.bfloat16, enabled=bf16):
        stats = critic_step(generator, discriminator, frozen_d, real, rng, settings, backend)
        grad_d = torch.cat([p.grad.flatten() for p in discriminator.parameters() if p.grad is not None])
        stats.update(generator_step(generator, discriminator, frozen_g, real, rng, settings, backend))
        grad_g = torch.cat([p.grad.flatten() for p in generator.parameters() if p.grad is not None])
    return {k: float(v) for k, v in stats.items()}, grad_d, grad_g


def compare_one_iteration(device: torch.device, seed: int = 0) -> dict[str, float]:
    """Differences of bf16 from fp32 for the keys of :data:`TOLERANCES`, and ``passed``."""
    nets = small_giu_gan(seed)
    real = (torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1).to(device)
    ref, ref_d, ref_g = _one_iteration(nets, real, bf16=False)
    low, low_d, low_g = _one_iteration(nets, real, bf16=True)
    result = {}
    for key in ("gp", "grad_norm_d", "grad_norm_g"):
        result[key] = abs(low[key] - ref[key]) / max(abs(ref[key]), 1e-12)
    for key in ("loss_d", "loss_g"):
        result[key] = abs(low[key] - ref[key])
    cosine = torch.nn.functional.cosine_similarity
    result["gradient_cosine_d"] = float(cosine(ref_d.float(), low_d.float(), dim=0))
    result["gradient_cosine_g"] = float(cosine(ref_g.float(), low_g.float(), dim=0))
    passed = all(
        result[k] >= limit if k.startswith("gradient_cosine") else result[k] <= limit
        for k, limit in TOLERANCES.items()
    )
    return {**result, "passed": float(passed)}
