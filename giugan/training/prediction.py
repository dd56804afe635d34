"""``giugan predict``: write generated images as PNGs (and optionally one ``.npz``).

Image ``i`` is generated from a latent drawn with seed ``(predict_seed, i)``, so the same index
gives the same image whatever the batch size or number of devices.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from giugan.metrics import quantize_images
from giugan.seeding import mixed_seed

if TYPE_CHECKING:
    from giugan.training.module import GANModule


def latents_for_indices(indices: Tensor, z_dim: int, seed: int) -> Tensor:
    """One standard-normal latent per image index, reproducible from ``(seed, index)``."""
    rows = []
    for index in indices.tolist():
        generator = torch.Generator().manual_seed(mixed_seed(seed, "predict", index))
        rows.append(torch.randn(z_dim, generator=generator))
    return torch.stack(rows)


def output_dir(module: GANModule) -> str:
    configured = module.hparams.predict_output_dir
    trainer = module.trainer
    return configured or os.path.join(trainer.log_dir or trainer.default_root_dir, "predictions")


def write_images(module: GANModule, indices: Tensor, images: Tensor) -> None:
    """Save each image as ``<output>/<index:06d>.png``; keep uint8 arrays for the npz."""
    folder = output_dir(module)
    os.makedirs(folder, exist_ok=True)
    pixels = quantize_images(images).permute(0, 2, 3, 1).cpu().numpy()
    for index, array in zip(indices.tolist(), pixels):
        Image.fromarray(array).save(os.path.join(folder, f"{index:06d}.png"))
    if module.hparams.predict_npz:
        store = module.__dict__.setdefault("_predicted", [])
        store.append((indices.cpu().numpy(), pixels))


def finish_prediction(module: GANModule) -> None:
    """Write ``images.npz`` (``images_rank<r>.npz`` under DDP) with arrays ``index`` and ``images``."""
    store = module.__dict__.pop("_predicted", [])
    if not store:
        return
    indices = np.concatenate([i for i, _ in store])
    images = np.concatenate([x for _, x in store])
    rank, world = module.trainer.global_rank, module.trainer.world_size
    name = "images.npz" if world == 1 else f"images_rank{rank}.npz"
    np.savez_compressed(os.path.join(output_dir(module), name), index=indices, images=images)
