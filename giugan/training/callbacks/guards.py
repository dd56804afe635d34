"""Guards that stop a run on non-finite values before they reach the weights or a checkpoint."""

from __future__ import annotations

import torch
from torch import Tensor


class NonFiniteError(FloatingPointError):
    """A loss or gradient became NaN/inf; raised before the optimiser step that would use it."""


def ensure_finite(values: dict[str, Tensor], iteration: int) -> None:
    """Raise :class:`NonFiniteError` if any value is NaN or infinite (one host sync for all)."""
    stacked = torch.stack([v.detach().float().reshape(()) for v in values.values()])
    if bool(torch.isfinite(stacked).all()):
        return
    bad = {name: float(v) for name, v in zip(values, stacked.tolist()) if not torch.isfinite(torch.tensor(v))}
    raise NonFiniteError(
        f"Non-finite training values at generator iteration {iteration}: {bad}. The optimiser step "
        f"was not taken, so the weights and every checkpoint already written are the last good "
        f"state. Resume from it with --ckpt_path last after lowering the learning rates "
        f"(model.init_args.optimizer_g/optimizer_d), raising gp_weight, or checking the data for "
        f"corrupt images; for mixed precision try --trainer.precision 32."
    )


def total_grad_norm(parameters: list[torch.nn.Parameter]) -> Tensor:
    """L2 norm over all gradients (0 when none); stays on device."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros((), device=parameters[0].device if parameters else None)
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
