"""Data layer: LightningDataModules yielding ``(B, 3, H, W)`` float32 images in ``[-1, 1]``.

* :class:`CIFAR10DataModule` - torchvision's ``cifar-10-batches-py`` (32x32).
* :class:`CelebADataModule` - ``img_align_celeba``, centre crop then resize (64x64).
* :class:`ImageFolderDataModule` - any folder of images.
* :class:`ShapesDataModule` - built-in synthetic shapes, no download (the quickstart).
"""

from giugan.data.base import CorruptDataError, ImageDataModule
from giugan.data.celeba import CelebADataModule
from giugan.data.cifar10 import CIFAR10DataModule
from giugan.data.folder import ImageFolderDataModule
from giugan.data.shapes import ShapesDataModule

__all__ = [
    "CIFAR10DataModule",
    "CelebADataModule",
    "CorruptDataError",
    "ImageDataModule",
    "ImageFolderDataModule",
    "ShapesDataModule",
]
