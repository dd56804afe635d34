"""ImageFolderDataModule over a folder of mixed real image files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from giugan.data import CorruptDataError, ImageFolderDataModule

from .helpers import truncated_jpeg


@pytest.fixture()
def mixed_folder(tmp_path: Path) -> Path:
    """Class sub-folders holding PNG/JPG/GIF/BMP files of every colour mode and several sizes."""
    root = tmp_path / "images"
    (root / "cats").mkdir(parents=True)
    (root / "dogs" / "deeper").mkdir(parents=True)
    Image.new("RGB", (32, 32), (255, 0, 0)).save(root / "cats" / "a_red.png")
    Image.new("RGB", (48, 40), (0, 0, 255)).save(root / "cats" / "b_blue.JPG", quality=95)
    Image.new("L", (20, 20), 128).save(root / "cats" / "c_gray.png")
    Image.new("RGBA", (64, 64), (0, 255, 0, 255)).save(root / "dogs" / "d_rgba.png")
    palette = Image.new("P", (16, 24), 1)
    palette.putpalette([0, 0, 0, 255, 255, 0] + [0] * 762)
    palette.save(root / "dogs" / "e_palette.gif")
    Image.new("RGB", (100, 30), (255, 255, 255)).save(root / "dogs" / "deeper" / "f_wide.bmp")
    (root / "dogs" / "notes.txt").write_text("not an image")
    Image.new("RGB", (8, 8)).save(root / "cats" / ".hidden.png")
    return root


EXPECTED_ORDER = [
    "cats/a_red.png",
    "cats/b_blue.JPG",
    "cats/c_gray.png",
    "dogs/d_rgba.png",
    "dogs/deeper/f_wide.bmp",
    "dogs/e_palette.gif",
]
EXPECTED_COLOURS = [
    (1, -1, -1),
    (-1, -1, 1),
    (0.0039, 0.0039, 0.0039),
    (-1, 1, -1),
    (1, 1, 1),
    (1, 1, -1),
]


def make(root: Path, **kwargs: object) -> ImageFolderDataModule:
    kwargs = {"num_workers": 0, "batch_size": 2, **kwargs}
    return ImageFolderDataModule(root=str(root), **kwargs)  # type: ignore[arg-type]


def test_every_mode_and_size_loads_as_rgb_in_sorted_order(mixed_folder: Path) -> None:
    dm = make(mixed_folder, eval_batch_size=4)
    dm.setup("fit")
    assert [p.relative_to(mixed_folder).as_posix() for p in dm.image_paths()] == EXPECTED_ORDER
    images = torch.cat(list(dm.val_dataloader()))
    assert images.shape == (6, 3, 32, 32) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    for image, colour in zip(images, EXPECTED_COLOURS, strict=True):
        centre = image[:, 16, 16]
        torch.testing.assert_close(
            centre, torch.tensor(colour, dtype=torch.float32), atol=0.03, rtol=0
        )
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (2, 3, 32, 32)
    assert dm.num_reference_images == 6


def test_image_size_and_crop(mixed_folder: Path) -> None:
    (mixed_folder / "cats" / "b_blue.JPG").unlink()
    for path in [mixed_folder / "cats" / "c_gray.png", mixed_folder / "dogs" / "e_palette.gif"]:
        path.unlink()
    # Remaining images are at least 30 pixels on each side; crop 30 then resize to 64.
    dm = make(mixed_folder, image_size=64, crop_size=30)
    dm.setup("validate")
    assert next(iter(dm.val_dataloader())).shape == (3, 3, 64, 64)


def test_crop_larger_than_an_image_names_the_file(mixed_folder: Path) -> None:
    dm = make(mixed_folder, crop_size=25, eval_batch_size=10)
    dm.setup("validate")
    with pytest.raises(ValueError, match=r"c_gray\.png: crop_size=25 is larger than the image"):
        next(iter(dm.val_dataloader()))


def test_truncated_jpeg_fails_naming_the_file_and_skip_corrupt(mixed_folder: Path) -> None:
    bad = mixed_folder / "cats" / "broken.jpg"
    truncated_jpeg(bad)
    with Image.open(bad) as image:
        image.verify()  # the header alone looks fine: only a full decode finds the damage
    dm = make(mixed_folder, eval_batch_size=10)
    dm.setup("validate")
    with pytest.raises(CorruptDataError) as info:
        next(iter(dm.val_dataloader()))
    assert str(bad) in str(info.value) and "skip_corrupt: true" in str(info.value)


def test_skip_corrupt_excludes_bad_files_with_one_warning(mixed_folder: Path) -> None:
    truncated_jpeg(mixed_folder / "cats" / "broken.jpg")
    (mixed_folder / "dogs" / "fake.png").write_bytes(b"\x89PNG but not really")
    dm = make(mixed_folder, skip_corrupt=True, eval_batch_size=10)
    with pytest.warns(UserWarning) as record:
        dm.setup("fit")
    assert len(record) == 1
    message = str(record[0].message)
    assert "excluded 2 of 8 files" in message and "broken.jpg" in message and "fake.png" in message
    assert dm.num_reference_images == 6 and dm.num_train_images == 6
    assert next(iter(dm.val_dataloader())).shape == (6, 3, 32, 32)


def test_skip_corrupt_on_clean_folder_is_silent(mixed_folder: Path) -> None:
    dm = make(mixed_folder, skip_corrupt=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dm.setup("fit")
    assert dm.num_reference_images == 6


def test_nothing_decodable_is_an_error(tmp_path: Path) -> None:
    truncated_jpeg(tmp_path / "x.jpg")
    with pytest.warns(UserWarning), pytest.raises(FileNotFoundError, match="could be decoded"):
        make(tmp_path, skip_corrupt=True).setup("fit")


def test_empty_folder_names_it_and_the_extensions(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "readme.txt").write_text("no images")
    with pytest.raises(FileNotFoundError) as info:
        make(tmp_path / "empty").setup("fit")
    assert str((tmp_path / "empty").resolve()) in str(info.value) and ".jpg" in str(info.value)


def test_missing_root_and_file_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere does not exist.*'root'"):
        make(tmp_path / "nowhere").setup("fit")
    archive = tmp_path / "images.tar.gz"
    archive.write_bytes(b"")
    with pytest.raises(NotADirectoryError, match=r"images\.tar\.gz is a file"):
        make(archive).setup("fit")


def test_extensions_are_case_insensitive_and_selectable(mixed_folder: Path) -> None:
    dm = make(mixed_folder, extensions=["PNG", ".jpg"])
    assert dm.extensions == (".png", ".jpg")
    names = [p.name for p in dm.image_paths()]
    assert names == ["a_red.png", "b_blue.JPG", "c_gray.png", "d_rgba.png"]
    with pytest.raises(ValueError, match="argument 'extensions'"):
        make(mixed_folder, extensions=[])


def test_reference_id_is_stable_and_distinct(mixed_folder: Path, monkeypatch) -> None:
    dm = make(mixed_folder)
    ref = dm.reference_id
    assert ref.startswith("folder-") and ref.endswith("-32-nocrop")
    digest = ref.split("-")[1]
    assert len(digest) == 12 and int(digest, 16) >= 0
    monkeypatch.chdir(mixed_folder.parent)
    assert make(Path("images")).reference_id == ref  # relative and absolute paths agree
    assert make(Path("images") / ".." / "images").reference_id == ref
    others = {
        make(mixed_folder, image_size=64).reference_id,
        make(mixed_folder, crop_size=30).reference_id,
        make(mixed_folder / "cats").reference_id,
    }
    assert len(others | {ref}) == 4
    assert make(mixed_folder, crop_size=30).reference_id == f"folder-{digest}-32-crop30"


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"image_size": 30}, "image_size"),
        ({"crop_size": 0}, "crop_size"),
        ({"skip_corrupt": "no"}, "skip_corrupt"),
        ({"root": ""}, "root"),
    ],
)
def test_bad_arguments_name_themselves(tmp_path: Path, kwargs: dict, argument: str) -> None:
    kwargs = {"root": str(tmp_path), **kwargs}
    with pytest.raises(ValueError, match=f"argument '{argument}'"):
        ImageFolderDataModule(**kwargs)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    Image.fromarray(np.full((32, 32), 32768, dtype=np.uint16)).save(tmp_path / "deep.png")
    dm = make(tmp_path, batch_size=1)
    dm.setup("validate")
    image = next(iter(dm.val_dataloader()))[0]
    torch.testing.assert_close(image, torch.full_like(image, 0.0), atol=0.01, rtol=0)
