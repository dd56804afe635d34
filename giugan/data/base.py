"""Shared behaviour of every giugan DataModule.

Every DataModule in :mod:`giugan.data` yields plain image batches: float32 tensors of shape
``(B, 3, H, W)`` with values in ``[-1, 1]``, no labels. The training loader
serves ``batch_size * batches_per_iteration`` images per step, because one generator iteration of
the GAN module consumes ``n_critic`` discriminator mini-batches (the CLI links
``data.batches_per_iteration`` to ``model.n_critic``). The validation loader iterates over the
*reference split*, the real images whose Inception statistics the metrics layer caches under
:attr:`ImageDataModule.reference_id`.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchdata.stateful_dataloader import StatefulDataLoader

from giugan.data.sampling import EpochSeededRandomSampler, SeededAugmentation
from giugan.data.transforms import random_hflip, uint8_to_signed_unit
from giugan.validation import check_bool, check_int

__all__ = [
    "CorruptDataError",
    "ImageDataModule",
    "InMemoryImageDataset",
    "path_digest",
    "seed_worker",
]



class DataDownloadFailed(OSError):
    """A data set could not be downloaded; the message says how to provide it offline.

    An ``OSError``: the command line shows it as one paragraph with exit status 2.
    """


@contextlib.contextmanager
def folders_removed_on_failure(folder: Path) -> Iterator[None]:
    """Take back the folders a failed download created on the way to ``folder``: those of them
    that did not exist before and are still empty (a refused command leaves the disk as it was)."""
    folder = Path(folder).absolute()
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for path in missing:  # deepest first
            with contextlib.suppress(OSError):
                path.rmdir()
        raise

class CorruptDataError(ValueError):
    """A data file exists but cannot be read as the expected format.

    The message names the file, what was expected, and how to fix it. Raised inside a DataLoader
    worker, torch re-raises it in the main process with the message "Caught CorruptDataError in
    DataLoader worker process N. Original Traceback ..."; that is turned back into the original
    message (and the worker named), so the user still reads the file and the fix.
    """

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(_unwrapped_worker_message(str(message)), *args)


def _unwrapped_worker_message(text: str) -> str:
    first = text.split("\n", 1)[0]
    if not (first.startswith("Caught ") and "DataLoader worker process" in first):
        return text
    lines = [line for line in text.splitlines() if line.strip()]
    match = re.match(r"^[\w.]+: (.*)$", lines[-1].strip()) if lines else None
    if match is None:
        return text
    where = first.split(" in ", 1)[-1].rstrip(".")
    return f"{match.group(1)} (met in {where})"


def path_digest(path: str | os.PathLike[str]) -> str:
    """First 12 hex digits of the SHA-1 of the absolute, resolved ``path`` (a cache-key part)."""
    resolved = str(Path(path).expanduser().resolve())
    return hashlib.sha1(resolved.encode("utf-8")).hexdigest()[:12]


def seed_worker(worker_id: int) -> None:
    """Seed ``random`` and ``numpy`` in a DataLoader worker from its torch seed.

    PyTorch seeds each worker's torch RNG with ``base_seed + worker_id`` where ``base_seed`` is
    drawn from the loader's (seeded) generator; this propagates that seed to the other RNGs so
    every random augmentation is reproducible.
    """
    del worker_id
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


class InMemoryImageDataset(Dataset[torch.Tensor]):
    """A ``uint8`` ``(N, 3, H, W)`` tensor served as float32 images in ``[-1, 1]``.

    Args:
        images: The images, ``uint8``, channel-first.
        hflip: Mirror each image horizontally with probability 1/2.
    """

    def __init__(self, images: torch.Tensor, hflip: bool = False) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"InMemoryImageDataset expects a uint8 tensor of shape (N, 3, H, W), got "
                f"{images.dtype} {tuple(images.shape)}."
            )
        self.images = images
        self.hflip = hflip

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> torch.Tensor:
        image = uint8_to_signed_unit(self.images[index])
        return random_hflip(image) if self.hflip else image


class ImageDataModule(L.LightningDataModule, ABC):
    """Base class: the loader settings, their validation and the reference-split contract.

    The loader settings below are declared here only. A dataset is a subclass whose ``__init__``
    takes its own arguments followed by ``**kwargs`` and calls ``super().__init__(**kwargs)``
    first: jsonargparse (and so LightningCLI) resolves ``**kwargs`` to this signature, so every
    setting is a key of the subclass's ``data.init_args`` with the help text written here, and
    every init argument of the subclass and of this class is saved in ``hparams``. The subclass
    implements :meth:`_build_dataset` (a map-style dataset of ``(3, H, W)`` float tensors in
    ``[-1, 1]``), :attr:`image_size` and :attr:`reference_id`, and may override
    :meth:`prepare_data` to download.

    Args:
        batch_size: Images per discriminator mini-batch (the papers' batch size, e.g. 64).
        batches_per_iteration: Mini-batches consumed by one training step; the train loader's
            actual batch size is ``batch_size * batches_per_iteration``. Linked by the CLI to
            ``model.n_critic``.
        num_workers: DataLoader worker processes (0 = load in the main process). Workers are
            persistent and seeded deterministically from ``seed``.
        pin_memory: Pin host memory of batches (faster host-to-GPU copies).
        hflip: Randomly mirror training images horizontally (never applied to the reference
            split).
        drop_last: Drop the last incomplete training batch (keeps every step the same size).
        eval_batch_size: Batch size of the reference (validation) loader.
        seed: Seed of the training shuffle and of the worker RNGs (offset by the global rank).
    """

    def __init__(
        self,
        batch_size: int = 64,
        batches_per_iteration: int = 1,
        num_workers: int = 2,
        pin_memory: bool = False,
        hflip: bool = False,
        drop_last: bool = True,
        eval_batch_size: int = 250,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.batch_size = check_int(
            "batch_size", batch_size, 1, hint="It is the number of images per discriminator step."
        )
        self.batches_per_iteration = check_int(
            "batches_per_iteration",
            batches_per_iteration,
            1,
            hint="It is the number of mini-batches one training step consumes (model.n_critic).",
        )
        self.num_workers = check_int(
            "num_workers", num_workers, 0, hint="Use 0 to load data in the main process."
        )
        self.pin_memory = check_bool("pin_memory", pin_memory)
        self.hflip = check_bool("hflip", hflip)
        self.drop_last = check_bool("drop_last", drop_last)
        self.eval_batch_size = check_int(
            "eval_batch_size",
            eval_batch_size,
            1,
            hint="It is the batch size of the reference loader.",
        )
        self.seed = check_int("seed", seed, 0, hint="Use a non-negative integer seed.")
        self._train_dataset: Dataset[torch.Tensor] | None = None
        self._reference_dataset: Dataset[torch.Tensor] | None = None
        self._train_loader_state: dict[str, Any] | None = None  # from a checkpoint, see load_state_dict
        # Lightning collects the init arguments of this frame and of the subclass __init__ that
        # called it. Passing the frame avoids Lightning's self-referencing frame, which kept the
        # caller (and any DataLoader with persistent workers in it) alive until the cycle
        # collector ran, stalling 5 s per loader on worker shutdown.
        self.save_hyperparameters(frame=inspect.currentframe())

    # ----------------------------------------------------------------- subclass interface
    @property
    @abstractmethod
    def image_size(self) -> int:
        """Side length in pixels of the square images this module yields."""

    @property
    @abstractmethod
    def reference_id(self) -> str:
        """Stable name of the reference images (cache key of real-image statistics)."""

    @abstractmethod
    def _build_dataset(self, reference: bool) -> Dataset[torch.Tensor]:
        """Build the training (``reference=False``, with flips when enabled) or reference set."""

    # ----------------------------------------------------------------- Lightning hooks
    @property
    def train_batch_size(self) -> int:
        """Images per training-loader batch: ``batch_size * batches_per_iteration``."""
        return self.batch_size * self.batches_per_iteration

    @property
    def num_reference_images(self) -> int:
        """Number of images in the reference split (available after :meth:`setup`)."""
        if self._reference_dataset is None:
            raise RuntimeError(
                f"{type(self).__name__}.num_reference_images is only known after setup(): call "
                "datamodule.setup('validate') (the Trainer does this) before reading it."
            )
        return len(self._reference_dataset)  # type: ignore[arg-type]

    @property
    def num_train_images(self) -> int:
        """Number of images in the training split (available after ``setup('fit')``)."""
        if self._train_dataset is None:
            raise RuntimeError(
                f"{type(self).__name__}.num_train_images is only known after setup('fit')."
            )
        return len(self._train_dataset)  # type: ignore[arg-type]

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets needed by ``stage`` (idempotent).

        ``fit`` (or ``None``) builds the training and reference sets; ``validate``, ``test`` and
        ``predict`` build only the reference set.
        """
        if stage in (None, "fit") and self._train_dataset is None:
            self._train_dataset = self._build_dataset(reference=False)
        if stage in (None, "fit") and self._train_dataset is not None:
            # Refused here, before the loggers write anything, rather than when the loader is built.
            self._check_training_split(len(self._train_dataset))  # type: ignore[arg-type]
        if self._reference_dataset is None:
            self._reference_dataset = self._build_dataset(reference=True)

    def _global_rank(self) -> int:
        trainer = getattr(self, "trainer", None)
        return int(getattr(trainer, "global_rank", 0) or 0) if trainer is not None else 0

    def _loader(self, dataset: Dataset[torch.Tensor], batch_size: int, train: bool) -> DataLoader:
        """The training loader (resumable, see :mod:`giugan.data.sampling`) or the reference one."""
        generator = torch.Generator()
        generator.manual_seed(self.seed + 1_000_003 * self._global_rank() + (0 if train else 1))
        settings: dict[str, Any] = {
            "batch_size": batch_size,
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.num_workers > 0,
            "worker_init_fn": seed_worker,
            "generator": generator,
        }
        if not train:
            return DataLoader(dataset, drop_last=False, **settings)
        sampler = EpochSeededRandomSampler(
            dataset, generator.initial_seed(), batch_size=batch_size, drop_last=self.drop_last
        )
        sampler.set_epoch(self._starting_epoch())
        loader = StatefulDataLoader(
            SeededAugmentation(dataset), sampler=sampler, drop_last=self.drop_last, **settings
        )
        if self._train_loader_state is not None:
            loader.load_state_dict(self._train_loader_state)
            self._train_loader_state = None
        return loader

    def state_dict(self) -> dict[str, Any]:
        """The training loader's position (saved by Lightning in every checkpoint).

        Lightning's fit loop also saves the state of a stateful train loader, but gives it back
        only when it thinks the epoch was unfinished: a run stopped mid-epoch by reaching
        ``generator_iterations`` (or a signal) is recorded as a finished epoch. Keeping the state
        here as well makes the resumed run continue that epoch at its next mini-batch.
        """
        trainer = getattr(self, "trainer", None)
        loader = trainer.train_dataloader if trainer is not None else None
        return {"train_loader": loader.state_dict()} if isinstance(loader, StatefulDataLoader) else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep a checkpoint's training-loader state for the next :meth:`train_dataloader`."""
        self._train_loader_state = state_dict.get("train_loader")

    def _starting_epoch(self) -> int:
        """The epoch Lightning's fit loop is about to run (non-zero when resuming).

        A run resumed from a checkpoint written at the end of an epoch gets no loader state back
        from Lightning, and its first pass is created before Lightning's ``set_epoch``: the
        sampler has to start at that epoch itself.
        """
        trainer = getattr(self, "trainer", None)
        fit_loop = getattr(trainer, "fit_loop", None)
        return int(fit_loop.epoch_progress.current.processed) if fit_loop is not None else 0

    def train_dataloader(self) -> DataLoader:
        """Shuffled loader over the training split, batches of ``batch_size * batches_per_iteration``."""
        if self._train_dataset is None:
            self.setup("fit")
        assert self._train_dataset is not None
        self._check_training_split(len(self._train_dataset))  # type: ignore[arg-type]
        return self._loader(self._train_dataset, self.train_batch_size, train=True)

    def _check_training_split(self, n: int) -> None:
        """The ``n`` training images give every generator iteration its batches."""
        if self.drop_last and n < self.train_batch_size:
            raise ValueError(
                f"The training split of {type(self).__name__} has {n} images, fewer than one "
                f"training batch of batch_size * batches_per_iteration = {self.batch_size} * "
                f"{self.batches_per_iteration} = {self.train_batch_size}, so with drop_last=True "
                "the loader would yield no batch at all. Lower 'batch_size' or "
                "'batches_per_iteration', set 'drop_last: false', or use more images."
            )
        self._check_leftover_batch(n)

    def _check_leftover_batch(self, n: int) -> None:
        """With ``drop_last: false`` the last batch of a pass must still split into
        ``batches_per_iteration`` (= ``n_critic``) mini-batches; refuse before training if not."""
        trainer = getattr(self, "trainer", None)
        world = int(getattr(trainer, "world_size", 1) or 1) if trainer is not None else 1
        per_rank = -(-n // world)  # Lightning's DistributedSampler pads every rank to this
        leftover = per_rank % self.train_batch_size
        if self.drop_last or self.batches_per_iteration == 1 or leftover % self.batches_per_iteration == 0:
            return
        raise ValueError(
            f"drop_last: false keeps the last, smaller batch of every pass over the {n} training "
            f"images: {leftover} images, which cannot be split into the batches_per_iteration = "
            f"n_critic = {self.batches_per_iteration} mini-batches of one generator iteration. Set "
            f"'drop_last: true' (the default: every step gets {self.batch_size} images per critic "
            f"step), or choose batch_size and the number of images so that the last batch splits."
        )

    def reference_dataloader(self) -> DataLoader:
        """Ordered loader over the reference split: no flips, ``eval_batch_size``, all images."""
        if self._reference_dataset is None:
            self.setup("validate")
        assert self._reference_dataset is not None
        return self._loader(self._reference_dataset, self.eval_batch_size, train=False)

    def val_dataloader(self) -> DataLoader:
        """The reference split (see :meth:`reference_dataloader`)."""
        return self.reference_dataloader()

    def test_dataloader(self) -> DataLoader:
        """The reference split as well: a GAN's test pass scores samples against it."""
        return self.reference_dataloader()
