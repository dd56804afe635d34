"""Fill the real-statistics cache ahead of training: the ``giugan stats`` command's function."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from giugan.metrics.quantize import quantize_images

if TYPE_CHECKING:
    from giugan.metrics.suite import GenerativeMetrics


def _to_uint8(batch: Any) -> Tensor:
    if isinstance(batch, (list, tuple)):  # (images, labels) from a DataLoader
        batch = batch[0]
    if not isinstance(batch, Tensor):
        raise TypeError(
            f"Expected image tensors (or (images, labels) pairs), got {type(batch).__name__}."
        )
    if batch.dtype == torch.uint8:
        return batch
    if not batch.is_floating_point():
        raise TypeError(f"Images must be uint8 or floating point in [-1, 1], got {batch.dtype}.")
    low, high = float(batch.min()), float(batch.max())
    if low < -1.001 or high > 1.001:
        raise ValueError(
            f"Real images must be floats in [-1, 1] (or uint8), got values in [{low:.3f}, "
            f"{high:.3f}]. Check the data module's normalisation."
        )
    return quantize_images(batch)


def compute_reference_statistics(
    metrics: GenerativeMetrics,
    images: Iterable[Tensor | tuple | list],
    reference_id: str,
    num_real: int,
) -> Path:
    """Compute and cache the real statistics for ``reference_id`` (the ``giugan stats`` command).

    Uses the first ``num_real`` images of ``images`` (batches of uint8 or float in [-1, 1]
    images, or ``(images, labels)`` pairs); on a cache hit nothing is computed. Meant for one
    process; under DDP use :meth:`GenerativeMetrics.update_real`/``save_reference`` directly.

    Returns:
        The cache file path (not written when neither FID nor KID is enabled: IS needs no real
        statistics).

    Raises:
        RuntimeError: the metrics are unavailable (missing weights with ``on_missing_weights``
            set to "warn").
        ValueError: ``images`` holds fewer than ``num_real`` images.
    """
    if not metrics.available:
        raise RuntimeError(
            "Cannot compute reference statistics: the metrics are unavailable. "
            + str(metrics.unavailable_reason)
        )
    key = metrics.reference_key(reference_id, num_real)
    path = metrics.reference_path(key)
    if metrics.load_reference(key):
        return path
    metrics.reset_real()
    seen = 0
    for batch in images:
        if seen >= num_real:
            break
        uint8 = _to_uint8(batch)[: num_real - seen]
        metrics.update_real(uint8)
        seen += int(uint8.shape[0])
    if seen < num_real:
        raise ValueError(
            f"compute_reference_statistics: asked for num_real={num_real} real images of "
            f"'{reference_id}' but the images ran out after {seen}. Lower num_real or use a "
            "larger split."
        )
    metrics.save_reference(key)
    return path


__all__ = ["compute_reference_statistics"]
