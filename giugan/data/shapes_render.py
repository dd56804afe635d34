"""The built-in shapes set with its labels: which of the 36 modes each image is.

:func:`giugan.data.shapes.render_shape` draws image ``i`` from ``numpy.random.default_rng([seed,
i])`` in a fixed order: shape kind, colour, background, then radius and centre. This module
replays the first draws of that same generator to recover the discrete factors without
rendering, and renders labelled batches for the shapes judge (:mod:`giugan.metrics.shapes_judge`).

A *mode* is one (shape, colour, background) triple, numbered
``(shape * NUM_COLOURS + colour) * NUM_BACKGROUNDS + background`` (36 in all).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from giugan.data.shapes import (
    _MAX_RADIUS,
    _MIN_RADIUS,
    BACKGROUNDS,
    SHAPE_COLOURS,
    SHAPE_KINDS,
    render_shape,
)

__all__ = [
    "NUM_BACKGROUNDS",
    "NUM_COLOURS",
    "NUM_MODES",
    "NUM_SHAPES",
    "ShapeFactors",
    "mode_index",
    "render_labelled_shapes",
    "shape_factors",
]

NUM_SHAPES = len(SHAPE_KINDS)
NUM_COLOURS = len(SHAPE_COLOURS)
NUM_BACKGROUNDS = len(BACKGROUNDS)
NUM_MODES = NUM_SHAPES * NUM_COLOURS * NUM_BACKGROUNDS


class ShapeFactors(NamedTuple):
    """The factors of one image: indices into the kind/colour/background tables, and the radius."""

    shape: int
    colour: int
    background: int
    radius_fraction: float  # circumradius as a fraction of the image side


def shape_factors(seed: int, index: int) -> ShapeFactors:
    """The factors of image ``index`` of the set with ``seed`` (the same at every image size)."""
    rng = np.random.default_rng([seed, index])
    shape = int(rng.integers(NUM_SHAPES))
    colour = int(rng.integers(NUM_COLOURS))
    background = int(rng.integers(NUM_BACKGROUNDS))
    return ShapeFactors(shape, colour, background, float(rng.uniform(_MIN_RADIUS, _MAX_RADIUS)))


def mode_index(shape: int, colour: int, background: int) -> int:
    """The mode number (0-35) of a (shape, colour, background) triple."""
    return (shape * NUM_COLOURS + colour) * NUM_BACKGROUNDS + background


def render_labelled_shapes(
    num_images: int, image_size: int, seed: int, start: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render images ``start .. start + num_images - 1`` of the set with ``seed``, with labels.

    Returns:
        ``(images, labels)``: ``(N, 3, S, S)`` ``uint8`` images, identical to
        :func:`~giugan.data.shapes.render_shapes` for ``start=0``, and ``(N, 3)`` ``int64``
        labels (shape, colour, background) per image.
    """
    images = np.empty((num_images, 3, image_size, image_size), dtype=np.uint8)
    labels = np.empty((num_images, 3), dtype=np.int64)
    for row, index in enumerate(range(start, start + num_images)):
        images[row] = render_shape(seed, index, image_size)
        labels[row] = shape_factors(seed, index)[:3]
    return torch.from_numpy(images), torch.from_numpy(labels)
