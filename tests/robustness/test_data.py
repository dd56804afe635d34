"""Bad data on disk gives one paragraph naming the file or folder and the fix."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from giugan.data import CelebADataModule, CIFAR10DataModule, CorruptDataError, ImageFolderDataModule

from .helpers import assert_one_paragraph, truncated_jpeg, write_image

pytestmark = pytest.mark.usefixtures("single_thread")


def folder(root: Path, **kwargs: object) -> ImageFolderDataModule:
    return ImageFolderDataModule(
        root=str(root), num_workers=0, batch_size=1, eval_batch_size=1, **kwargs
    )  # type: ignore[arg-type]


def first_batches(datamodule) -> list[torch.Tensor]:
    """Set up for fit and read the (ordered) reference loader: this is where images are decoded."""
    datamodule.setup("fit")
    return list(datamodule.val_dataloader())


def write_cifar_batch(path: Path, data: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = {b"data": data, b"labels": [0] * len(data), b"batch_label": b"x", b"filenames": []}
    path.write_bytes(pickle.dumps(batch, protocol=2))


@pytest.mark.parametrize("kind", ["folder", "cifar10", "celeba"])
def test_missing_dataset_folder_names_it_and_the_root_key(tmp_path: Path, kind: str) -> None:
    missing = tmp_path / "not_there"
    build = {
        "folder": lambda: folder(missing),
        "cifar10": lambda: CIFAR10DataModule(root=str(missing), num_workers=0),
        "celeba": lambda: CelebADataModule(root=str(missing), num_workers=0),
    }[kind]
    with pytest.raises(FileNotFoundError) as info:
        first_batches(build())
    assert_one_paragraph(str(info.value), str(missing.resolve()), "data.init_args.root")


def test_wrong_layout_root_pointing_inside_the_dataset(tmp_path: Path) -> None:
    # The user points root at cifar-10-batches-py itself instead of the folder that contains it.
    inner = tmp_path / "cifar-10-batches-py"
    write_cifar_batch(inner / "data_batch_1", np.zeros((2, 3072), np.uint8))
    with pytest.raises(FileNotFoundError) as info:
        first_batches(CIFAR10DataModule(root=str(inner), num_workers=0))
    assert_one_paragraph(
        str(info.value),
        str(inner / "cifar-10-batches-py"),
        "'root'",
        "contains cifar-10-batches-py",
    )


def test_wrong_layout_folder_holding_only_an_archive(tmp_path: Path) -> None:
    (tmp_path / "img_align_celeba.zip").write_bytes(b"PK\x03\x04")
    with pytest.raises(FileNotFoundError) as info:
        first_batches(folder(tmp_path))
    assert_one_paragraph(str(info.value), str(tmp_path.resolve()), "extract any archive first")


def test_empty_folder_names_it_and_the_extensions(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError) as info:
        first_batches(folder(tmp_path / "empty"))
    assert_one_paragraph(
        str(info.value), str((tmp_path / "empty").resolve()), ".jpg", "'extensions'"
    )


@pytest.mark.parametrize("bad_name", ["b_truncated.jpg", "b_garbage.png"])
def test_corrupt_image_names_the_file_and_skip_corrupt(tmp_path: Path, bad_name: str) -> None:
    write_image(tmp_path / "a_good.png")
    bad = tmp_path / bad_name
    if bad.suffix == ".jpg":
        truncated_jpeg(bad)
    else:
        bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    with pytest.raises(CorruptDataError) as info:
        first_batches(folder(tmp_path))
    assert_one_paragraph(str(info.value), str(bad), "skip_corrupt: true")


def test_a_corrupt_image_met_in_a_loader_worker_still_names_the_file_and_the_fix(tmp_path: Path) -> None:
    write_image(tmp_path / "a_good.png")
    bad = truncated_jpeg(tmp_path / "b_truncated.jpg")
    data = ImageFolderDataModule(root=str(tmp_path), num_workers=1, batch_size=1, eval_batch_size=1)
    with pytest.raises(CorruptDataError) as info:
        first_batches(data)
    message = str(info.value)
    assert_one_paragraph(message, str(bad), "skip_corrupt: true", "(met in DataLoader worker process 0)")
    assert "Traceback" not in message


def test_skip_corrupt_skips_and_counts_with_one_warning(tmp_path: Path) -> None:
    for name in ("a.png", "c.png", "e.png"):
        write_image(tmp_path / name, colour=(255, 0, 0))
    truncated_jpeg(tmp_path / "b.jpg")
    (tmp_path / "d.png").write_bytes(b"not an image at all")
    with pytest.warns(UserWarning, match=r"excluded 2 of 5 files") as record:
        batches = first_batches(folder(tmp_path, skip_corrupt=True))
    assert (
        len(record) == 1 and "b.jpg" in str(record[0].message) and "d.png" in str(record[0].message)
    )
    assert len(batches) == 3
    assert all(torch.equal(b[0, :, 0, 0], torch.tensor([1.0, -1.0, -1.0])) for b in batches)


def test_grayscale_rgba_and_palette_images_load_as_rgb(tmp_path: Path) -> None:
    write_image(tmp_path / "a_gray.png", "L", colour=255)
    write_image(tmp_path / "b_rgba.png", "RGBA", colour=(0, 255, 0, 255))
    palette = Image.new("P", (32, 32), 1)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)  # index 1 = blue
    palette.save(tmp_path / "c_palette.gif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batches = first_batches(folder(tmp_path))
    colours = [tuple(b[0, :, 5, 5].tolist()) for b in batches]
    assert [b.shape for b in batches] == [(1, 3, 32, 32)] * 3
    assert colours == [(1.0, 1.0, 1.0), (-1.0, 1.0, -1.0), (-1.0, -1.0, 1.0)]


def test_images_of_other_sizes_are_resized_to_image_size(tmp_path: Path) -> None:
    for index, size in enumerate([(7, 7), (32, 32), (100, 40), (300, 500)]):
        write_image(tmp_path / f"{index}.png", size=size, colour=(0, 0, 255))
    batches = first_batches(folder(tmp_path, image_size=32))
    assert [tuple(b.shape) for b in batches] == [(1, 3, 32, 32)] * 4
    assert all(torch.allclose(b[0, :, 16, 16], torch.tensor([-1.0, -1.0, 1.0])) for b in batches)


def test_image_smaller_than_the_crop_names_the_file(tmp_path: Path) -> None:
    # CelebA crops a centre square before resizing: an image too small for it is a clear error.
    small = write_image(tmp_path / "img_align_celeba" / "000001.jpg", size=(100, 120))
    with pytest.raises(ValueError) as info:
        first_batches(
            CelebADataModule(
                root=str(tmp_path), crop_size=140, batch_size=1, eval_batch_size=1, num_workers=0
            )
        )
    assert_one_paragraph(str(info.value), str(small), "crop_size=140", "100x120")


def test_cifar_pickle_with_the_wrong_array_shape_names_the_file(tmp_path: Path) -> None:
    folder_ = tmp_path / "cifar-10-batches-py"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar_batch(folder_ / name, np.zeros((4, 3072), np.uint8))
    write_cifar_batch(folder_ / "data_batch_3", np.zeros((4, 1024), np.uint8))  # grayscale rows
    with pytest.raises(CorruptDataError) as info:
        first_batches(CIFAR10DataModule(root=str(tmp_path), num_workers=0, batch_size=2))
    assert_one_paragraph(
        str(info.value), str(folder_ / "data_batch_3"), "(4, 1024)", "(N, 3072)", "download"
    )


def test_unreadable_image_says_permission_denied_not_corrupt(tmp_path: Path, monkeypatch) -> None:
    # Tests run as root on CI, where chmod does not stop reads: the refusal is simulated at open.
    write_image(tmp_path / "a_good.png")
    locked = write_image(tmp_path / "b_locked.png")
    real_open = Image.open

    def open_refusing(path, *args, **kwargs):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Image, "open", open_refusing)
    with pytest.raises(PermissionError) as info:
        first_batches(folder(tmp_path))
    assert_one_paragraph(str(info.value), str(locked), "permission denied", "chmod a+r")
    assert "corrupt" not in str(info.value)
    # ... and skip_corrupt does not silently drop it either
    with pytest.raises(PermissionError):
        first_batches(folder(tmp_path, skip_corrupt=True))


def test_too_large_image_says_so_and_names_the_limit(tmp_path: Path, monkeypatch) -> None:
    write_image(tmp_path / "a_good.png")
    huge = write_image(tmp_path / "b_huge.png", size=(64, 64))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64*64 > 2 * 1000: a "bomb"
    with pytest.raises(CorruptDataError) as info:
        first_batches(folder(tmp_path))
    assert_one_paragraph(str(info.value), str(huge), "too large to decode safely", "MAX_IMAGE_PIXELS")
    assert "corrupt, truncated" not in str(info.value)
