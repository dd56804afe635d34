"""The generator of a ``giugan fit`` checkpoint: its constructor, weights and sampling mode.

The constructor comes from the checkpoint's hyperparameters (the resolved config LightningCLI
saved: ``model.generator`` as ``class_path``/``init_args``, or ``model.preset``); the weights are
the EMA generator's (``generator_ema.*``) when the run kept one, the generator's otherwise: the
network the run evaluated and sampled with (``GANModule.sampling_generator``).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointGenerator", "read_checkpoint_generator"]


@dataclass
class CheckpointGenerator:
    """What an export needs from a checkpoint."""

    #: ``{"class_path": ..., "init_args": {...}}`` or ``{"preset": NAME}``.
    constructor: dict[str, Any]
    #: The sampling generator's ``state_dict`` (prefix removed).
    state_dict: dict[str, torch.Tensor]
    #: True when ``state_dict`` is the EMA generator's.
    ema: bool
    #: ``eval`` (BatchNorm running statistics) or ``train``: ``model.eval_generator_mode``.
    mode: str
    #: Generator iterations the checkpoint had trained (None when it does not say).
    generator_iteration: int | None = None


#: What ``torch.load`` raises for a file that is no checkpoint (zip, pickle and import errors).
_UNREADABLE = (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, KeyError, AttributeError,
               ImportError, TypeError, IndexError, UnicodeDecodeError)


def _refuse(path: Path, why: str) -> ValueError:
    return ValueError(
        f"{path}: {why}. `giugan export` reads checkpoints written by `giugan fit` "
        f"(runs/<name>/checkpoints/last.ckpt, best.ckpt or iter-*.ckpt); give one of those."
    )


def _load(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ValueError(
            f"{path}: no such file. Give a checkpoint written by `giugan fit`, e.g. "
            f"runs/<name>/checkpoints/last.ckpt (`ls runs/*/checkpoints/` lists them)."
        )
    if not path.is_file():
        raise _refuse(path, "is a folder, not a checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except _UNREADABLE as error:
        raise _refuse(path, f"not a PyTorch checkpoint (torch.load cannot read it: {type(error).__name__})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise _refuse(path, "a PyTorch file without a Lightning model's state_dict and hyper_parameters")
    return checkpoint


def _constructor(path: Path, hyper_parameters: dict[str, Any]) -> dict[str, Any]:
    generator = hyper_parameters.get("generator")
    if isinstance(generator, dict) and "class_path" in generator:
        constructor = {"class_path": generator["class_path"], "init_args": dict(generator.get("init_args") or {})}
    elif hyper_parameters.get("preset"):
        constructor = {"preset": str(hyper_parameters["preset"])}
    else:
        raise _refuse(
            path, "its hyperparameters do not record the generator's class_path/init_args or a "
            "preset (a GANModule built in Python, not by `giugan fit`, saves no constructor)",
        )
    try:
        return json.loads(json.dumps(constructor))  # plain JSON values only (string dict keys)
    except (TypeError, ValueError) as error:
        raise _refuse(path, f"the generator's init_args are not plain values ({error})") from None


def read_checkpoint_generator(path: str | Path) -> CheckpointGenerator:
    """The sampling generator of checkpoint ``path`` (ValueError with the fix when it is not one)."""
    path = Path(path)
    checkpoint = _load(path)
    hyper_parameters = dict(checkpoint["hyper_parameters"])
    constructor = _constructor(path, hyper_parameters)
    weights: dict[str, torch.Tensor] = checkpoint["state_dict"]
    ema = any(name.startswith("generator_ema.") for name in weights)
    prefix = "generator_ema." if ema else "generator."
    state_dict = {name[len(prefix):]: tensor for name, tensor in weights.items() if name.startswith(prefix)}
    if not state_dict:
        raise _refuse(path, "its state_dict holds no generator weights (no 'generator.' keys)")
    saved = checkpoint.get("giugan") or {}
    iteration = saved.get("generator_iteration")
    return CheckpointGenerator(
        constructor=constructor,
        state_dict=state_dict,
        ema=ema,
        mode=str(hyper_parameters.get("eval_generator_mode") or "eval"),
        generator_iteration=int(iteration) if iteration is not None else None,
    )
