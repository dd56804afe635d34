"""The GIU-GANs figures a trained model can be asked for: D-feature maps and sample sheets.

* Figures 1 and 2: per image, the first principal component (K = 1) of a discriminator hidden
  layer's features as a grey-scale map (:func:`discriminator_maps`, :func:`save_maps`), for real
  images and for samples;
* Figures 8 and 11: a sheet of 64 samples in an 8x8 grid (:func:`save_sample_sheet`).

Shared by ``giugan inspect`` and the :class:`~giugan.training.callbacks.feature_maps.FeatureMaps`
callback. Pure torch (plus Pillow and torchvision's image writer); no Lightning.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import Tensor, nn

from giugan.inspection.pca_maps import (
    capture_layer_output,
    first_component_maps,
    normalise_maps,
    save_grey_grid,
)

__all__ = [
    "DISPLAY_SIZE",
    "check_layer",
    "default_layer",
    "discriminator_maps",
    "feature_layers",
    "first_images",
    "fixed_latents",
    "save_maps",
    "save_sample_sheet",
]

#: Maps are enlarged by pixel repetition to at least this many pixels a side in the PNGs.
DISPLAY_SIZE = 64


def default_layer(discriminator: nn.Module) -> str:
    """The layer mapped when none is chosen: the output of D's block 2 (``blocks.1``).

    Block 2 is the middle of the 32x32 discriminator (8x8 maps) and the second of four blocks at
    64x64 (16x16 maps): deep enough to respond to shapes, fine enough to show where. The papers
    do not name the layer they visualise. A network without ``blocks.1`` gets its last feature
    layer before the output (see :func:`feature_layers`).
    """
    names = {name for name, _ in discriminator.named_modules()}
    if "blocks.1" in names:
        return "blocks.1"
    layers = feature_layers(discriminator, _image_size(discriminator))
    if not layers:
        raise ValueError(
            f"{type(discriminator).__name__} has no layer whose output is a feature map of more "
            f"than one position, so there is nothing to draw; inspect a convolutional discriminator."
        )
    return list(layers)[-1]


def feature_layers(discriminator: nn.Module, image_size: int) -> dict[str, tuple[int, ...]]:
    """``{name: (C, H, W)}`` of every submodule whose output is a feature map with ``H*W > 1``.

    Found by one forward pass of a single zero image (eval mode, no gradients), in call order.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, module in discriminator.named_modules():
        if not name or "parametrizations" in name:
            continue

        def hook(module: nn.Module, args: object, output: object, name: str = name) -> None:
            if isinstance(output, Tensor) and output.dim() == 4 and output.shape[2] * output.shape[3] > 1:
                shapes.setdefault(name, tuple(output.shape[1:]))

        handles.append(module.register_forward_hook(hook))
    training = {m: m.training for m in discriminator.modules()}
    try:
        discriminator.eval()
        parameter = next(discriminator.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        with torch.no_grad():
            discriminator(torch.zeros(1, 3, image_size, image_size, device=device))
    finally:
        for handle in handles:
            handle.remove()
        for module, flag in training.items():
            module.training = flag
    return shapes


def check_layer(discriminator: nn.Module, layer: str) -> str:
    """Return ``layer`` if its output is a feature map; else raise listing the valid names.

    Raises:
        ValueError: ``layer`` is not a submodule of ``discriminator`` or its output is not a
            ``(N, C, H, W)`` map of more than one position.
    """
    layers = feature_layers(discriminator, _image_size(discriminator))
    if layer in layers:
        return layer
    valid = ", ".join(f"{name} ({'x'.join(map(str, shape))})" for name, shape in layers.items())
    raise ValueError(
        f"--layer {layer!r} is not a feature-map layer of the discriminator "
        f"{type(discriminator).__name__}. Choose one of (name, then C x H x W of its output): "
        f"{valid}. Block i of the giugan discriminator is 'blocks.<i-1>'; a module inserted after "
        f"block i is 'inserts.<i>'."
    )


def discriminator_maps(discriminator: nn.Module, images: Tensor, layer: str) -> Tensor:
    """``(N, H, W)`` maps in [0, 1]: each image's first-component projection of ``layer``'s features.

    GIU-GANs section 1 (Figures 1 and 2): the ``H*W`` positions of one image are the observations,
    the channels the variables, K = 1; each map is then min-max scaled for display.
    """
    parameter = next(discriminator.parameters(), None)
    if parameter is not None:
        images = images.to(parameter.device)
    features = capture_layer_output(discriminator, layer, images)
    return normalise_maps(first_component_maps(features.float())).cpu()


def first_images(batches: Iterable[Any], count: int) -> Tensor:
    """The first ``count`` images of a loader's batches (a batch may be ``(images, ...)``)."""
    taken: list[Tensor] = []
    total = 0
    for batch in batches:
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        taken.append(images[: count - total])
        total += len(taken[-1])
        if total >= count:
            break
    if not taken:
        raise ValueError("first_images: the loader yielded no images; give a non-empty data set.")
    return torch.cat(taken)


def fixed_latents(count: int, z_dim: int, seed: int) -> Tensor:
    """``(count, z_dim)`` standard-normal latents drawn on the CPU from ``seed`` (reproducible)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, z_dim, generator=generator)


def save_maps(maps: Tensor, path: str | Path, nrow: int = 8) -> Path:
    """Write ``(N, H, W)`` maps in [0, 1] as a grey-scale grid PNG, enlarged to ``DISPLAY_SIZE``."""
    scale = max(1, DISPLAY_SIZE // maps.shape[-1])
    return save_grey_grid(maps, path, nrow=nrow, scale=scale)


def save_sample_sheet(images: Tensor, path: str | Path, nrow: int = 8) -> Path:
    """Write images in [-1, 1] as one RGB grid PNG (GIU-GANs Figures 8 and 11: 64 in 8x8)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = torchvision.utils.make_grid(
        images.detach().float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1)
    )
    torchvision.utils.save_image(grid, path)
    return path


def _image_size(discriminator: nn.Module) -> int:
    size = getattr(discriminator, "image_size", None)
    if not isinstance(size, int):
        raise ValueError(
            f"The discriminator {type(discriminator).__name__} has no integer attribute "
            f"`image_size`, so the size of its input images is unknown; give it one (the giugan "
            f"networks have it)."
        )
    return size
