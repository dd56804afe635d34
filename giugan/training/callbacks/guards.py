"""Guards that stop a run on non-finite values before they reach the weights or a checkpoint.

Two lines of defence: :func:`ensure_finite` runs before every optimiser step (losses, gradient
norms and the networks' buffers, which a forward pass in training mode has already updated), and
:class:`FiniteCheckpoints` refuses to write a checkpoint that holds a non-finite parameter,
buffer or optimiser state, so every checkpoint of a run is a state training can continue from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

import torch
from lightning.pytorch import Callback
from torch import Tensor, nn

#: What a NaN/inf stop tells the user to do next (the learning rates come first: the usual cause).
ADVICE = (
    "raise the penalty (--model.loss.init_args.gp_weight), check the data for corrupt images, or under mixed "
    "precision add --trainer.precision 32"
)


class NonFiniteError(FloatingPointError):
    """A loss, gradient or buffer became NaN/inf; raised before the optimiser step that would use it."""


def _lower_rates(learning_rates: dict[str, float] | None) -> str:
    """``--model.optimizer_g.init_args.lr X ...`` at a tenth of the rates in force (or a template)."""
    if not learning_rates:
        return "--model.optimizer_g.init_args.lr LR --model.optimizer_d.init_args.lr LR"
    return " ".join(f"--model.{name}.init_args.lr {rate / 10:.3g}" for name, rate in learning_rates.items())


def resume_advice(learning_rates: dict[str, float] | None = None, resumable: bool = True) -> str:
    """The sentence that says how to continue after a non-finite stop (``resumable``: a
    checkpoint exists to resume from; otherwise the advice is to start again)."""
    now = ""
    if learning_rates:
        now = " (a tenth of the " + " and ".join(f"{rate:.3g}" for rate in learning_rates.values()) + " in force)"
    if not resumable:
        return (
            f"No checkpoint was written yet: run the same command again with lower learning rates, "
            f"e.g. {_lower_rates(learning_rates)}{now}. Or {ADVICE}."
        )
    return (
        f"Resume from it with the same command plus --ckpt_path last and lower learning rates, "
        f"e.g. {_lower_rates(learning_rates)}{now}: a resume applies new learning rates to the "
        f"restored optimisers (if it stops again at once, the checkpoint itself has drifted: give "
        f"an earlier one, --ckpt_path <run>/checkpoints/iter-<N>.ckpt). Or {ADVICE}."
    )


def stop_message(
    iteration: int,
    bad: dict[str, float],
    buffers: list[str] | None = None,
    learning_rates: dict[str, float] | None = None,
    resumable: bool = True,
) -> str:
    """One paragraph: what went non-finite, what state is kept, and how to continue."""
    what = f"Non-finite training values at generator iteration {iteration}: {bad}" if bad else (
        f"Non-finite values at generator iteration {iteration}"
    )
    if buffers:
        shown = ", ".join(buffers[:3]) + (f" and {len(buffers) - 3} more" if len(buffers) > 3 else "")
        what += (
            f"{'; non-finite' if bad else ':'} buffers after this iteration's forward passes: "
            f"{shown} (put back to their values before the iteration)"
        )
    return (
        f"{what}. The optimiser step was not taken and no checkpoint holds a non-finite value, so "
        f"the weights and every checkpoint already written are the last finite state. "
        f"{resume_advice(learning_rates, resumable)}"
    )


def ensure_finite(values: dict[str, Tensor], iteration: int) -> None:
    """Raise :class:`NonFiniteError` if any value is NaN or infinite (one host sync for all)."""
    stacked = torch.stack([v.detach().float().reshape(()) for v in values.values()])
    if bool(torch.isfinite(stacked).all()):
        return
    bad = {name: v for name, v in zip(values, stacked.tolist()) if not math.isfinite(v)}
    error = NonFiniteError(stop_message(iteration, bad))
    error.iteration, error.bad = iteration, bad
    raise error


def total_grad_norm(parameters: list[torch.nn.Parameter]) -> Tensor:
    """L2 norm over all gradients (0 when none); stays on device."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros((), device=parameters[0].device if parameters else None)
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def floating_buffers(modules: dict[str, nn.Module]) -> dict[str, Tensor]:
    """``"<prefix>.<buffer name>" -> buffer`` for the floating-point buffers of ``modules``."""
    return {
        f"{prefix}.{name}": buffer
        for prefix, module in modules.items()
        for name, buffer in module.named_buffers()
        if buffer.is_floating_point()
    }


def buffers_finite_flag(buffers: Iterable[Tensor]) -> Tensor:
    """A scalar that is 0 when every buffer is finite and NaN otherwise (stays on device)."""
    tensors = list(buffers)
    if not tensors:
        return torch.zeros(())
    # x * 0 is 0 for finite x and NaN for NaN/inf; never overflows, unlike a norm of large values.
    return torch.stack(torch._foreach_norm(torch._foreach_mul(tensors, 0.0))).sum()


def non_finite_names(tensors: dict[str, Tensor]) -> list[str]:
    """The names whose tensor holds a NaN or an infinity (floating-point tensors only)."""
    return [
        name for name, tensor in tensors.items()
        if isinstance(tensor, Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]


def non_finite_in_checkpoint(checkpoint: dict[str, Any]) -> list[str]:
    """Where a checkpoint dictionary holds NaN/inf: state_dict entries and optimiser states."""
    bad = non_finite_names(checkpoint.get("state_dict") or {})
    for index, optimizer in enumerate(checkpoint.get("optimizer_states") or []):
        for parameter, state in (optimizer.get("state") or {}).items():
            bad += [f"optimizer {index} state {parameter}.{name}" for name in non_finite_names(state)]
    return bad


class FiniteCheckpoints(Callback):
    """Refuse to write a checkpoint that holds a non-finite parameter, buffer or optimiser state.

    The checkpoints already written stay as they are, so ``--ckpt_path last`` is the last good
    state. Off when the module's ``nan_guard`` is off.
    """

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        if not getattr(getattr(pl_module, "hparams", {}), "get", lambda *_: True)("nan_guard", True):
            return
        bad = non_finite_in_checkpoint(checkpoint)
        if not bad:
            return
        iteration = int(getattr(pl_module, "generator_iteration", 0))
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        rates = learning_rates_in_force(trainer)
        raise NonFiniteError(
            f"Non-finite values at generator iteration {iteration} ({shown}): the checkpoint of "
            f"this iteration was not written, so every checkpoint already written is the last "
            f"finite state. {resume_advice(rates)}"
        )


    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        """A stop before the run's first checkpoint advises a new start, not ``--ckpt_path last``."""
        if not isinstance(exception, NonFiniteError) or not hasattr(exception, "bad"):
            return
        folder = getattr(trainer.checkpoint_callback, "dirpath", None)
        if getattr(trainer, "ckpt_path", None) or (folder and os.path.isfile(os.path.join(folder, "last.ckpt"))):
            return
        exception.args = (stop_message(exception.iteration, exception.bad, getattr(exception, "buffers", None),
                                       learning_rates_in_force(trainer) or None, resumable=False),)


def learning_rates_in_force(trainer: Any) -> dict[str, float]:
    """``{"optimizer_g": lr, "optimizer_d": lr}`` of a GANModule's trainer (empty if unknown)."""
    optimizers = list(getattr(trainer, "optimizers", []) or [])
    if len(optimizers) != 2:
        return {}
    return {name: float(opt.param_groups[0]["lr"]) for name, opt in zip(("optimizer_g", "optimizer_d"), optimizers)}
