"""Write an export folder: ``generator.safetensors``, ``generator.json`` and optional TorchScript.

The folder is assembled under a temporary name beside its destination and renamed into place
once complete, so a failed export leaves no half-written folder and an ``--overwrite`` replaces
the old folder only after the new one is whole (docs/export.md).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from giugan.atomic_files import temporary_name
from giugan.export.checkpoint import CheckpointGenerator
from giugan.export.loading import (
    DESCRIPTION_FILE,
    FORMAT,
    TORCHSCRIPT_FILE,
    WEIGHTS_FILE,
    construct_generator,
    load_generator,
)

__all__ = ["describe", "trace_generator", "write_export"]

#: Latents the TorchScript trace is recorded with (the batch size stays free).
TRACE_BATCH = 2


def describe(source: CheckpointGenerator, z_dim: int, checkpoint_name: str) -> dict[str, Any]:
    """The ``generator.json`` of an export (its keys are listed in docs/export.md)."""
    import giugan

    return {
        "format": FORMAT,
        "generator": source.constructor,
        "z_dim": z_dim,
        "mode": source.mode,
        "ema": source.ema,
        "output_range": [-1.0, 1.0],
        "weights": WEIGHTS_FILE,
        "source": {"checkpoint": checkpoint_name, "generator_iteration": source.generator_iteration,
                   "giugan": giugan.__version__, "torch": torch.__version__},
    }


def trace_generator(generator: nn.Module, z_dim: int) -> torch.jit.ScriptModule:
    """``torch.jit.trace`` of ``generator`` (a copy is traced: a train-mode trace updates BatchNorm)."""
    import copy

    with warnings.catch_warnings():
        # Deprecated in favour of torch.export, and shape checks read as constants: the batch
        # size stays free (checked by the tests), the image size is the network's own.
        warnings.simplefilter("ignore")
        with torch.no_grad():
            return torch.jit.trace(copy.deepcopy(generator), torch.zeros(TRACE_BATCH, z_dim), check_trace=False)


def _save_weights(state_dict: dict[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    save_file({name: tensor.detach().contiguous().clone() for name, tensor in state_dict.items()}, str(path))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # safetensors writes a private (0600) temporary file


def _build_in(folder: Path, source: CheckpointGenerator, checkpoint_name: str, torchscript: bool) -> nn.Module:
    _save_weights(source.state_dict, folder / WEIGHTS_FILE)
    z_dim = int(construct_generator(source.constructor).z_dim)
    (folder / DESCRIPTION_FILE).write_text(json.dumps(describe(source, z_dim, checkpoint_name), indent=2) + "\n")
    generator = load_generator(folder)  # the strict load a user's will do, checked now
    if torchscript:
        trace_generator(generator, z_dim).save(str(folder / TORCHSCRIPT_FILE))
    return generator


def write_export(
    source: CheckpointGenerator, output: Path, checkpoint_name: str, torchscript: bool = False,
    overwrite: bool = False,
) -> nn.Module:
    """Write ``source`` into the folder ``output`` and return the generator loaded back from it.

    ``output`` must not exist or be empty, unless ``overwrite``: then it is replaced once the new
    folder is complete.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.parent / temporary_name(output.name)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        generator = _build_in(staging, source, checkpoint_name, torchscript)
        if output.exists() and overwrite:
            replaced = output.parent / temporary_name(output.name + ".old")
            os.replace(output, replaced)
            os.replace(staging, output)
            shutil.rmtree(replaced, ignore_errors=True)
        else:
            if output.exists():
                output.rmdir()  # empty (checked by the caller); os.replace needs it gone
            os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return generator
