"""First-principal-component maps of a discriminator's hidden features (GIU-GANs Figures 1 and 2).

GIU-GANs (Tian et al., section 1) visualises a discriminator hidden layer by PCA: subtract the
mean of each feature dimension of the feature map X, eigen-decompose the covariance
``(1/n) X X^T``, keep the eigenvector of the largest eigenvalue (K = 1) and project the data onto
it, which gives one grey-scale map per image. Here, per image, the ``H*W`` positions are the
observations and the ``C`` channels the variables:

* :func:`first_component_maps` - ``(N, C, H, W)`` features -> ``(N, H, W)`` projections;
* :func:`normalise_maps` - each map min-max scaled to [0, 1] for display;
* :func:`capture_layer_output` - a named layer's output, captured with a forward hook;
* :func:`save_grey_grid` - maps as one grey-scale grid PNG.

Pure torch (plus Pillow for the PNG); no Lightning.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor, nn

__all__ = [
    "capture_layer_output",
    "first_component_maps",
    "grey_grid",
    "normalise_maps",
    "save_grey_grid",
]


def first_component_maps(features: Tensor) -> Tensor:
    """Projection of every position onto the first principal component of its image's channels.

    For image ``n``, ``X`` is the ``(H*W, C)`` matrix of its feature vectors (positions as
    observations, channels as variables). Each channel is centred over the positions, the
    covariance ``Xc^T Xc / (H*W)`` is eigen-decomposed, and the centred data are projected onto
    the eigenvector ``v`` of the largest eigenvalue: ``map[n] = (Xc @ v).reshape(H, W)``.

    Sign convention: an eigenvector's sign is arbitrary, so ``v`` is flipped to make
    ``sum(v) > 0`` (the map then correlates positively with the channel-mean activation map);
    where ``sum(v) == 0`` (``|sum(v)| <= 1e-9``), its largest-magnitude entry is made positive. Computed in float64 and
    returned in the input's dtype. A map is all zeros when the image's features are constant over
    positions.

    Args:
        features: ``(N, C, H, W)`` hidden features (e.g. a discriminator block's output).

    Returns:
        ``(N, H, W)`` projections (not normalised; see :func:`normalise_maps`).

    Raises:
        ValueError: ``features`` is not 4-dimensional.
    """
    if features.dim() != 4:
        raise ValueError(
            f"first_component_maps: features must have shape (N, C, H, W), got "
            f"{tuple(features.shape)}; pass a convolutional layer's output (add a batch "
            f"dimension with .unsqueeze(0) for a single image)."
        )
    n, c, h, w = features.shape
    x = features.detach().to(torch.float64).reshape(n, c, h * w).transpose(1, 2)  # (N, P, C)
    centred = x - x.mean(dim=1, keepdim=True)
    covariance = centred.transpose(1, 2) @ centred / (h * w)  # (N, C, C)
    _, vectors = torch.linalg.eigh(covariance)  # eigenvalues ascending
    first = vectors[..., -1]  # (N, C)
    total = first.sum(dim=1)
    largest = first.gather(1, first.abs().argmax(dim=1, keepdim=True)).squeeze(1)
    # |sum(v)| below 1e-9 (v has unit norm) counts as zero: rounding must not pick the sign.
    sign = torch.where(total.abs() > 1e-9, total.sign(), largest.sign())
    first = first * sign.unsqueeze(1)
    maps = (centred @ first.unsqueeze(2)).squeeze(2)  # (N, P)
    return maps.reshape(n, h, w).to(features.dtype)


def normalise_maps(maps: Tensor) -> Tensor:
    """Each ``(H, W)`` map of ``(N, H, W)`` min-max scaled to [0, 1] (0 = darkest).

    A constant map becomes all zeros.
    """
    flat = maps.reshape(maps.shape[0], -1)
    low = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - low
    scaled = torch.where(span > 0, (flat - low) / torch.where(span > 0, span, 1), 0)
    return scaled.reshape(maps.shape)


def capture_layer_output(network: nn.Module, layer: str, inputs: Tensor) -> Tensor:
    """Output of submodule ``layer`` (a ``named_modules`` name) when ``network(inputs)`` runs.

    Runs in eval mode under ``torch.no_grad`` and restores every submodule's training flag; the
    hook is removed afterwards. The output is copied when captured, so a later in-place
    operation (the discriminator's ``LeakyReLU(inplace=True)`` after a convolution) leaves it as
    the layer returned it. For the project's :class:`~giugan.nets.Discriminator`, names are
    ``blocks.0`` ... (block i is ``blocks.{i-1}``) and ``inserts.3`` (a module after block 3).

    Raises:
        ValueError: no submodule is called ``layer`` (the message lists close and all names), or
            its output is not a tensor.
    """
    names = [name for name, _ in network.named_modules() if name]
    if layer not in names:
        close = difflib.get_close_matches(layer, names, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"capture_layer_output: {type(network).__name__} has no layer {layer!r}.{hint} "
            f"Layers: {', '.join(names)}."
        )
    captured: list[object] = []

    def hook(module: nn.Module, args: tuple[object, ...], output: object) -> None:
        # A copy: a later in-place op (LeakyReLU(inplace=True) after a conv) must not change it.
        captured.append(output.clone() if isinstance(output, Tensor) else output)

    training = {m: m.training for m in network.modules()}
    handle = network.get_submodule(layer).register_forward_hook(hook)
    try:
        network.eval()
        with torch.no_grad():
            network(inputs)
    finally:
        handle.remove()
        for module, flag in training.items():
            module.training = flag
    output = captured[0]
    if not isinstance(output, Tensor):
        raise ValueError(
            f"capture_layer_output: layer {layer!r} returned {type(output).__name__}, not a "
            f"tensor; choose a layer whose output is a feature map."
        )
    return output


def grey_grid(maps: Tensor, nrow: int = 8, padding: int = 2, scale: int = 1) -> Tensor:
    """``(N, H, W)`` maps in [0, 1] tiled row by row into one ``uint8`` image (white gaps).

    ``scale`` enlarges each map by pixel repetition (feature maps are small, e.g. 16x16).
    """
    if scale > 1:
        maps = maps.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    n, h, w = maps.shape
    columns = min(nrow, n)
    rows = -(-n // columns)
    grid = torch.ones(rows * (h + padding) + padding, columns * (w + padding) + padding)
    for index in range(n):
        top = padding + (index // columns) * (h + padding)
        left = padding + (index % columns) * (w + padding)
        grid[top:top + h, left:left + w] = maps[index].clamp(0, 1)
    return (grid * 255).round().to(torch.uint8)


def save_grey_grid(
    maps: Tensor, path: str | Path, nrow: int = 8, padding: int = 2, scale: int = 1
) -> Path:
    """Write ``(N, H, W)`` maps in [0, 1] as a grey-scale grid PNG (see :func:`grey_grid`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grey_grid(maps.cpu(), nrow, padding, scale).numpy()).save(path)  # uint8 2-D: "L"
    return path
