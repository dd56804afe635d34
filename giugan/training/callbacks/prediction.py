"""``giugan predict``: generated images as PNGs (and optionally one ``.npz``), via Lightning's writer.

Image ``i`` is generated from a latent drawn with seed ``(seed, "predict", i)``, so the same index
gives the same image whatever the batch size or number of devices.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from giugan.metrics import quantize_images
from giugan.seeding import mixed_seed


def latents_for_indices(indices: Tensor, z_dim: int, seed: int) -> Tensor:
    """One standard-normal latent per image index, reproducible from ``(seed, index)``."""
    rows = []
    for index in indices.tolist():
        generator = torch.Generator().manual_seed(mixed_seed(seed, "predict", index))
        rows.append(torch.randn(z_dim, generator=generator))
    return torch.stack(rows)


class IndexedLatents(Dataset):
    """``(index, latent)`` pairs for image indices ``0 .. num_images - 1``."""

    def __init__(self, num_images: int, z_dim: int, seed: int) -> None:
        self.num_images, self.z_dim, self.seed = num_images, z_dim, seed

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int) -> tuple[int, Tensor]:
        return index, latents_for_indices(torch.tensor([index]), self.z_dim, self.seed)[0]


class ImageWriter(BasePredictionWriter):
    """Write each predicted image as ``<output_dir>/<index:06d>.png``.

    Args:
        num_images: how many images ``giugan predict`` generates.
        seed: latent seed; image ``i`` comes from ``(seed, "predict", i)``.
        output_dir: folder (default ``<run dir>/predictions``).
        npz: also write ``images.npz`` (``images_rank<r>.npz`` under DDP) with arrays ``index`` and
            ``images`` (uint8, N x H x W x 3), e.g. for FID tools.
        batch_size: latents per prediction batch.
    """

    def __init__(
        self,
        num_images: int = 64,
        seed: int = 0,
        output_dir: str | None = None,
        npz: bool = False,
        batch_size: int = 64,
    ) -> None:
        super().__init__(write_interval="batch")
        if not isinstance(num_images, int) or num_images < 1:
            raise ValueError(f"predictions.num_images={num_images!r} must be an integer >= 1.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"predictions.batch_size={batch_size!r} must be an integer >= 1.")
        self.num_images, self.seed, self.output_dir = num_images, seed, output_dir
        self.npz, self.batch_size = npz, batch_size
        self._stored: list[tuple[np.ndarray, np.ndarray]] = []

    def dataloader(self, z_dim: int) -> DataLoader:
        """The prediction loop's data: ``(indices, latents)`` batches."""
        dataset = IndexedLatents(self.num_images, z_dim, self.seed)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=False)

    def folder(self, trainer: Trainer) -> str:
        return self.output_dir or os.path.join(trainer.log_dir or trainer.default_root_dir, "predictions")

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        indices, _ = batch
        folder = self.folder(trainer)
        os.makedirs(folder, exist_ok=True)
        pixels = quantize_images(prediction).permute(0, 2, 3, 1).cpu().numpy()
        for index, array in zip(indices.tolist(), pixels):
            Image.fromarray(array).save(os.path.join(folder, f"{index:06d}.png"))
        if self.npz:
            self._stored.append((indices.cpu().numpy(), pixels))

    def on_predict_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._stored:
            return
        indices = np.concatenate([i for i, _ in self._stored])
        images = np.concatenate([x for _, x in self._stored])
        self._stored = []
        name = "images.npz" if trainer.world_size == 1 else f"images_rank{trainer.global_rank}.npz"
        np.savez_compressed(os.path.join(self.folder(trainer), name), index=indices, images=images)
