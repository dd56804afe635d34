"""Tiny networks, data and trainers for the training tests (CPU, seconds per test)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Trainer

from giugan.data import ShapesDataModule
from giugan.nets import Discriminator, Generator
from giugan.training.callbacks import AtomicCheckpointIO, GeneratorIterationCheckpoint
from giugan.training.module import GANModule


def tiny_module(conv_dim: int = 4, **kwargs: Any) -> GANModule:
    torch.manual_seed(0)
    kwargs.setdefault("optimizer_g", functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.0, 0.9)))
    kwargs.setdefault("optimizer_d", functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.0, 0.9)))
    kwargs.setdefault("generator", Generator(32, z_dim=8, conv_dim=conv_dim, rbn_blocks="outer"))
    kwargs.setdefault("discriminator", Discriminator(32, conv_dim=conv_dim))
    return GANModule(**kwargs)


def tiny_data(n_critic: int = 1, num_images: int = 16, batch_size: int = 4) -> ShapesDataModule:
    return ShapesDataModule(
        num_images=num_images,
        image_size=32,
        batch_size=batch_size,
        batches_per_iteration=n_critic,
        num_workers=0,
        eval_batch_size=8,
    )


def tiny_trainer(root: Path, every: int = 1, **kwargs: Any) -> Trainer:
    kwargs.setdefault("logger", False)
    return Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=-1,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(root),
        plugins=[AtomicCheckpointIO()],
        callbacks=[GeneratorIterationCheckpoint(every, dirpath=str(root / "checkpoints"))],
        **kwargs,
    )


def parameters_of(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
