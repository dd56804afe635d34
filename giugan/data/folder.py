"""A folder of images of any layout (class sub-folders are ignored)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from giugan.data.base import ImageDataModule, path_digest
from giugan.data.files import (
    DEFAULT_EXTENSIONS,
    ImageFileDataset,
    find_decodable,
    list_image_files,
    normalise_extensions,
)
from giugan.data.transforms import ImageTransform
from giugan.validation import check_bool, check_image_size, check_int, check_path

__all__ = ["ImageFolderDataModule"]


class ImageFolderDataModule(ImageDataModule):
    """Every image under ``root`` (recursively), e.g. an extracted ``test/<class>/NNNN.jpg`` tree.

    Files are taken in sorted order of their relative paths; sub-folders (classes) carry no
    meaning. Each image is converted to RGB, optionally centre-cropped to ``crop_size``, resized
    (shorter side, bilinear, antialiased) and centre-cropped to ``image_size`` squared. The
    reference split is the same set of images, without flips.

    A file that cannot be decoded raises an error naming it. With ``skip_corrupt: true`` every file
    is fully decoded once at setup and the undecodable ones are excluded, with one warning that
    counts them.

    Args:
        root: Folder holding the images (any depth).
        image_size: Output side in pixels.
        crop_size: Centre square cropped before resizing; ``None`` keeps the whole image.
        skip_corrupt: Scan all files at setup and drop undecodable ones instead of failing.
        extensions: File extensions treated as images (case-insensitive).
        **kwargs: The loader settings of :class:`~giugan.data.base.ImageDataModule`.
    """

    def __init__(
        self,
        root: str,
        image_size: int = 32,
        crop_size: int | None = None,
        skip_corrupt: bool = False,
        extensions: Sequence[str] = DEFAULT_EXTENSIONS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = check_path("root", root, "the path of a folder of images")
        self._image_size = check_image_size(image_size)
        if crop_size is not None:
            check_int(
                "crop_size",
                crop_size,
                1,
                hint="It is the side of the centre square cropped before resizing; use null for "
                "none.",
            )
        self.crop_size = crop_size
        self.skip_corrupt = check_bool("skip_corrupt", skip_corrupt)
        self.extensions = normalise_extensions(extensions)
        self._paths: list[Path] | None = None

    @property
    def image_size(self) -> int:
        """Output side in pixels."""
        return self._image_size

    @property
    def reference_id(self) -> str:
        """``folder-<sha1(abs root)[:12]>-<image_size>-crop<crop_size>|nocrop``."""
        crop = f"crop{self.crop_size}" if self.crop_size is not None else "nocrop"
        return f"folder-{path_digest(self.root)}-{self.image_size}-{crop}"

    def _fix_hint(self) -> str:
        return (
            "Delete or replace the file, or set 'skip_corrupt: true' (data.init_args.skip_corrupt) "
            "to exclude undecodable files at setup."
        )

    def image_paths(self) -> list[Path]:
        """The image files used (sorted; corrupt ones excluded when ``skip_corrupt``)."""
        if self._paths is None:
            if not self.root.exists():
                raise FileNotFoundError(
                    f"Image folder {self.root.resolve()} does not exist. ImageFolderDataModule "
                    "expects a folder holding image files (any depth, e.g. "
                    "<root>/<class>/<name>.jpg). Set 'root' (data.init_args.root) to an existing "
                    "folder."
                )
            if not self.root.is_dir():
                raise NotADirectoryError(
                    f"Image folder root {self.root.resolve()} is a file, not a folder. Set 'root' "
                    "(data.init_args.root) to the folder that holds the images (extract archives "
                    "first)."
                )
            paths = list_image_files(self.root, self.extensions, recursive=True)
            if not paths:
                raise FileNotFoundError(
                    f"No image files found under {self.root.resolve()} (searched recursively for "
                    f"extensions {', '.join(self.extensions)}). Point 'root' at the folder that "
                    "contains the images, extract any archive first, or extend 'extensions'."
                )
            if self.skip_corrupt:
                paths = find_decodable(
                    paths, threads=max(4, self.num_workers), description=f"folder {self.root}"
                )
                if not paths:
                    raise FileNotFoundError(
                        f"None of the files under {self.root.resolve()} could be decoded as an "
                        "image, so nothing is left after skip_corrupt. Check that 'root' points "
                        "at the right folder and that the files are images."
                    )
            self._paths = paths
        return self._paths

    def _build_dataset(self, reference: bool) -> Dataset[torch.Tensor]:
        transform = ImageTransform(
            self.image_size, crop_size=self.crop_size, hflip=self.hflip and not reference
        )
        return ImageFileDataset(self.image_paths(), transform, fix_hint=self._fix_hint())
