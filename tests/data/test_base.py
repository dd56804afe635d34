"""Behaviour shared by every DataModule (exercised through the synthetic shapes set)."""

from __future__ import annotations

import pytest
import torch
from jsonargparse import ArgumentParser

from giugan.data import (
    CelebADataModule,
    CIFAR10DataModule,
    ImageFolderDataModule,
    ShapesDataModule,
)


def shapes(**kwargs: object) -> ShapesDataModule:
    kwargs = {"num_images": 30, "num_workers": 0, "batch_size": 4, **kwargs}
    return ShapesDataModule(**kwargs)  # type: ignore[arg-type]


def test_train_loader_serves_batches_per_iteration_minibatches_shuffled() -> None:
    dm = shapes(batch_size=4, batches_per_iteration=3)
    dm.setup("fit")
    loader = dm.train_dataloader()
    batches = list(loader)
    assert dm.train_batch_size == 12
    assert [tuple(b.shape) for b in batches] == [(12, 3, 32, 32)] * 2  # 30 // 12, last dropped
    reference = dm.reference_dataloader().dataset
    ordered = torch.stack([reference[i] for i in range(12)])
    assert not torch.equal(batches[0], ordered)  # shuffled


def test_drop_last_false_keeps_the_remainder() -> None:
    dm = shapes(batch_size=4, batches_per_iteration=3, drop_last=False)
    dm.setup("fit")
    assert [len(b) for b in dm.train_dataloader()] == [12, 12, 6]


def test_reference_loader_is_ordered_complete_and_unflipped() -> None:
    dm = shapes(hflip=True, eval_batch_size=8)
    dm.setup("fit")
    batches = list(dm.val_dataloader())
    assert [len(b) for b in batches] == [8, 8, 8, 6]
    expected = dm.images.float() / 127.5 - 1
    torch.testing.assert_close(torch.cat(batches), expected)
    torch.testing.assert_close(torch.cat(list(dm.test_dataloader())), expected)


def test_hflip_applies_to_training_only() -> None:
    torch.manual_seed(0)
    dm = shapes(hflip=True, batch_size=30, num_images=30)
    dm.setup("fit")
    originals = dm.images.float() / 127.5 - 1
    flipped = originals.flip(-1)
    as_set = {tuple(x.flatten().tolist()) for x in originals}
    mirrored = {tuple(x.flatten().tolist()) for x in flipped}
    batch = next(iter(dm.train_dataloader()))
    seen = [tuple(x.flatten().tolist()) for x in batch]
    assert all(x in as_set or x in mirrored for x in seen)
    assert sum(x in mirrored and x not in as_set for x in seen) >= 5  # some flipped
    assert sum(x in as_set and x not in mirrored for x in seen) >= 5  # some not
    no_flip = shapes(hflip=False, batch_size=30, num_images=30)
    no_flip.setup("fit")
    assert all(
        tuple(x.flatten().tolist()) in as_set for x in next(iter(no_flip.train_dataloader()))
    )


def test_shuffle_order_is_deterministic_from_the_seed() -> None:
    def order(seed: int) -> list[list[int]]:
        dm = shapes(seed=seed, batch_size=10)
        dm.setup("fit")
        loader = dm.train_dataloader()
        return [list(indices) for _ in range(2) for indices in loader.batch_sampler]

    first = order(5)
    assert first == order(5)
    assert first != order(6)
    assert first[:3] != first[3:]  # a new permutation each epoch
    assert sorted(i for batch in first[:3] for i in batch) == list(range(30))


def test_workers_are_persistent_and_deterministic() -> None:
    def batches() -> list[torch.Tensor]:
        dm = shapes(hflip=True, num_workers=1, batch_size=10)
        dm.setup("fit")
        loader = dm.train_dataloader()
        assert loader.persistent_workers and loader.worker_init_fn is not None
        return list(loader)

    first, second = batches(), batches()
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_loader_settings() -> None:
    dm = shapes(pin_memory=True)
    dm.setup("fit")
    train, val = dm.train_dataloader(), dm.val_dataloader()
    assert train.pin_memory and val.pin_memory
    assert not train.persistent_workers  # num_workers=0 cannot keep workers
    assert train.drop_last and not val.drop_last
    assert val.batch_size == 250


def test_counts_are_only_known_after_setup() -> None:
    dm = shapes()
    with pytest.raises(RuntimeError, match="only known after setup"):
        _ = dm.num_reference_images
    dm.setup("validate")
    assert dm.num_reference_images == 30


def test_too_few_images_for_one_training_batch() -> None:
    dm = shapes(num_images=10, batch_size=4, batches_per_iteration=3)
    with pytest.raises(ValueError, match=r"has 10 images.*4 \* 3 = 12.*drop_last"):
        dm.setup("fit")  # refused before the loggers write anything
    with pytest.raises(ValueError, match=r"has 10 images.*4 \* 3 = 12.*drop_last"):
        dm.train_dataloader()


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("batch_size", 0),
        ("batch_size", 2.5),
        ("batches_per_iteration", 0),
        ("num_workers", -1),
        ("eval_batch_size", 0),
        ("seed", -3),
        ("hflip", "yes"),
        ("pin_memory", 1),
        ("drop_last", None),
    ],
)
def test_bad_common_arguments_are_named_with_their_value(argument: str, value: object) -> None:
    with pytest.raises(ValueError) as info:
        ShapesDataModule(**{argument: value})  # type: ignore[arg-type]
    assert f"argument '{argument}'" in str(info.value) and repr(value) in str(info.value)


@pytest.mark.parametrize(
    ("cls", "config"),
    [
        (ShapesDataModule, {"num_images": 16, "batches_per_iteration": 5}),
        (CIFAR10DataModule, {"root": "x", "train_split": "all", "reference_split": "test"}),
        (CelebADataModule, {"root": "x", "crop_size": 108, "split": "valid"}),
        (ImageFolderDataModule, {"root": "x", "crop_size": None, "extensions": [".png"]}),
    ],
)
def test_signatures_build_from_a_yaml_like_config(cls: type, config: dict) -> None:
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, "data")
    namespace = parser.parse_object({"data": config})
    dm = parser.instantiate_classes(namespace).data
    assert isinstance(dm, cls)
    for key, value in config.items():
        assert dm.hparams[key] == value


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*")
def test_a_lightning_trainer_consumes_the_module() -> None:
    import lightning as L

    class Recorder(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(()))
            self.automatic_optimization = False
            self.seen: dict[str, list[tuple[int, ...]]] = {"train": [], "val": []}

        def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
            self.seen["train"].append(tuple(batch.shape))

        def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
            self.seen["val"].append(tuple(batch.shape))

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD([self.weight], lr=0.1)

    model = Recorder()
    dm = shapes(batch_size=4, batches_per_iteration=2, eval_batch_size=16)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=dm)
    assert model.seen["train"] == [(8, 3, 32, 32)] * 2
    assert model.seen["val"] == [(16, 3, 32, 32), (14, 3, 32, 32)]


def test_train_order_is_a_function_of_seed_and_epoch() -> None:
    """A loader re-created on resume replays the interrupted run's order for that epoch."""

    def order(epoch: int, seed: int = 0) -> list[int]:
        dm = shapes(seed=seed)
        dm.setup("fit")
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return list(loader.sampler)

    assert order(3) == order(3)
    assert order(3) != order(4) and order(3) != order(3, seed=1)
    assert sorted(order(3)) == list(range(30))


_LOADER_DEFAULTS = {
    "batch_size": 64,
    "batches_per_iteration": 1,
    "num_workers": 2,
    "pin_memory": False,
    "hflip": False,
    "drop_last": True,
    "eval_batch_size": 250,
    "seed": 0,
}


@pytest.mark.parametrize(
    "cls", [CIFAR10DataModule, CelebADataModule, ImageFolderDataModule, ShapesDataModule]
)
def test_loader_settings_are_declared_once_in_the_base_class(cls: type) -> None:
    import inspect

    parameters = inspect.signature(cls.__init__).parameters
    assert not set(_LOADER_DEFAULTS) & set(parameters)
    assert parameters["kwargs"].kind is inspect.Parameter.VAR_KEYWORD
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, "data")
    defaults = parser.get_defaults().data
    assert {key: defaults[key] for key in _LOADER_DEFAULTS} == _LOADER_DEFAULTS
    assert "Images per discriminator mini-batch" in parser.format_help()


def test_a_new_dataset_is_one_short_class_with_every_loader_setting() -> None:
    from giugan.data import ImageDataModule
    from giugan.data.base import InMemoryImageDataset

    class Grey(ImageDataModule):
        """Mid-grey images.

        Args:
            num_images: How many.
        """

        def __init__(self, num_images: int = 8, **kwargs: object) -> None:
            super().__init__(**kwargs)  # type: ignore[arg-type]
            self.num_images = num_images

        image_size = 16
        reference_id = "grey-16"

        def _build_dataset(self, reference: bool) -> InMemoryImageDataset:
            images = torch.full((self.num_images, 3, 16, 16), 128, dtype=torch.uint8)
            return InMemoryImageDataset(images)

    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(Grey, "data")
    namespace = parser.parse_object({"data": {"num_images": 6, "batch_size": 3, "num_workers": 0}})
    dm = parser.instantiate_classes(namespace).data
    assert (dm.num_images, dm.batch_size, dm.num_workers, dm.eval_batch_size) == (6, 3, 0, 250)
    assert dict(Grey(num_images=4, seed=2).hparams) == {
        **_LOADER_DEFAULTS,
        "seed": 2,
        "num_images": 4,
    }
    assert [tuple(b.shape) for b in dm.train_dataloader()] == [(3, 3, 16, 16)] * 2
    with pytest.raises(ValueError, match=r"Invalid value -1 for argument 'seed'"):
        Grey(seed=-1)


def test_a_last_batch_that_cannot_split_into_n_critic_mini_batches_is_refused_naming_drop_last() -> None:
    # 99 images in batches of 8 x 2: the last batch of a pass holds 3 images, not two halves
    data = shapes(num_images=99, batch_size=8, batches_per_iteration=2, drop_last=False)
    with pytest.raises(ValueError, match=r"drop_last: false keeps the last.*3 images.*'drop_last: true'"):
        data.train_dataloader()
    # a last batch of 4 splits into 2 mini-batches of 2; drop_last drops it
    assert shapes(num_images=100, batch_size=8, batches_per_iteration=2, drop_last=False).train_dataloader()
    assert shapes(num_images=99, batch_size=8, batches_per_iteration=2, drop_last=True).train_dataloader()
