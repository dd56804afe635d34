"""A built-in synthetic dataset: one coloured shape on a plain background (no download).

Each image holds a single filled circle, square or triangle in one of six saturated colours,
at a random position and size, on a plain light or dark background, antialiased by 4x
supersampling. The distribution is simple enough that a small GAN visibly learns it on a laptop
CPU within minutes (the quickstart), yet has discrete (shape, colour, background) and continuous
(position, size) factors to show mode coverage.

Image ``i`` depends only on ``(seed, i, image_size)``: it is drawn from
``numpy.random.default_rng([seed, i])``, never from global RNG state, so the set is identical on
every machine and a larger ``num_images`` only appends images.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

from giugan.data.base import ImageDataModule, InMemoryImageDataset
from giugan.validation import check_image_size, check_int

__all__ = ["SHAPE_COLOURS", "SHAPE_KINDS", "ShapesDataModule", "render_shape", "render_shapes"]

SHAPE_KINDS: tuple[str, ...] = ("circle", "square", "triangle")
SHAPE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (220, 40, 40),  # red
    (40, 170, 60),  # green
    (40, 80, 220),  # blue
    (240, 190, 20),  # yellow
    (190, 40, 190),  # magenta
    (20, 180, 200),  # cyan
)
BACKGROUNDS: tuple[tuple[int, int, int], ...] = ((235, 235, 235), (25, 25, 25))
_SUPERSAMPLING = 4
_MIN_RADIUS, _MAX_RADIUS = 0.18, 0.38  # circumradius as a fraction of the image side


def render_shape(seed: int, index: int, image_size: int) -> np.ndarray:
    """Render image ``index`` of the set with ``seed`` as a ``(3, S, S)`` ``uint8`` array."""
    rng = np.random.default_rng([seed, index])
    kind = SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))]
    colour = SHAPE_COLOURS[int(rng.integers(len(SHAPE_COLOURS)))]
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    big = image_size * _SUPERSAMPLING
    radius = rng.uniform(_MIN_RADIUS, _MAX_RADIUS) * big
    cx, cy = rng.uniform(radius, big - radius, size=2)
    canvas = Image.new("RGB", (big, big), background)
    draw = ImageDraw.Draw(canvas)
    if kind == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
    elif kind == "square":
        half = radius / np.sqrt(2.0)  # square inscribed in the circumcircle
        draw.rectangle((cx - half, cy - half, cx + half, cy + half), fill=colour)
    else:
        angles = np.deg2rad([-90.0, 30.0, 150.0])  # upright equilateral triangle
        points = [(cx + radius * np.cos(a), cy + radius * np.sin(a)) for a in angles]
        draw.polygon(points, fill=colour)
    small = canvas.resize((image_size, image_size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.uint8).transpose(2, 0, 1).copy()


def render_shapes(num_images: int, image_size: int, seed: int) -> torch.Tensor:
    """Render the whole set as a ``(num_images, 3, S, S)`` ``uint8`` tensor."""
    images = np.empty((num_images, 3, image_size, image_size), dtype=np.uint8)
    for index in range(num_images):
        images[index] = render_shape(seed, index, image_size)
    return torch.from_numpy(images)


class ShapesDataModule(ImageDataModule):
    """Synthetic coloured shapes, rendered once in memory at setup (about 1 s per 10k at 32px).

    The training and reference splits are the same ``num_images`` images (the reference split
    without flips). The loader setting ``seed`` seeds the images themselves as well as the
    training shuffle.

    Args:
        num_images: Number of images in the set.
        image_size: Output side in pixels.
        **kwargs: The loader settings of :class:`~giugan.data.base.ImageDataModule`.
    """

    def __init__(
        self,
        num_images: int = 2048,
        image_size: int = 32,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_images = check_int(
            "num_images", num_images, 1, hint="It is the number of synthetic images to render."
        )
        self._image_size = check_image_size(image_size)
        self._images: torch.Tensor | None = None

    @property
    def image_size(self) -> int:
        """Output side in pixels."""
        return self._image_size

    @property
    def reference_id(self) -> str:
        """``shapes-seed<seed>-n<num_images>-<image_size>``."""
        return f"shapes-seed{self.seed}-n{self.num_images}-{self.image_size}"

    @property
    def images(self) -> torch.Tensor:
        """The rendered set, ``(num_images, 3, S, S)`` ``uint8`` (rendered on first access)."""
        if self._images is None:
            self._images = render_shapes(self.num_images, self.image_size, self.seed)
        return self._images

    def _build_dataset(self, reference: bool) -> Dataset[torch.Tensor]:
        return InMemoryImageDataset(self.images, hflip=self.hflip and not reference)
