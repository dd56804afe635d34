"""GIU-GANs Figure 1/2-style discriminator feature maps at evaluation (PNG + logger image).

Enable it in a config (it is off by default)::

    trainer:
      callbacks:
        - class_path: giugan.training.callbacks.feature_maps.FeatureMaps
          init_args: {every_evaluation: true, layer: blocks.1, num_images: 16}
"""

from __future__ import annotations

import os

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from giugan.inspection.figures import (
    check_layer,
    default_layer,
    discriminator_maps,
    first_images,
    fixed_latents,
    save_maps,
)
from giugan.validation import check_int

#: Seed of the fixed latents whose samples are mapped (the same samples at every evaluation).
LATENT_SEED = 4321


class FeatureMaps(Callback):
    """Write first-principal-component maps of a D layer for real images and samples.

    At the end of every evaluation (``every_evaluation=True``) or once when training ends
    (``False``), rank 0 writes ``<run dir>/inspect/maps-<iteration:08d>.png``: the maps of the
    first ``num_images`` reference images (the data module's reference split, in order) in the
    top rows, then those of ``num_images`` samples from fixed latents, eight maps a row (see
    ``giugan inspect`` and GIU-GANs section 1). The same image goes to every logger with
    ``log_image`` (W&B: key ``feature_maps``).

    Args:
        every_evaluation: Draw after every evaluation (``model.eval_every``); else only at the
            end of training.
        layer: Discriminator layer to map (e.g. ``blocks.0``, ``inserts.3``); ``None`` takes
            ``blocks.1``, the output of D block 2.
        num_images: Real images and samples mapped each time.
    """

    def __init__(self, every_evaluation: bool = True, layer: str | None = None, num_images: int = 16) -> None:
        super().__init__()
        self.every_evaluation = bool(every_evaluation)
        self.layer = layer
        self.num_images = check_int("num_images", num_images, 1, hint="It is the number of images mapped.")
        self.last_path: str | None = None
        self._real: torch.Tensor | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        discriminator = pl_module.discriminator
        self.layer = check_layer(discriminator, self.layer or default_layer(discriminator))

    def _real_images(self, trainer: Trainer) -> torch.Tensor:
        if self._real is None:
            self._real = first_images(trainer.datamodule.reference_dataloader(), self.num_images)
        return self._real

    def draw(self, trainer: Trainer, pl_module: LightningModule) -> str | None:
        """Write (and log) the maps of the current networks; return the PNG's path (rank 0)."""
        # trainer.log_dir broadcasts under DDP: every rank asks for it, only rank 0 draws.
        folder = os.path.join(trainer.log_dir or trainer.default_root_dir, "inspect")
        if not trainer.is_global_zero or self.layer is None:
            return None
        iteration = pl_module.generator_iteration
        discriminator = pl_module.discriminator
        latents = fixed_latents(self.num_images, pl_module.z_dim, LATENT_SEED)
        fake = pl_module.generate(latents).float()
        maps = torch.cat([
            discriminator_maps(discriminator, self._real_images(trainer), self.layer),
            discriminator_maps(discriminator, fake, self.layer),
        ])
        path = str(save_maps(maps, os.path.join(folder, f"maps-{iteration:08d}.png")))
        for logger in trainer.loggers:
            log_image = getattr(logger, "log_image", None)
            if callable(log_image):
                caption = f"iteration {iteration}, {self.layer}: real (top), samples (bottom)"
                log_image(key="feature_maps", images=[path], step=iteration, caption=[caption])
        self.last_path = path
        return path

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.every_evaluation and not trainer.sanity_checking:
            self.draw(trainer, pl_module)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.every_evaluation:
            self.draw(trainer, pl_module)
