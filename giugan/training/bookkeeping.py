"""Small pieces of ``GANModule``'s bookkeeping: the log window, the EMA copy, architecture checks."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn


class LogWindow:
    """Accumulates step statistics on device and averages them when flushed (one sync per log)."""

    def __init__(self) -> None:
        self._sums: dict[str, Tensor] = {}
        self._count = 0
        self._images = 0
        self._seconds = 0.0

    def add(self, stats: dict[str, Tensor], images: int, seconds: float) -> None:
        for name, value in stats.items():
            self._sums[name] = self._sums.get(name, 0.0) + value.float()
        self._count += 1
        self._images += images
        self._seconds += seconds

    def flush(self) -> dict[str, float]:
        if not self._count:
            return {}
        values = {name: float(total) / self._count for name, total in self._sums.items()}
        values["images_per_second"] = self._images / max(self._seconds, 1e-9)
        values["iterations_per_second"] = self._count / max(self._seconds, 1e-9)
        self.__init__()
        return values


def lr_factor(schedule: str, iteration: int, total: int, rate: float, every: int) -> float:
    """LR multiplier after ``iteration`` generator iterations.

    ``constant``: 1; ``linear``: decay to 0 at ``total``; ``exponential``:
    ``rate ** (iteration // every)`` (the iGAN report's Table 1 decay).
    """
    if schedule == "linear":
        return max(0.0, 1.0 - iteration / total)
    if schedule == "exponential":
        return rate ** (iteration // every)
    return 1.0


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy whose parameters do not require grad (the EMA generator)."""
    copied = copy.deepcopy(module)
    for parameter in copied.parameters():
        parameter.requires_grad_(False)
    return copied


@torch.no_grad()
def update_ema(average: nn.Module, model: nn.Module, decay: float) -> None:
    """``average <- decay * average + (1 - decay) * model`` for parameters; buffers are copied."""
    torch._foreach_lerp_(list(average.parameters()), list(model.parameters()), 1.0 - decay)
    for average_buffer, buffer in zip(average.buffers(), model.buffers()):
        average_buffer.copy_(buffer)


def architecture_fingerprint(module: nn.Module) -> list[list[Any]]:
    """Names and shapes of every parameter and buffer: equal iff two networks are interchangeable."""
    return [[name, list(t.shape)] for name, t in module.state_dict().items()]


def first_difference(saved: list, ours: list) -> str:
    """The first entry where two architecture fingerprints differ, in words."""
    for (name_a, shape_a), (name_b, shape_b) in zip(saved, ours):
        if name_a != name_b or shape_a != shape_b:
            return f"checkpoint has {name_a} {shape_a} where the configured network has {name_b} {shape_b}"
    return f"checkpoint has {len(saved)} tensors, the configured network {len(ours)}"


def checkpoint_architecture(
    generator: nn.Module, discriminator: nn.Module, preset: str | None
) -> dict[str, Any]:
    """What a checkpoint records of the networks, checked by :func:`check_checkpoint_architecture`."""
    return {
        "architecture": {
            "generator": architecture_fingerprint(generator),
            "discriminator": architecture_fingerprint(discriminator),
        },
        "generator_class": type(generator).__qualname__,
        "discriminator_class": type(discriminator).__qualname__,
        "preset": preset,
    }


def check_checkpoint_architecture(
    saved: dict[str, Any] | None, generator: nn.Module, discriminator: nn.Module, preset: str | None
) -> None:
    """Refuse a checkpoint not written by ``GANModule`` or holding other networks (one paragraph)."""
    if saved is None:
        raise ValueError(
            "This checkpoint was not written by giugan's GANModule (no 'giugan' section); "
            "give a checkpoint from a giugan run directory (runs/<name>/checkpoints/*.ckpt)."
        )
    for part, network in (("generator", generator), ("discriminator", discriminator)):
        ours = architecture_fingerprint(network)
        if saved["architecture"][part] != ours:
            theirs = saved.get(f"{part}_class", "?")
            raise ValueError(
                f"The checkpoint's {part} ({theirs}, preset {saved.get('preset')!r}) has a "
                f"different architecture from the configured one ({type(network).__qualname__}, "
                f"preset {preset!r}): {first_difference(saved['architecture'][part], ours)}. "
                f"Use the config the checkpoint was trained with (it is saved as config.yaml in "
                f"its run directory), or start a new run without --ckpt_path."
            )
