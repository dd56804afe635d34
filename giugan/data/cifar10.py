"""CIFAR-10 from torchvision's on-disk format (``cifar-10-batches-py``).

Layout read (exactly what ``torchvision.datasets.CIFAR10(download=True)`` and the official
``cifar-10-python.tar.gz`` produce)::

    <root>/cifar-10-batches-py/data_batch_1 ... data_batch_5   (10,000 images each)
    <root>/cifar-10-batches-py/test_batch                      (10,000 images)

Each file is a Python pickle of a dict with ``b"data"``: a ``uint8`` array of shape ``(N, 3072)``
(row = 1024 red, 1024 green, 1024 blue values of a 32x32 image in row-major order) and
``b"labels"``: N integers. The files are read by a restricted unpickler that only admits the
numpy array constructors, so a malicious file cannot run code, and every format problem is
reported with the file's path.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from giugan.data.base import (
    CorruptDataError,
    DataDownloadFailed,
    ImageDataModule,
    InMemoryImageDataset,
    folders_removed_on_failure,
)
from giugan.validation import check_bool, check_choice, check_path

__all__ = ["CIFAR10DataModule", "read_cifar10_batch"]

CIFAR10_FOLDER = "cifar-10-batches-py"
TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES: tuple[str, ...] = ("test_batch",)
SPLIT_FILES: dict[str, tuple[str, ...]] = {
    "train": TRAIN_FILES,
    "test": TEST_FILES,
    "all": TRAIN_FILES + TEST_FILES,
}

_ALLOWED_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("__builtin__", "object"),
    ("builtins", "object"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only builds plain containers and numpy arrays."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")
        if module.endswith(".multiarray"):
            # numpy >= 2 names numpy._core, older files numpy.core: accept both spellings.
            for candidate in ("numpy._core.multiarray", "numpy.core.multiarray"):
                try:
                    return super().find_class(candidate, name)
                except (ImportError, AttributeError):
                    continue
        return super().find_class(module, name)


def _get(batch: dict[Any, Any], key: str) -> Any:
    for candidate in (key.encode("ascii"), key):
        if candidate in batch:
            return batch[candidate]
    return None


def read_cifar10_batch(path: Path) -> np.ndarray:
    """Read one CIFAR-10 python batch file into a ``(N, 3, 32, 32)`` ``uint8`` array.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CorruptDataError: If the file is not a readable pickle, lacks ``data``/``labels`` or holds
            an array of the wrong dtype or shape. The message names ``path``.
    """
    fix = (
        "Delete the folder and download CIFAR-10 again (set 'download: true', or extract the "
        "official cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html into "
        "the 'root' folder)."
    )
    if not path.is_file():
        raise FileNotFoundError(
            f"CIFAR-10 batch file {path} is missing. Expected torchvision's layout "
            f"<root>/{CIFAR10_FOLDER}/data_batch_1..data_batch_5 and test_batch. {fix}"
        )
    try:
        with path.open("rb") as handle:
            batch = _RestrictedUnpickler(handle, encoding="latin1").load()
    except Exception as error:
        raise CorruptDataError(
            f"CIFAR-10 batch file {path} could not be read as a Python pickle "
            f"({type(error).__name__}: {error}); it is truncated, corrupt or not a CIFAR-10 "
            f"python batch. {fix}"
        ) from error
    if not isinstance(batch, dict):
        raise CorruptDataError(
            f"CIFAR-10 batch file {path} holds a {type(batch).__name__}, expected a dict with "
            f"keys b'data' and b'labels'. {fix}"
        )
    data, labels = _get(batch, "data"), _get(batch, "labels")
    if data is None or labels is None:
        keys = ", ".join(repr(k) for k in batch)
        raise CorruptDataError(
            f"CIFAR-10 batch file {path} lacks the b'data' and/or b'labels' entries (found keys: "
            f"{keys}). {fix}"
        )
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        description = (
            f"a {data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else f"a {type(data).__name__}"
        )
        raise CorruptDataError(
            f"CIFAR-10 batch file {path}: b'data' is {description}, expected a uint8 array of "
            f"shape (N, 3072). {fix}"
        )
    if data.shape[1] != 3 * 32 * 32:
        raise CorruptDataError(
            f"CIFAR-10 batch file {path}: b'data' has shape {data.shape}, expected (N, 3072) "
            f"(32x32 RGB images, channel-major). {fix}"
        )
    if len(labels) != data.shape[0]:
        raise CorruptDataError(
            f"CIFAR-10 batch file {path}: {data.shape[0]} images but {len(labels)} labels. {fix}"
        )
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32))


class CIFAR10DataModule(ImageDataModule):
    """CIFAR-10 at 32x32 from ``<root>/cifar-10-batches-py`` (torchvision's format).

    The GIU-GANs and iGAN CIFAR-10 tables train on the 50,000 training images; FID reference
    statistics are reported against both train-50k and test-10k, chosen with
    ``reference_split``.

    Args:
        root: Folder that contains (or will receive) ``cifar-10-batches-py``.
        download: Download and extract CIFAR-10 with torchvision when the files are missing
            (needs network access; runs on one process only).
        train_split: Images to train on: the 50k ``train`` batches, the 10k ``test`` batch, or
            ``all`` 60k.
        reference_split: Images of the validation loader / FID reference statistics.
        **kwargs: The loader settings of :class:`~giugan.data.base.ImageDataModule`.
    """

    def __init__(
        self,
        root: str = "data",
        download: bool = False,
        train_split: Literal["train", "test", "all"] = "train",
        reference_split: Literal["train", "test"] = "train",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = check_path("root", root, f"the folder that contains '{CIFAR10_FOLDER}'")
        self.download = check_bool("download", download)
        self.train_split = check_choice(
            "train_split",
            train_split,
            ("train", "test", "all"),
            hint="It selects the training images.",
        )
        self.reference_split = check_choice(
            "reference_split",
            reference_split,
            ("train", "test"),
            hint="It selects the images real-image (FID) statistics are computed from.",
        )
        self._arrays: dict[str, torch.Tensor] = {}

    @property
    def folder(self) -> Path:
        """``<root>/cifar-10-batches-py``."""
        return self.root / CIFAR10_FOLDER

    @property
    def image_size(self) -> int:
        """Always 32."""
        return 32

    @property
    def reference_id(self) -> str:
        """``cifar10-<reference_split>-32``."""
        return f"cifar10-{self.reference_split}-32"

    def _missing_files(self) -> list[Path]:
        return [
            self.folder / name for name in SPLIT_FILES["all"] if not (self.folder / name).is_file()
        ]

    def prepare_data(self) -> None:
        """Download CIFAR-10 with torchvision when ``download`` is set and files are missing."""
        if not self.download or not self._missing_files():
            return
        try:
            from torchvision.datasets import CIFAR10

            with folders_removed_on_failure(self.root):
                CIFAR10(root=str(self.root), train=True, download=True)
        except Exception as error:
            raise DataDownloadFailed(
                f"Downloading CIFAR-10 into {self.root.resolve()} failed ({type(error).__name__}: "
                f"{error}). Without network access, download cifar-10-python.tar.gz from "
                "https://www.cs.toronto.edu/~kriz/cifar.html elsewhere, extract it so that "
                f"{self.folder.resolve()}/data_batch_1 exists, and set 'download: false'."
            ) from error

    def _load_split(self, split: str) -> torch.Tensor:
        if split not in self._arrays:
            if not self.folder.is_dir():
                raise FileNotFoundError(
                    f"CIFAR-10 folder {self.folder.resolve()} does not exist. Expected "
                    f"torchvision's layout <root>/{CIFAR10_FOLDER}/data_batch_1..data_batch_5 and "
                    "test_batch. Set 'download: true' (data.init_args.download) to fetch it, or "
                    "set 'root' (data.init_args.root) to the folder that contains "
                    f"{CIFAR10_FOLDER}."
                )
            arrays = [read_cifar10_batch(self.folder / name) for name in SPLIT_FILES[split]]
            self._arrays[split] = torch.from_numpy(np.concatenate(arrays, axis=0))
        return self._arrays[split]

    def _build_dataset(self, reference: bool) -> Dataset[torch.Tensor]:
        if reference:
            return InMemoryImageDataset(self._load_split(self.reference_split), hflip=False)
        if self.train_split == "all":
            images = torch.cat([self._load_split("train"), self._load_split("test")])
        else:
            images = self._load_split(self.train_split)
        return InMemoryImageDataset(images, hflip=self.hflip)
