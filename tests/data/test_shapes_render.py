"""Labels of the built-in shapes set: the replayed factors match what render_shape drew."""

from __future__ import annotations

import math

import pytest
import torch

from giugan.data.shapes import BACKGROUNDS, SHAPE_COLOURS, render_shapes
from giugan.data.shapes_render import (
    NUM_MODES,
    mode_index,
    render_labelled_shapes,
    shape_factors,
)

# Area of a shape of circumradius 1: circle, inscribed square, equilateral triangle.
UNIT_AREAS = (math.pi, 2.0, 3 * math.sqrt(3) / 4)


@pytest.mark.parametrize("image_size", [32, 64])
def test_labels_match_the_rendered_colour_background_and_area(image_size: int) -> None:
    images, labels = render_labelled_shapes(60, image_size, seed=3)
    assert torch.equal(images, render_shapes(60, image_size, seed=3))
    colours = torch.tensor(SHAPE_COLOURS)
    backgrounds = torch.tensor(BACKGROUNDS)
    for index, (image, (shape, colour, background)) in enumerate(zip(images, labels)):
        pixels = image.flatten(1).T.double()
        assert torch.equal(pixels[0], backgrounds[background].double())  # top-left corner
        # Box downsampling is linear: each pixel mixes the two colours in proportion to its cover,
        # so the mean mixing weight is the shape's area fraction.
        direction = (colours[colour] - backgrounds[background]).double()
        weights = (pixels - backgrounds[background]) @ direction / direction.dot(direction)
        radius = shape_factors(3, index).radius_fraction
        expected = UNIT_AREAS[shape] * radius**2
        # PIL fills boundary pixels too (a few % more); the three kinds differ by over 35 %.
        assert weights.mean() == pytest.approx(expected, rel=0.1), (index, shape)


def test_render_from_an_offset_equals_the_tail_of_the_set() -> None:
    tail, tail_labels = render_labelled_shapes(5, 16, seed=1, start=7)
    whole, labels = render_labelled_shapes(12, 16, seed=1)
    assert torch.equal(tail, whole[7:]) and torch.equal(tail_labels, labels[7:])


def test_modes_are_numbered_0_to_35_and_all_occur() -> None:
    numbers = {mode_index(s, c, b) for s in range(3) for c in range(6) for b in range(2)}
    assert numbers == set(range(NUM_MODES))
    _, labels = render_labelled_shapes(2000, 16, seed=0)
    modes = [mode_index(*row) for row in labels.tolist()]
    assert set(modes) == set(range(NUM_MODES))
