"""Speed options past fp32 eager: ``torch.compile`` with a fallback, channels-last memory format.

Mixed precision itself is Lightning's ``--trainer.precision bf16-mixed`` (autocast around the
training step); :func:`giugan.losses.gradient_penalty` and the step functions keep the
interpolation, the penalty's norm and the losses in float32 (see ``docs/performance.md``).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor, nn

from giugan import compat
from giugan.messages import first_line


class CompiledForward:
    """``torch.compile(module)`` that falls back to the eager module, with one warning, if it fails.

    The compiled callable shares the module's parameters and buffers; it is not a submodule, so
    checkpoints and parameter counts are unchanged. Compilation is lazy: it happens at the first
    call, which is where a missing C++ compiler or an unsupported operator shows up.
    """

    def __init__(self, module: nn.Module, name: str, mode: str | None = None) -> None:
        self.module = module
        self.name = name
        self.compiled: Any = torch.compile(module, mode=mode, dynamic=False)
        self.failed: str | None = None

    def __call__(self, inputs: Tensor) -> Tensor:
        if self.failed is None:
            try:
                return self.compiled(inputs)
            except compat.compile_errors() as error:  # compile-time failure: nothing ran yet
                self.failed = f"{type(error).__name__}: {first_line(error, 300)}"
                warnings.warn(
                    f"model.init_args.compile_networks: torch.compile of the {self.name} failed "
                    f"({self.failed}); training continues with the eager {self.name}, which "
                    f"computes the same thing, only slower. Set compile_networks: false to silence "
                    f"this, or install a C++ compiler (inductor needs one on CPU).",
                    stacklevel=2,
                )
        return self.module(inputs)


def to_channels_last(*modules: nn.Module) -> None:
    """Store the 4-d parameters and buffers of ``modules`` in channels-last order, in place."""
    for module in modules:
        module.to(memory_format=torch.channels_last)
