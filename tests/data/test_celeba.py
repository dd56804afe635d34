"""CelebADataModule over torchvision's layout and over plain folders of aligned JPGs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from giugan.data import CelebADataModule, CorruptDataError
from giugan.data.base import DataDownloadFailed

from .helpers import CELEBA_PARTITION, truncated_jpeg, write_celeba_images, write_celeba_torchvision


def make(root: Path, **kwargs: object) -> CelebADataModule:
    kwargs = {"num_workers": 0, "batch_size": 1, "image_size": 32, **kwargs}
    return CelebADataModule(root=str(root), **kwargs)  # type: ignore[arg-type]


def reference(dm: CelebADataModule) -> torch.Tensor:
    dm.setup("validate")
    return torch.cat(list(dm.val_dataloader()))


@pytest.mark.parametrize(
    ("split", "names"),
    [
        ("train", ["000001.jpg", "000002.jpg", "000003.jpg"]),
        ("valid", ["000004.jpg", "000005.jpg"]),
        ("test", ["000006.jpg"]),
        ("all", sorted(CELEBA_PARTITION)),
    ],
)
def test_torchvision_layout_splits(tmp_path: Path, split: str, names: list[str]) -> None:
    write_celeba_torchvision(tmp_path)
    dm = make(tmp_path, split=split, reference_split=split)
    assert dm.has_partition
    assert [p.name for p in dm.split_files(split)] == names
    dm.setup("fit")
    assert dm.num_train_images == len(names) == dm.num_reference_images
    assert dm.reference_id == f"celeba-{split}-32-crop140"


def test_batches_are_cropped_then_resized(tmp_path: Path) -> None:
    write_celeba_torchvision(tmp_path)
    dm = make(tmp_path, image_size=64, crop_size=140, split="all", batch_size=3)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (3, 3, 64, 64) and batch.dtype == torch.float32
    assert batch.min() >= -1 and batch.max() <= 1
    images = reference(dm)
    # The 150x150 coloured centre fills the 140 crop: the red border is gone...
    red = (images[:, 0] > 0.5) & (images[:, 1] < -0.5) & (images[:, 2] < -0.5)
    assert not red.any()
    # ...and the black centre marker (10 px -> about 4.6 px) is still in the middle.
    assert (images[:, :, 31:33, 31:33] < -0.8).all()
    assert (images[:, 2, :4, :4] > 0.0).all()  # corners hold the blue-ish centre colour
    # Without the crop (crop_size 178 = full width) the red border shows at the top and bottom.
    uncropped = reference(make(tmp_path, image_size=64, crop_size=178))
    assert (uncropped[:, 0, 0, :] > 0.8).all()


def test_crop_size_and_reference_ids_differ(tmp_path: Path) -> None:
    write_celeba_torchvision(tmp_path)
    ids = {
        make(tmp_path).reference_id,
        make(tmp_path, crop_size=108).reference_id,
        make(tmp_path, image_size=64).reference_id,
        make(tmp_path, reference_split="test").reference_id,
    }
    assert ids == {
        "celeba-train-32-crop140",
        "celeba-train-32-crop108",
        "celeba-train-64-crop140",
        "celeba-test-32-crop140",
    }


def test_hflip_only_in_training(tmp_path: Path) -> None:
    write_celeba_torchvision(tmp_path)
    dm = make(tmp_path, hflip=True, split="all")
    dm.setup("fit")
    assert dm.train_dataloader().dataset.transform.hflip
    assert not dm.val_dataloader().dataset.transform.hflip


@pytest.mark.parametrize("nested", [True, False], ids=["img_align_celeba", "root"])
def test_plain_folder_without_partition(tmp_path: Path, nested: bool) -> None:
    folder = tmp_path / "img_align_celeba" if nested else tmp_path
    write_celeba_images(folder, ["000101.jpg", "000007.jpg", "000050.jpg"])
    dm = make(tmp_path, batch_size=2)
    assert not dm.has_partition
    assert [p.name for p in dm.split_files("train")] == ["000007.jpg", "000050.jpg", "000101.jpg"]
    assert dm.split_files("all") == dm.split_files("train")
    dm.setup("fit")
    assert next(iter(dm.train_dataloader())).shape == (2, 3, 32, 32)
    assert dm.reference_id.startswith("celeba-folder-")  # never confused with official train
    assert dm.reference_id.endswith("-32-crop140")
    with pytest.raises(FileNotFoundError) as info:
        make(tmp_path, split="test").setup("fit")
    message = str(info.value)
    assert str(tmp_path / "list_eval_partition.txt") in message and "'train' or 'all'" in message


def test_partition_file_beside_plain_folder_is_used(tmp_path: Path) -> None:
    write_celeba_images(tmp_path / "img_align_celeba", ["000001.jpg", "000002.jpg"])
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 2\n")
    dm = make(tmp_path, split="test")
    assert [p.name for p in dm.split_files("test")] == ["000002.jpg"]
    assert dm.reference_id == "celeba-train-32-crop140"


def test_images_missing_from_partition_split(tmp_path: Path) -> None:
    base = write_celeba_torchvision(tmp_path)
    (base / "img_align_celeba" / "000002.jpg").unlink()
    with pytest.raises(FileNotFoundError) as info:
        make(tmp_path).setup("fit")
    message = str(info.value)
    assert "1 of the 3 images of CelebA split 'train'" in message and "000002.jpg" in message
    assert str(base / "list_eval_partition.txt") in message
    make(tmp_path, split="valid", reference_split="valid").setup("fit")  # other splits still load


def test_malformed_partition_line_is_named(tmp_path: Path) -> None:
    base = write_celeba_torchvision(tmp_path)
    (base / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg train\n")
    with pytest.raises(CorruptDataError) as info:
        make(tmp_path).setup("fit")
    assert f"{base / 'list_eval_partition.txt'}, line 2" in str(info.value)


def test_truncated_jpeg_is_named(tmp_path: Path) -> None:
    base = write_celeba_torchvision(tmp_path)
    bad = base / "img_align_celeba" / "000003.jpg"
    truncated_jpeg(bad, size=(178, 218))
    dm = make(tmp_path, eval_batch_size=10)
    dm.setup("validate")
    with pytest.raises(CorruptDataError, match=str(bad)):
        next(iter(dm.val_dataloader()))


def test_missing_root_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        make(tmp_path / "nowhere").setup("fit")
    message = str(info.value)
    assert str((tmp_path / "nowhere").resolve()) in message
    assert "celeba/img_align_celeba" in message and "download: true" in message
    (tmp_path / "img_align_celeba").mkdir()
    with pytest.raises(FileNotFoundError, match="No CelebA images"):
        make(tmp_path).setup("fit")


def test_download_failure_explains_manual_fix(tmp_path: Path, monkeypatch) -> None:
    import torchvision.datasets

    def no_gdown(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'gdown'")

    monkeypatch.setattr(torchvision.datasets, "CelebA", no_gdown)
    dm = make(tmp_path, download=True)
    assert dm.reference_id == "celeba-train-32-crop140"  # the layout download will create
    with pytest.raises(DataDownloadFailed) as info:  # an OSError: one paragraph, exit 2
        dm.prepare_data()
    message = str(info.value)
    assert "gdown" in message and "list_eval_partition.txt" in message
    assert str((tmp_path / "celeba").resolve()) in message and "download: false" in message


def test_download_is_skipped_when_data_present(tmp_path: Path, monkeypatch) -> None:
    import torchvision.datasets

    def refuse(*args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setattr(torchvision.datasets, "CelebA", refuse)
    write_celeba_torchvision(tmp_path)
    make(tmp_path, download=True).prepare_data()


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"crop_size": 0}, "crop_size"),
        ({"crop_size": 200}, "crop_size"),
        ({"image_size": 100}, "image_size"),
        ({"split": "validation"}, "split"),
        ({"reference_split": "val"}, "reference_split"),
        ({"download": 1}, "download"),
    ],
)
def test_bad_arguments_name_themselves(tmp_path: Path, kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=f"argument '{argument}'"):
        make(tmp_path, **kwargs)
