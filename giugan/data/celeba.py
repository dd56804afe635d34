"""CelebA aligned faces (``img_align_celeba``), centre-cropped then resized.

Accepted layouts, tried in this order:

1. torchvision's: ``<root>/celeba/img_align_celeba/*.jpg`` with
   ``<root>/celeba/list_eval_partition.txt`` (lines ``000001.jpg 0``; 0/1/2 = train/valid/test:
   162,770 / 19,867 / 19,962 images).
2. A plain folder of aligned JPGs: ``<root>/img_align_celeba/*.jpg`` (a partition file beside
   it, ``<root>/list_eval_partition.txt``, is used when present).
3. ``<root>`` itself holding the JPGs (``<root>/list_eval_partition.txt`` used when present).

Without a partition file there are no official splits: ``train`` and ``all`` both mean every
image found, and ``valid``/``test`` raise an error. The reference id then names the folder (not
``celeba-train``), so statistics of a partial copy are never confused with the official split.

Crop protocol: each 178x218 image is centre-cropped to ``crop_size`` and resized to
``image_size``. heykeetae's Self-Attention-GAN (the GIU-GANs code base) crops 160; the common
DCGAN-CelebA protocol crops 108 (Radford et al.'s TensorFlow port) or 140 (e.g. the iGAN report).
The configs set it explicitly; the default here is 140.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import Dataset

from giugan.data.base import (
    CorruptDataError,
    DataDownloadFailed,
    ImageDataModule,
    folders_removed_on_failure,
    path_digest,
)
from giugan.data.files import ImageFileDataset, list_image_files
from giugan.data.transforms import ImageTransform
from giugan.messages import first_few
from giugan.validation import check_bool, check_choice, check_image_size, check_int, check_path

__all__ = ["CelebADataModule", "read_partition_file"]

PARTITION_FILE = "list_eval_partition.txt"
IMAGE_FOLDER = "img_align_celeba"
SPLIT_CODES: dict[str, int | None] = {"train": 0, "valid": 1, "test": 2, "all": None}
_SPLITS = ("train", "valid", "test", "all")
_EXTENSIONS = (".jpg", ".jpeg", ".png")


def read_partition_file(path: Path) -> dict[str, int]:
    """Parse ``list_eval_partition.txt`` into ``{file name: 0|1|2}``.

    Raises:
        CorruptDataError: On a malformed line (the message gives file and line number).
    """
    partition: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise CorruptDataError(
            f"CelebA partition file {path} is not a text file ({error}). Expected lines such as "
            "'000001.jpg 0' (0/1/2 = train/valid/test); re-download list_eval_partition.txt."
        ) from error
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise CorruptDataError(
                f"CelebA partition file {path}, line {number}: {line.strip()!r} is not of the form "
                "'<image>.jpg <0|1|2>' (0/1/2 = train/valid/test). Re-download "
                "list_eval_partition.txt (from the CelebA Google Drive 'Eval' folder, or with "
                "'download: true')."
            )
        partition[fields[0]] = int(fields[1])
    if not partition:
        raise CorruptDataError(
            f"CelebA partition file {path} is empty. Expected one line per image such as "
            "'000001.jpg 0'; re-download list_eval_partition.txt or delete it to use the folder "
            "as a plain set of images (split 'train'/'all' only)."
        )
    return partition


class CelebADataModule(ImageDataModule):
    """CelebA aligned faces at ``image_size`` after a ``crop_size`` centre crop.

    Args:
        root: Folder containing ``celeba/`` (torchvision), ``img_align_celeba/``, or the JPGs.
        crop_size: Side of the centre square cut from each 178x218 image before resizing
            (160 in heykeetae's SAGAN code; 108 or 140 in DCGAN-style CelebA code).
        image_size: Output side in pixels (64 in the papers).
        split: Training images: official ``train``/``valid``/``test`` partition or ``all``.
        reference_split: Images of the validation loader / FID reference statistics.
        download: Download with ``torchvision.datasets.CelebA`` when missing (needs ``gdown``
            and network access; Google Drive quotas often make it fail).
        **kwargs: The loader settings of :class:`~giugan.data.base.ImageDataModule`.
    """

    def __init__(
        self,
        root: str = "data",
        crop_size: int = 140,
        image_size: int = 64,
        split: Literal["train", "valid", "test", "all"] = "train",
        reference_split: Literal["train", "valid", "test", "all"] = "train",
        download: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = check_path(
            "root",
            root,
            f"the folder that contains 'celeba/{IMAGE_FOLDER}', '{IMAGE_FOLDER}' or the aligned "
            "JPGs",
        )
        self.crop_size = check_int(
            "crop_size",
            crop_size,
            1,
            hint="It is the side of the centre square cut from each 178x218 aligned image before "
            "resizing (at most 178; 108, 140 or 160 in published code).",
        )
        if crop_size > 178:
            raise ValueError(
                f"Invalid value {crop_size!r} for argument 'crop_size': aligned CelebA images are "
                "178 pixels wide, so the centre crop must be at most 178 (108, 140 or 160 in "
                "published code)."
            )
        self._image_size = check_image_size(image_size)
        self.split = check_choice("split", split, _SPLITS, hint="It selects the training images.")
        self.reference_split = check_choice(
            "reference_split",
            reference_split,
            _SPLITS,
            hint="It selects the images real-image (FID) statistics are computed from.",
        )
        self.download = check_bool("download", download)
        self._files: dict[str, list[Path]] = {}

    # ----------------------------------------------------------------- layout
    def _layout(self) -> tuple[Path, Path]:
        """``(image folder, partition file path)`` of the first layout found on disk.

        The partition file path is where that layout keeps it; it may not exist.
        """
        torchvision_dir = self.root / "celeba" / IMAGE_FOLDER
        plain_dir = self.root / IMAGE_FOLDER
        if torchvision_dir.is_dir() or (self.download and not plain_dir.is_dir()):
            return torchvision_dir, self.root / "celeba" / PARTITION_FILE
        if plain_dir.is_dir():
            return plain_dir, self.root / PARTITION_FILE
        if self.root.is_dir():
            return self.root, self.root / PARTITION_FILE
        raise FileNotFoundError(
            f"CelebA folder {self.root.resolve()} does not exist. Expected torchvision's layout "
            f"<root>/celeba/{IMAGE_FOLDER}/000001.jpg ... with <root>/celeba/{PARTITION_FILE}, "
            f"or a plain folder <root>/{IMAGE_FOLDER}/*.jpg, or <root>/*.jpg. Set 'root' "
            "(data.init_args.root) to it, or 'download: true' to fetch CelebA with torchvision "
            "(needs gdown and network access)."
        )

    @property
    def has_partition(self) -> bool:
        """Whether an official partition file was found (official splits available)."""
        return self._layout()[1].is_file()

    @property
    def image_size(self) -> int:
        """Output side in pixels."""
        return self._image_size

    @property
    def reference_id(self) -> str:
        """``celeba-<reference_split>-<size>-crop<crop>``, or for a folder without partition file
        ``celeba-folder-<sha1(abs image folder)[:12]>-<size>-crop<crop>``."""
        suffix = f"{self.image_size}-crop{self.crop_size}"
        try:
            image_dir, partition = self._layout()
        except FileNotFoundError:
            return f"celeba-{self.reference_split}-{suffix}"
        if not partition.is_file() and not self.download:
            return f"celeba-folder-{path_digest(image_dir)}-{suffix}"
        return f"celeba-{self.reference_split}-{suffix}"

    # ----------------------------------------------------------------- files
    def split_files(self, split: str) -> list[Path]:
        """Sorted image paths of ``split`` (``train``/``valid``/``test``/``all``)."""
        if split in self._files:
            return self._files[split]
        image_dir, partition_path = self._layout()
        if not image_dir.is_dir():
            raise FileNotFoundError(
                f"CelebA image folder {image_dir.resolve()} does not exist (download: true was "
                "set; did prepare_data run?). Expected torchvision's layout "
                f"<root>/celeba/{IMAGE_FOLDER}/000001.jpg ... with <root>/celeba/{PARTITION_FILE}."
            )
        on_disk = list_image_files(image_dir, _EXTENSIONS, recursive=False)
        if not partition_path.is_file():
            if split not in ("train", "all"):
                raise FileNotFoundError(
                    f"CelebA split '{split}' needs the partition file {partition_path} "
                    f"(lines '000001.jpg 0', 0/1/2 = train/valid/test), which does not exist. "
                    "Without it the folder is one unsplit set: use split/"
                    "reference_split 'train' or 'all', or put list_eval_partition.txt there."
                )
            files = on_disk
        else:
            partition = read_partition_file(partition_path)
            code = SPLIT_CODES[split]
            wanted = sorted(name for name, c in partition.items() if code is None or c == code)
            present = {path.name for path in on_disk}
            missing = [name for name in wanted if name not in present]
            if missing:
                raise FileNotFoundError(
                    f"{len(missing)} of the {len(wanted)} images of CelebA split '{split}' listed "
                    f"in {partition_path} are missing from {image_dir} (e.g. "
                    f"{first_few(missing)}). Extract the complete img_align_celeba.zip there, or "
                    f"remove {partition_path} to use the images present as one unsplit set "
                    "(split 'train'/'all')."
                )
            files = [image_dir / name for name in wanted]
        if not files:
            raise FileNotFoundError(
                f"No CelebA images (.jpg/.jpeg/.png) found in {image_dir.resolve()}. Expected "
                f"torchvision's layout <root>/celeba/{IMAGE_FOLDER}/000001.jpg ..., or a plain "
                f"folder of aligned JPGs. Set 'root' (data.init_args.root) or 'download: true'."
            )
        self._files[split] = files
        return files

    def prepare_data(self) -> None:
        """Download CelebA with torchvision when ``download`` is set and no images are found."""
        if not self.download:
            return
        image_dir, partition = self._layout()
        if partition.is_file() and image_dir.is_dir() and os.listdir(image_dir):
            return
        try:
            from torchvision.datasets import CelebA

            with folders_removed_on_failure(self.root / "celeba"):
                CelebA(root=str(self.root), split="all", target_type=[], download=True)
        except Exception as error:
            raise DataDownloadFailed(
                f"Downloading CelebA into {(self.root / 'celeba').resolve()} failed "
                f"({type(error).__name__}: {error}). torchvision downloads from Google Drive and "
                "needs the 'gdown' package, network access and a Drive quota that is often "
                "exhausted. Download img_align_celeba.zip and list_eval_partition.txt by hand from "
                "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html, extract them to "
                f"{self.root.resolve()}/celeba/{IMAGE_FOLDER}/ and "
                f"{self.root.resolve()}/celeba/{PARTITION_FILE}, and set 'download: false'."
            ) from error

    def _build_dataset(self, reference: bool) -> Dataset[torch.Tensor]:
        transform = ImageTransform(
            self.image_size, crop_size=self.crop_size, hflip=self.hflip and not reference
        )
        files = self.split_files(self.reference_split if reference else self.split)
        return ImageFileDataset(
            files,
            transform,
            fix_hint=(
                "Re-extract img_align_celeba.zip (or re-download with 'download: true'), or "
                "use ImageFolderDataModule with 'skip_corrupt: true' for a folder with bad files."
            ),
        )
