"""Writers of tiny datasets in the real on-disk formats (CIFAR-10 pickles, CelebA, folders)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR_TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_IMAGES_PER_TRAIN_FILE = 4
CIFAR_IMAGES_IN_TEST_FILE = 3


def cifar_images(file_index: int, count: int) -> np.ndarray:
    """Deterministic ``(count, 3, 32, 32)`` uint8 images; file ``k`` image ``j`` is distinct."""
    rng = np.random.default_rng([7, file_index])
    images = rng.integers(0, 256, size=(count, 3, 32, 32), dtype=np.uint8)
    # A per-image signature in the top-left pixel of the red channel: 40 * file + image.
    images[:, 0, 0, 0] = 40 * file_index + np.arange(count)
    return images


def write_cifar_batch(path: Path, images: np.ndarray, **overrides: object) -> None:
    """Write one batch file exactly as the official python pickles are laid out."""
    batch: dict[bytes, object] = {
        b"batch_label": f"batch of {path.name}".encode(),
        b"labels": [int(i % 10) for i in range(len(images))],
        b"data": images.reshape(len(images), 3072),
        b"filenames": [f"img_{i}.png".encode() for i in range(len(images))],
    }
    batch.update({k.encode(): v for k, v in overrides.items()})
    with path.open("wb") as handle:
        pickle.dump(batch, handle, protocol=2)


def write_cifar10(root: Path) -> dict[str, np.ndarray]:
    """Write all six batch files under ``root/cifar-10-batches-py``; return the images per split."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train = []
    for k, name in enumerate(CIFAR_TRAIN_FILES):
        images = cifar_images(k, CIFAR_IMAGES_PER_TRAIN_FILE)
        write_cifar_batch(folder / name, images)
        train.append(images)
    test = cifar_images(5, CIFAR_IMAGES_IN_TEST_FILE)
    write_cifar_batch(folder / "test_batch", test)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"airplane"]}))
    return {"train": np.concatenate(train), "test": test}


def celeba_face(colour: tuple[int, int, int], size: tuple[int, int] = (178, 218)) -> Image.Image:
    """A 178x218 stand-in for an aligned face: red border, ``colour`` centre 150x150, and a
    black 10x10 marker in the middle."""
    width, height = size
    image = Image.new("RGB", size, (255, 0, 0))
    left, top = (width - 150) // 2, (height - 150) // 2
    image.paste(colour, (left, top, left + 150, top + 150))
    image.paste((0, 0, 0), (width // 2 - 5, height // 2 - 5, width // 2 + 5, height // 2 + 5))
    return image


CELEBA_PARTITION = {
    "000001.jpg": 0,
    "000002.jpg": 0,
    "000003.jpg": 0,
    "000004.jpg": 1,
    "000005.jpg": 1,
    "000006.jpg": 2,
}


def write_celeba_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        shade = 40 * index
        celeba_face((0, 0 + shade // 2, 255 - shade)).save(folder / name, quality=95)


def write_celeba_torchvision(root: Path, partition: dict[str, int] | None = None) -> Path:
    """``root/celeba/img_align_celeba/*.jpg`` + ``root/celeba/list_eval_partition.txt``."""
    partition = CELEBA_PARTITION if partition is None else partition
    base = root / "celeba"
    write_celeba_images(base / "img_align_celeba", sorted(partition))
    lines = [f"{name} {code}" for name, code in partition.items()]
    (base / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return base


def truncated_jpeg(path: Path, size: tuple[int, int] = (40, 30)) -> None:
    """A JPEG cut in half: the header parses, full decoding fails."""
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(noise).save(path, format="JPEG", quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
