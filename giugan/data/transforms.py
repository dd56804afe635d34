"""Image transforms: RGB conversion, centre crop, resize, flip and scaling to ``[-1, 1]``.

Two paths produce identical conventions:

* :class:`ImageTransform` turns a decoded PIL image into a ``(3, S, S)`` float32 tensor:
  convert to RGB -> optional centre crop of ``crop_size`` -> resize the shorter side to
  ``image_size`` (bilinear, antialiased) -> centre crop to a square ``image_size`` (a no-op for
  square inputs) -> optional random horizontal flip -> scale ``uint8`` ``[0, 255]`` to
  ``[-1, 1]`` via ``x / 127.5 - 1``.
* :func:`uint8_to_signed_unit` and :func:`random_hflip` do the last two steps for datasets held in
  memory as ``uint8`` tensors (CIFAR-10, the synthetic shapes).

Centre-crop offsets follow torchvision (``round((H - crop) / 2)``), the same rounding as the
DCGAN-TensorFlow CelebA code: a 178x218 ``img_align_celeba`` image cropped to 140 keeps columns
19..158 and rows 39..178.
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageOps
from torchvision.transforms import InterpolationMode

__all__ = ["ImageTransform", "random_hflip", "to_rgb", "uint8_to_signed_unit"]

_WHITE = (255, 255, 255)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL image to 8-bit RGB.

    Grayscale, palette, CMYK and YCbCr images are converted with PIL's standard matrices;
    images with transparency (RGBA, LA, palette + transparency) are composited over a white
    background, so transparent pixels do not turn into arbitrary stored colours; 16- and
    32-bit grayscale images are rescaled to 8 bits by their dtype range. EXIF orientation is
    applied first (camera photos in an image folder come out upright).
    """
    image = ImageOps.exif_transpose(image) or image
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        array = np.asarray(image, dtype=np.float64) / 257.0
        return Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode in ("I", "F"):
        array = np.asarray(image, dtype=np.float64)
        if array.size and (array.max() > 255 or array.min() < 0):
            low, high = float(array.min()), float(array.max())
            array = (array - low) / max(high - low, 1e-12) * 255.0
        return Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8)).convert("RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def uint8_to_signed_unit(images: torch.Tensor) -> torch.Tensor:
    """Map ``uint8`` values ``0..255`` to float32 ``[-1, 1]`` (``x / 127.5 - 1``)."""
    return images.to(torch.float32).div_(127.5).sub_(1.0)


def random_hflip(image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror a ``(..., H, W)`` tensor horizontally with probability 1/2.

    Uses ``generator`` when given, else torch's default RNG (seeded per DataLoader worker).
    """
    if torch.rand((), generator=generator).item() < 0.5:
        return image.flip(-1)
    return image


class ImageTransform:
    """PIL image -> ``(3, image_size, image_size)`` float32 tensor in ``[-1, 1]``.

    Args:
        image_size: Output side length in pixels.
        crop_size: Side of the centre square cropped *before* resizing (e.g. 140 or 160 for
            CelebA); ``None`` keeps the whole image.
        hflip: Mirror horizontally with probability 1/2 (training only).
    """

    def __init__(self, image_size: int, crop_size: int | None = None, hflip: bool = False) -> None:
        self.image_size = image_size
        self.crop_size = crop_size
        self.hflip = hflip

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(image_size={self.image_size}, crop_size={self.crop_size}, "
            f"hflip={self.hflip})"
        )

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """Apply the transform.

        Raises:
            ValueError: If ``crop_size`` exceeds the image's width or height (the caller adds
                the file name).
        """
        image = to_rgb(image)
        if self.crop_size is not None:
            width, height = image.size
            if self.crop_size > min(width, height):
                raise ValueError(
                    f"crop_size={self.crop_size} is larger than the image ({width}x{height} "
                    "pixels, width x height); set 'crop_size' to at most the smaller side, or "
                    "null to keep the whole image."
                )
            image = TF.center_crop(image, [self.crop_size, self.crop_size])
        if image.size != (self.image_size, self.image_size):
            image = TF.resize(
                image, [self.image_size], interpolation=InterpolationMode.BILINEAR, antialias=True
            )
            image = TF.center_crop(image, [self.image_size, self.image_size])
        tensor = uint8_to_signed_unit(TF.pil_to_tensor(image))
        if self.hflip:
            tensor = random_hflip(tensor)
        return tensor
