"""CIFAR-10 DataModule over tiny files in torchvision's real ``cifar-10-batches-py`` format."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from giugan.data import CIFAR10DataModule, CorruptDataError
from giugan.data.base import DataDownloadFailed
from giugan.data.cifar10 import read_cifar10_batch

from .helpers import (
    CIFAR_IMAGES_IN_TEST_FILE,
    CIFAR_IMAGES_PER_TRAIN_FILE,
    cifar_images,
    write_cifar10,
    write_cifar_batch,
)

N_TRAIN = 5 * CIFAR_IMAGES_PER_TRAIN_FILE


@pytest.fixture()
def cifar_root(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    return tmp_path, write_cifar10(tmp_path)


def make(root: Path, **kwargs: object) -> CIFAR10DataModule:
    kwargs.setdefault("batch_size", 4)
    return CIFAR10DataModule(root=str(root), num_workers=0, **kwargs)  # type: ignore[arg-type]


def as_signed(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float32)) / 127.5 - 1


def test_reference_loader_returns_every_train_image_in_order(cifar_root) -> None:
    root, written = cifar_root
    dm = make(root, eval_batch_size=7)
    dm.setup("validate")
    batches = list(dm.val_dataloader())
    assert [len(b) for b in batches] == [7, 7, 6]  # no drop_last on the reference split
    images = torch.cat(batches)
    assert images.dtype == torch.float32 and images.shape == (N_TRAIN, 3, 32, 32)
    # Channel-major rows: 1024 red, then green, then blue values.
    torch.testing.assert_close(images, as_signed(written["train"]))
    assert dm.num_reference_images == N_TRAIN


@pytest.mark.parametrize(
    ("train_split", "expected"),
    [("train", N_TRAIN), ("test", CIFAR_IMAGES_IN_TEST_FILE), ("all", N_TRAIN + 3)],
)
def test_train_split_selection(cifar_root, train_split: str, expected: int) -> None:
    root, _ = cifar_root
    dm = make(root, train_split=train_split, batch_size=1, drop_last=False)
    dm.setup("fit")
    assert dm.num_train_images == expected
    signatures = sorted(round((b[0, 0, 0, 0].item() + 1) * 127.5) for b in dm.train_dataloader())
    everything = [40 * k + j for k in range(5) for j in range(4)] + [200, 201, 202]
    wanted = {"train": everything[:N_TRAIN], "test": everything[N_TRAIN:], "all": everything}
    assert signatures == wanted[train_split]


def test_reference_split_test_and_reference_ids(cifar_root) -> None:
    root, written = cifar_root
    dm = make(root, reference_split="test")
    dm.setup("validate")
    torch.testing.assert_close(torch.cat(list(dm.val_dataloader())), as_signed(written["test"]))
    assert dm.reference_id == "cifar10-test-32"
    assert make(root).reference_id == "cifar10-train-32"
    assert make(root, train_split="all").reference_id == "cifar10-train-32"
    assert dm.image_size == 32


def test_train_batches_hold_batch_size_times_batches_per_iteration(cifar_root) -> None:
    root, _ = cifar_root
    dm = make(root, batch_size=3, batches_per_iteration=2)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert [tuple(b.shape) for b in batches] == [(6, 3, 32, 32)] * (N_TRAIN // 6)
    assert all(b.min() >= -1 and b.max() <= 1 for b in batches)


def test_missing_folder_names_it_and_the_download_flag(tmp_path: Path) -> None:
    dm = make(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert str((tmp_path / "nowhere" / "cifar-10-batches-py").resolve()) in message
    assert "download: true" in message and "data_batch_1" in message


def test_missing_batch_file_is_named(cifar_root) -> None:
    root, _ = cifar_root
    os.remove(root / "cifar-10-batches-py" / "data_batch_3")
    with pytest.raises(FileNotFoundError, match=r"data_batch_3 is missing"):
        make(root).setup("fit")
    # The test split alone does not need the training files.
    dm = make(root, train_split="test", reference_split="test", batch_size=1)
    dm.setup("fit")
    assert dm.num_train_images == CIFAR_IMAGES_IN_TEST_FILE


@pytest.mark.parametrize(
    ("corruption", "pattern"),
    [
        ("shape", r"b'data' has shape \(4, 3000\), expected \(N, 3072\)"),
        ("dtype", r"b'data' is a float32 array of shape \(4, 3072\), expected a uint8"),
        ("keys", r"lacks the b'data' and/or b'labels' entries"),
        ("labels", r"4 images but 3 labels"),
        ("truncated", r"could not be read as a Python pickle"),
        ("not-a-dict", r"holds a list, expected a dict"),
    ],
)
def test_malformed_batch_file_is_named(cifar_root, corruption: str, pattern: str) -> None:
    root, _ = cifar_root
    path = root / "cifar-10-batches-py" / "data_batch_2"
    images = cifar_images(1, 4)
    if corruption == "shape":
        write_cifar_batch(path, images, data=images.reshape(4, -1)[:, :3000])
    elif corruption == "dtype":
        write_cifar_batch(path, images, data=images.reshape(4, -1).astype(np.float32))
    elif corruption == "keys":
        path.write_bytes(pickle.dumps({b"pixels": images}, protocol=2))
    elif corruption == "labels":
        write_cifar_batch(path, images, labels=[0, 1, 2])
    elif corruption == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(CorruptDataError, match=pattern) as info:
        make(root).setup("fit")
    assert str(path) in str(info.value) and "download" in str(info.value)


def test_pickle_with_foreign_globals_is_refused_without_running_them(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(CorruptDataError, match="is not allowed"):
        read_cifar10_batch(path)
    assert not marker.exists()


def test_reads_pickles_naming_numpy_core_as_old_files_do(tmp_path: Path) -> None:
    images = cifar_images(0, 2)
    path = tmp_path / "data_batch_1"
    write_cifar_batch(path, images)
    raw = path.read_bytes()
    assert b"numpy._core.multiarray" in raw or b"numpy.core.multiarray" in raw
    path.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    np.testing.assert_array_equal(read_cifar10_batch(path), images)


def test_download_is_skipped_when_files_exist(cifar_root, monkeypatch) -> None:
    import torchvision.datasets

    def refuse(*args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", refuse)
    root, _ = cifar_root
    make(root, download=True).prepare_data()


def test_failed_download_explains_the_offline_fix(tmp_path: Path, monkeypatch) -> None:
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DataDownloadFailed) as info:  # an OSError: one paragraph, exit 2
        make(tmp_path, download=True).prepare_data()
    message = str(info.value)
    assert "Network is unreachable" in message and "cifar-10-python.tar.gz" in message
    assert "download: false" in message and str(tmp_path.resolve()) in message


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"train_split": "validation"}, "train_split"),
        ({"reference_split": "all"}, "reference_split"),
        ({"download": "yes"}, "download"),
        ({"root": ""}, "root"),
    ],
)
def test_bad_arguments_name_themselves(tmp_path: Path, kwargs: dict, argument: str) -> None:
    kwargs = {"root": str(tmp_path), **kwargs}
    with pytest.raises(ValueError, match=f"argument '{argument}'"):
        CIFAR10DataModule(**kwargs)
