"""Datasets over image files on disk (used by the image-folder and CelebA DataModules)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from giugan.data.base import CorruptDataError
from giugan.messages import first_few

__all__ = [
    "DEFAULT_EXTENSIONS",
    "ImageFileDataset",
    "decode_image",
    "find_decodable",
    "list_image_files",
    "normalise_extensions",
]

#: File extensions (lower case) treated as images by default.
DEFAULT_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
    ".ppm",
    ".pgm",
)

# Errors PIL (and its plugins) raise for undecodable or truncated files.
_DECODE_ERRORS = (OSError, UnidentifiedImageError, SyntaxError, ValueError, EOFError, IndexError)


def normalise_extensions(extensions: Sequence[str]) -> tuple[str, ...]:
    """Lower-case extensions with a leading dot (``"JPG"`` -> ``".jpg"``)."""
    if isinstance(extensions, str) or not extensions:
        raise ValueError(
            f"Invalid value {extensions!r} for argument 'extensions': expected a non-empty list "
            "of file extensions such as ['.jpg', '.png']."
        )
    normalised = []
    for extension in extensions:
        if not isinstance(extension, str) or not extension.strip("."):
            raise ValueError(
                f"Invalid entry {extension!r} in argument 'extensions': expected strings such as "
                "'.jpg' or 'png'."
            )
        normalised.append("." + extension.lower().lstrip("."))
    return tuple(dict.fromkeys(normalised))


def list_image_files(directory: Path, extensions: Iterable[str], recursive: bool) -> list[Path]:
    """Sorted image paths under ``directory`` whose suffix (lower case) is in ``extensions``.

    Hidden files and folders (names starting with ``.``) are skipped. The order is the sorted
    order of the relative POSIX paths, so it is the same on every machine. Symbolic links to
    folders are followed, but each real folder is listed once: a link back to a folder above it
    (a loop) or a second link to a folder already listed adds nothing (the first path in sorted
    order is kept).
    """
    allowed = set(extensions)
    found: list[str] = []
    if recursive:
        visited = {os.path.realpath(directory)}
        for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
            kept = []
            for name in sorted(d for d in dirnames if not d.startswith(".")):
                real = os.path.realpath(os.path.join(dirpath, name))
                if real not in visited:
                    visited.add(real)
                    kept.append(name)
            dirnames[:] = kept
            relative = Path(dirpath).relative_to(directory)
            for name in filenames:
                if not name.startswith(".") and os.path.splitext(name)[1].lower() in allowed:
                    found.append((relative / name).as_posix())
    else:
        with os.scandir(directory) as entries:
            for entry in entries:
                if (
                    not entry.name.startswith(".")
                    and os.path.splitext(entry.name)[1].lower() in allowed
                    and entry.is_file()
                ):
                    found.append(entry.name)
    return [directory / name for name in sorted(found)]


def decode_image(path: Path) -> Image.Image:
    """Open and fully decode an image (a truncated file fails here, not later).

    Raises:
        OSError and the other PIL decode errors, unchanged (callers add context).
    """
    with Image.open(path) as image:
        image.load()
        # Multi-frame files (GIF, TIFF) keep their first frame; ``copy`` detaches from the file.
        return image.copy()


def _is_decodable(path: Path) -> bool:
    try:
        decode_image(path).convert("RGB")
    except PermissionError:
        raise  # unreadable is not corrupt: skipping would hide a fixable problem
    except _DECODE_ERRORS:
        return False
    except Image.DecompressionBombError:
        return False
    return True


def find_decodable(
    paths: Sequence[Path], threads: int = 4, description: str = "image folder"
) -> list[Path]:
    """Keep the paths that decode fully, warning once about the ones that do not.

    Every file is decoded completely (``Image.verify`` misses truncated JPEGs). Decoding runs
    in ``threads`` threads (PIL releases the GIL while decoding).
    """
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        ok = list(pool.map(_is_decodable, paths, chunksize=64))
    bad = [path for path, good in zip(paths, ok) if not good]
    if bad:
        warnings.warn(
            f"skip_corrupt: excluded {len(bad)} of {len(paths)} files of the {description} "
            f"that could not be decoded as images: {first_few(bad, limit=5)}",
            stacklevel=2,
        )
    return [path for path, good in zip(paths, ok) if good]


class ImageFileDataset(Dataset[torch.Tensor]):
    """Map-style dataset: index -> transformed image tensor, from a fixed list of files.

    Args:
        paths: Image files, in the order the dataset exposes them.
        transform: Turns a decoded PIL image into a tensor (see
            :class:`giugan.data.transforms.ImageTransform`).
        fix_hint: Sentence appended to decode errors, telling the user what to do.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        transform: Callable[[Image.Image], torch.Tensor],
        fix_hint: str = "",
    ) -> None:
        self.paths = list(paths)
        self.transform = transform
        self.fix_hint = fix_hint

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        path = self.paths[index]
        try:
            image = decode_image(path)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"Image file {path} was listed when the dataset was set up but no longer exists. "
                f"Restore it, or re-create the DataModule so the file list is re-read."
            ) from None
        except PermissionError:
            raise PermissionError(
                f"Image file {path} cannot be read: permission denied (the file is there, the "
                f"account running giugan may not read it). Fix its permissions (e.g. "
                f"`chmod a+r {path}`) or remove it from the folder."
            ) from None
        except Image.DecompressionBombError as error:
            raise CorruptDataError(
                f"Image file {path} is too large to decode safely ({error}). PIL refuses images "
                f"of more than {Image.MAX_IMAGE_PIXELS:,} pixels as a guard against decompression "
                f"bombs. Downscale it, remove it, or, if you trust the file, raise "
                f"PIL.Image.MAX_IMAGE_PIXELS before training."
            ) from None
        except _DECODE_ERRORS as error:
            raise CorruptDataError(
                f"Cannot decode image file {path}: {type(error).__name__}: {error}. The file is "
                f"corrupt, truncated or not an image. {self.fix_hint}".rstrip()
            ) from error
        try:
            return self.transform(image)
        except ValueError as error:
            raise ValueError(f"Cannot transform image file {path}: {error}") from error
