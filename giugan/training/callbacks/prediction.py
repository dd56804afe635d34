"""``giugan predict``: generated images as PNGs (and optionally one ``.npz``), via Lightning's writer.

Image ``i`` is generated from a latent drawn with seed ``(seed, "predict", i)``, so the same index
gives the same image whatever the batch size or number of devices. Options: the truncation trick
(BigGAN, Brock et al. 2019, section 3.1: latent entries beyond ``truncation`` redrawn) and a
latent interpolation sheet (``interpolation.png``: each row walks on the great circle from the
latent of image ``2r`` to that of ``2r + 1``, as White 2016 "Sampling generative networks").
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from giugan.atomic_files import write_json_atomically
from giugan.metrics import quantize_images
from giugan.seeding import mixed_seed

#: The file in a predictions folder that says which generator and latents its images come from.
MANIFEST = "predictions.json"
#: What the images are a function of (the checkpoint's path is not: a copy predicts the same).
IDENTITY = ("checkpoint_sha256", "generator_iteration", "seed", "truncation")
_PREDICTION_FILE = re.compile(r"^(\d{6,}\.png|images(_rank\d+)?\.npz|interpolation\.png)$")


def file_sha256(path: str) -> str:
    """sha256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prediction_source(ckpt_path: str | None, pl_module: Any, seed: int, truncation: float | None) -> dict[str, Any]:
    """What a prediction's images are a function of: the checkpoint's bytes, the seed, the truncation."""
    return {
        "checkpoint_sha256": file_sha256(ckpt_path) if ckpt_path else None,
        "seed": seed,
        "truncation": truncation,
        "checkpoint": os.path.abspath(ckpt_path) if ckpt_path else None,
        "generator_iteration": int(getattr(pl_module, "generator_iteration", 0)),
    }


def read_manifest(folder: str) -> dict[str, Any] | None:
    """The folder's ``predictions.json`` (None when there is none or it cannot be read)."""
    try:
        with open(os.path.join(folder, MANIFEST)) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def prediction_files(folder: str) -> list[str]:
    """Files ``giugan predict`` writes that are in ``folder`` (PNGs, ``.npz``, the sheet)."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names if _PREDICTION_FILE.match(n)]


def _described(source: dict[str, Any]) -> str:
    truncation = source.get("truncation")
    return (f"checkpoint {source.get('checkpoint') or 'none (untrained weights)'} (generator iteration "
            f"{source.get('generator_iteration')}, seed {source.get('seed')}, "
            f"{'no truncation' if truncation is None else f'truncation {truncation}'})")


def refusal(folder: str, previous: dict[str, Any] | None, source: dict[str, Any], count: int) -> str:
    """The paragraph refusing to write into a folder that holds another generator's images."""
    if previous is None:
        held = f"{count} prediction file(s) with no {MANIFEST} saying where they come from"
    else:
        held = f"{count} prediction file(s) of {_described(previous)}"
    return (
        f"The predictions folder {folder} holds {held}; this prediction is of {_described(source)}. "
        f"Writing here would mix or replace images of two generators, so nothing was written. Give "
        f"another folder with --predictions.output_dir, or replace them with "
        f"--predictions.overwrite true."
    )


def latents_for_indices(indices: Tensor, z_dim: int, seed: int, truncation: float | None = None) -> Tensor:
    """One standard-normal latent per image index, reproducible from ``(seed, index)``.

    With ``truncation`` t, entries with ``|z| > t`` are redrawn (from the same stream) until none is.
    """
    rows = []
    for index in indices.tolist():
        generator = torch.Generator().manual_seed(mixed_seed(seed, "predict", index))
        latent = torch.randn(z_dim, generator=generator)
        while truncation is not None and bool((outside := latent.abs() > truncation).any()):
            latent[outside] = torch.randn(int(outside.sum()), generator=generator)
        rows.append(latent)
    return torch.stack(rows)


def slerp(start: Tensor, end: Tensor, steps: int) -> Tensor:
    """``steps`` latents on the great circle from ``start`` to ``end`` (both ends included)."""
    fractions = torch.linspace(0.0, 1.0, steps).unsqueeze(1)
    cosine = torch.nn.functional.cosine_similarity(start, end, dim=0).clamp(-1.0, 1.0)
    angle = torch.arccos(cosine)
    if float(angle) < 1e-6:
        return start + fractions * (end - start)
    return (torch.sin((1 - fractions) * angle) * start + torch.sin(fractions * angle) * end) / torch.sin(angle)


class IndexedLatents(Dataset):
    """``(index, latent)`` pairs for image indices ``0 .. num_images - 1``."""

    def __init__(self, num_images: int, z_dim: int, seed: int, truncation: float | None = None) -> None:
        self.num_images, self.z_dim, self.seed, self.truncation = num_images, z_dim, seed, truncation

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int) -> tuple[int, Tensor]:
        return index, latents_for_indices(torch.tensor([index]), self.z_dim, self.seed, self.truncation)[0]


class ImageWriter(BasePredictionWriter):
    """Write each predicted image as ``<output_dir>/<index:06d>.png``.

    Args:
        num_images: how many images ``giugan predict`` generates.
        seed: latent seed; image ``i`` comes from ``(seed, "predict", i)``.
        output_dir: folder (default ``<run dir>/predictions``).
        npz: also write ``images.npz`` (``images_rank<r>.npz`` under DDP) with arrays ``index`` and
            ``images`` (uint8, N x H x W x 3), e.g. for FID tools.
        batch_size: latents per prediction batch.
        truncation: None, or the truncation threshold t > 0 (smaller: less varied, cleaner images).
        interpolation_steps: 0, or write ``interpolation.png``: ``interpolation_rows`` rows of this
            many images each, interpolating between the latents of images ``2r`` and ``2r + 1``.
        interpolation_rows: rows of the interpolation sheet.
        overwrite: replace predictions of another checkpoint, seed or truncation found in the
            folder (their PNGs, ``.npz`` and sheet are deleted first). Without it such a folder is
            refused, so images of two generators are never mixed; predicting again with the same
            checkpoint, seed and truncation is always allowed (the same images are written).

    The folder's ``predictions.json`` records what its images come from: the checkpoint (path,
    sha256, generator iteration), ``seed``, ``truncation`` and the number of images.
    """

    def __init__(
        self,
        num_images: int = 64,
        seed: int = 0,
        output_dir: str | None = None,
        npz: bool = False,
        batch_size: int = 64,
        truncation: float | None = None,
        interpolation_steps: int = 0,
        interpolation_rows: int = 8,
        overwrite: bool = False,
    ) -> None:
        super().__init__(write_interval="batch")
        if truncation is not None and not truncation > 0:
            raise ValueError(f"predictions.truncation={truncation!r} must be > 0 (or null for none).")
        if interpolation_steps < 0 or interpolation_steps == 1 or interpolation_rows < 1:
            raise ValueError(
                f"predictions.interpolation_steps={interpolation_steps!r} must be 0 (no sheet) or >= 2, "
                f"and predictions.interpolation_rows={interpolation_rows!r} >= 1."
            )
        self.truncation = truncation
        self.interpolation_steps, self.interpolation_rows = interpolation_steps, interpolation_rows
        if not isinstance(num_images, int) or num_images < 1:
            raise ValueError(f"predictions.num_images={num_images!r} must be an integer >= 1.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"predictions.batch_size={batch_size!r} must be an integer >= 1.")
        self.num_images, self.seed, self.output_dir = num_images, seed, output_dir
        self.npz, self.batch_size = npz, batch_size
        if not isinstance(overwrite, bool):
            raise ValueError(f"predictions.overwrite={overwrite!r} must be true or false.")
        self.overwrite = overwrite
        self._stored: list[tuple[np.ndarray, np.ndarray]] = []

    def dataloader(self, z_dim: int) -> DataLoader:
        """The prediction loop's data: ``(indices, latents)`` batches."""
        dataset = IndexedLatents(self.num_images, z_dim, self.seed, self.truncation)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=False)

    def folder(self, trainer: Trainer) -> str:
        return self.output_dir or os.path.join(trainer.log_dir or trainer.default_root_dir, "predictions")

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Refuse (or, with ``overwrite``, clear) a folder holding another generator's images."""
        folder = self.folder(trainer)  # every rank: trainer.log_dir broadcasts under DDP
        source = prediction_source(trainer.ckpt_path, pl_module, self.seed, self.truncation)
        previous = read_manifest(folder)
        existing = prediction_files(folder)
        same = previous is not None and all(previous.get(k) == source[k] for k in IDENTITY)
        if existing and not same:
            if not self.overwrite:
                raise ValueError(refusal(folder, previous, source, len(existing)))
            if trainer.is_global_zero:
                for path in existing:
                    os.remove(path)
        if trainer.is_global_zero:
            count = self.num_images
            if same and existing and previous is not None:
                count = max(count, int(previous.get("num_images", 0)))
            write_json_atomically(os.path.join(folder, MANIFEST), {**source, "num_images": count}, indent=2)
        # No rank writes an image before rank 0 has cleared the folder (every rank gets here).
        trainer.strategy.barrier("giugan-predictions-folder")

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

    def interpolation_sheet(self, pl_module: Any) -> np.ndarray:
        """The interpolation sheet as uint8 pixels (``rows * H`` x ``steps * W`` x 3)."""
        ends = latents_for_indices(
            torch.arange(2 * self.interpolation_rows), pl_module.z_dim, self.seed, self.truncation
        )
        latents = torch.cat([slerp(ends[2 * r], ends[2 * r + 1], self.interpolation_steps)
                             for r in range(self.interpolation_rows)])
        pixels = quantize_images(pl_module.generate(latents).cpu())  # (rows * steps, 3, H, W)
        _, channels, height, width = pixels.shape
        sheet = pixels.reshape(self.interpolation_rows, self.interpolation_steps, channels, height, width)
        return sheet.permute(0, 3, 1, 4, 2).reshape(self.interpolation_rows * height, -1, channels).numpy()

    def on_predict_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        folder = self.folder(trainer)  # every rank: trainer.log_dir broadcasts under DDP
        if self.interpolation_steps and trainer.is_global_zero:
            os.makedirs(folder, exist_ok=True)
            sheet = self.interpolation_sheet(pl_module)
            Image.fromarray(sheet.squeeze(-1) if sheet.shape[-1] == 1 else sheet).save(
                os.path.join(folder, "interpolation.png")
            )
        if not self._stored:
            return
        indices = np.concatenate([i for i, _ in self._stored])
        images = np.concatenate([x for _, x in self._stored])
        self._stored = []
        name = "images.npz" if trainer.world_size == 1 else f"images_rank{trainer.global_rank}.npz"
        np.savez_compressed(os.path.join(folder, name), index=indices, images=images)
