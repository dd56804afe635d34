"""Build an exported generator from its folder: ``generator.json`` + ``generator.safetensors``.

No Lightning here (nor anything that imports it): the folder is meant for people who only want
samples. ``generator.json`` names the constructor (``class_path`` + ``init_args``, nested
``class_path`` values such as GIU inserts built the same way, or a giugan ``preset``); the
weights are the generator's ``state_dict``. See docs/export.md.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["DESCRIPTION_FILE", "FORMAT", "TORCHSCRIPT_FILE", "WEIGHTS_FILE", "build_network",
           "construct_generator", "load_generator", "read_description"]

#: The constructor, ``z_dim`` and provenance of the exported generator.
DESCRIPTION_FILE = "generator.json"
#: The generator's ``state_dict`` (safetensors).
WEIGHTS_FILE = "generator.safetensors"
#: ``giugan export --torchscript``: the traced generator, for ``torch.jit.load``.
TORCHSCRIPT_FILE = "generator.torchscript.pt"
#: ``format`` of ``generator.json``; a later layout gets a new number.
FORMAT = "giugan-generator/1"


def _import_class(class_path: str) -> type:
    module_name, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(
            f"{DESCRIPTION_FILE}: class_path {class_path!r} cannot be imported ({error}). Install "
            f"the package that defines it (giugan, or the module of your own block) and load again."
        ) from None


def build_network(spec: Any) -> Any:
    """Instantiate ``{"class_path": ..., "init_args": {...}}`` recursively (LightningCLI's YAML form).

    Dictionaries and lists are walked; any dictionary with a ``class_path`` becomes an instance of
    that class built from its (recursively built) ``init_args``. Other values are returned as is.
    """
    if isinstance(spec, dict) and "class_path" in spec:
        arguments = {name: build_network(value) for name, value in (spec.get("init_args") or {}).items()}
        return _import_class(spec["class_path"])(**arguments)
    if isinstance(spec, dict):
        return {key: build_network(value) for key, value in spec.items()}
    if isinstance(spec, list):
        return [build_network(value) for value in spec]
    return spec


def read_description(folder: str | Path) -> dict[str, Any]:
    """``generator.json`` of an export folder, checked for the keys :func:`load_generator` needs."""
    path = Path(folder) / DESCRIPTION_FILE
    try:
        description = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: no such file. An export folder written by `giugan export CHECKPOINT` holds "
            f"{DESCRIPTION_FILE} and {WEIGHTS_FILE}; give that folder."
        ) from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error}); export the checkpoint again.") from None
    if description.get("format") != FORMAT or "generator" not in description or "z_dim" not in description:
        raise ValueError(
            f"{path}: not a giugan generator description (expected format {FORMAT!r} with "
            f"'generator' and 'z_dim'); export the checkpoint again with `giugan export`."
        )
    return description


def construct_generator(generator: dict[str, Any]) -> nn.Module:
    """The untrained network ``generator.json``'s ``generator`` entry describes."""
    if "preset" in generator:
        from giugan.nets.presets import build_preset

        return build_preset(generator["preset"])[0]
    return build_network(generator)


def load_generator(folder: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """The exported generator, with its weights, in the mode its run sampled in (docs/export.md).

    ``generator(z)`` maps latents of shape ``(N, z_dim)`` (``generator.z_dim``, also in
    ``generator.json``) to images in [-1, 1], exactly as the checkpoint's model did for the same
    noise. The module is in ``eval`` mode (BatchNorm running statistics) unless the run evaluated
    its generator in ``train`` mode; parameters do not require gradients.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    description = read_description(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no such file; export the checkpoint again with `giugan export`.")
    generator = construct_generator(description["generator"])
    try:
        generator.load_state_dict(load_file(str(weights), device=str(map_location)))
    except RuntimeError as error:  # names or shapes that the constructed network does not have
        raise ValueError(
            f"{weights}: the weights do not fit the network {DESCRIPTION_FILE} describes "
            f"({str(error).splitlines()[0]} ...). The network's code changed since the export, "
            f"or a file of another export was copied in; export the checkpoint again."
        ) from None
    generator.to(map_location)
    generator.train(description.get("mode", "eval") == "train")
    generator.requires_grad_(False)
    if not hasattr(generator, "z_dim"):
        generator.z_dim = int(description["z_dim"])
    return generator
