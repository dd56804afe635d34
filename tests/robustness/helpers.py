"""Small builders shared by the robustness tests (tiny networks, data, trainers, bad files)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Trainer
from PIL import Image

from giugan.data import ShapesDataModule
from giugan.nets import Discriminator, Generator
from giugan.training.callbacks import AtomicCheckpointIO, GeneratorIterationCheckpoint
from giugan.training.module import GANModule


def assert_one_paragraph(message: str, *fragments: str) -> None:
    """The message is one paragraph (no line breaks) and contains every fragment."""
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"


def tiny_module(conv_dim: int = 4, **kwargs: Any) -> GANModule:
    torch.manual_seed(0)
    adam = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.0, 0.9))
    kwargs.setdefault("optimizer_g", adam)
    kwargs.setdefault("optimizer_d", adam)
    kwargs.setdefault("generator", Generator(32, z_dim=8, conv_dim=conv_dim))
    kwargs.setdefault("discriminator", Discriminator(32, conv_dim=conv_dim))
    return GANModule(**kwargs)


def tiny_data() -> ShapesDataModule:
    return ShapesDataModule(
        num_images=16, image_size=32, batch_size=4, num_workers=0, eval_batch_size=8
    )


def tiny_trainer(root: Path, every: int = 1) -> Trainer:
    return Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=-1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(root),
        plugins=[AtomicCheckpointIO()],
        callbacks=[GeneratorIterationCheckpoint(every, dirpath=str(root / "checkpoints"))],
    )


def write_image(
    path: Path, mode: str = "RGB", size: tuple[int, int] = (32, 32), colour: Any = None
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour if colour is not None else 0).save(path)
    return path


def truncated_jpeg(path: Path) -> Path:
    """A noise JPEG cut in half: its header parses, full decoding fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(3).integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path, format="JPEG", quality=90)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path
