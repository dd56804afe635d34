"""Fixed-noise sample grids every N generator iterations (PNG in the run directory + logger image)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torchvision
from lightning.pytorch import Callback, LightningModule, Trainer
from PIL import Image

from giugan.seeding import step_generator


class SampleGrid(Callback):
    """Save a grid of G(z) for a fixed z every ``every`` generator iterations and at the end.

    Files: ``<run dir>/samples/iter-<iteration:08d>.png`` (and ``latest.png``). The same pixels
    (an ``H x W x 3`` uint8 array, as the PNG holds) go to every logger that can take images
    (W&B: key ``samples``, at step ``generator_iteration``). Under DDP every rank draws the grid
    and asks for the run folder (``trainer.log_dir`` is a broadcast, and a generator with
    synchronised BatchNorm in train mode gathers across ranks); only rank 0 writes.

    Args:
        every: period of the grids in generator iterations (one more at the end of training).
        num_samples: images per grid (a square grid of ``sqrt(num_samples)`` columns).
        seed: seed of the fixed latents, the same for every grid of a run.
    """

    def __init__(self, every: int = 500, num_samples: int = 64, seed: int = 1234) -> None:
        super().__init__()
        if every < 1 or num_samples < 1:
            raise ValueError(
                f"SampleGrid: every={every} and num_samples={num_samples} must both be >= 1."
            )
        self.every = every
        self.num_samples = num_samples
        self.seed = seed
        self.last_path: str | None = None

    def _grid(self, pl_module: Any) -> np.ndarray:
        """The grid as uint8 pixels, rounded as ``torchvision.utils.save_image`` rounds."""
        rng = step_generator(self.seed, 0, "samples", torch.device("cpu"))
        latents = torch.randn(self.num_samples, pl_module.z_dim, generator=rng)
        images = pl_module.generate(latents).float().cpu()
        nrow = max(1, int(self.num_samples**0.5))
        grid = torchvision.utils.make_grid(images, nrow=nrow, normalize=True, value_range=(-1, 1))
        return grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()

    def save(self, trainer: Trainer, pl_module: LightningModule) -> str | None:
        iteration = pl_module.generator_iteration
        grid = self._grid(pl_module)
        folder = os.path.join(trainer.log_dir or trainer.default_root_dir, "samples")
        if not trainer.is_global_zero:
            return None
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"iter-{iteration:08d}.png")
        Image.fromarray(grid).save(path)
        Image.fromarray(grid).save(os.path.join(folder, "latest.png"))
        for logger in trainer.loggers:
            log_image = getattr(logger, "log_image", None)
            if callable(log_image):
                log_image(key="samples", images=[grid], step=iteration, caption=[f"iteration {iteration}"])
        self.last_path = path
        return path

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        if pl_module.generator_iteration % self.every == 0:
            self.save(trainer, pl_module)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if pl_module.generator_iteration % self.every != 0:
            self.save(trainer, pl_module)
