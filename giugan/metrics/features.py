"""The shared extractor of a metric suite: built once, run once per batch for every score.

The extractor is built by :func:`shared_extractor` (or disabled with a reason when the Inception
weights are missing and the suite was told to warn), run by :func:`extract_features` under
``no_grad`` and without autocast, and described in protocols by :func:`extractor_protocol`.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from giugan.metrics.extractors import (
    ExtractorName,
    InceptionWeightsUnavailable,
    ResizeName,
    build_extractor,
)


def check_on_missing_weights(on_missing_weights: str) -> None:
    """Refuse an ``on_missing_weights`` other than "error" or "warn"."""
    if on_missing_weights not in ("error", "warn"):
        raise ValueError(
            f"GenerativeMetrics: `on_missing_weights` must be 'error' or 'warn', got "
            f"{on_missing_weights!r}."
        )


def shared_extractor(
    name: ExtractorName,
    weights_path: str | None,
    weights_sha256: str | None,
    on_missing_weights: str,
    resize: ResizeName = "tensorflow",
) -> tuple[nn.Module | None, str | None]:
    """``(extractor in eval mode without gradients, None)``, or ``(None, reason)``.

    Missing Inception weights raise :class:`InceptionWeightsUnavailable` when
    ``on_missing_weights`` is "error"; with "warn" they warn once and give ``(None, reason)``.
    """
    check_on_missing_weights(on_missing_weights)
    try:
        network = build_extractor(name, weights_path, weights_sha256, resize)
    except InceptionWeightsUnavailable as err:
        if on_missing_weights == "error":
            raise
        warnings.warn(
            "FID/IS/KID are disabled (on_missing_weights='warn'). " + str(err), stacklevel=3
        )
        return None, str(err)
    network.eval()
    network.requires_grad_(False)
    return network, None


def extract_features(
    network: nn.Module, images: Tensor, device: torch.device, consumed: set[str]
) -> dict[str, Tensor]:
    """``{"features": ..., "logits": ...}`` of a batch, in float32, checked where consumed.

    Args:
        network: an extractor of this module.
        images: uint8 ``(B, 3, H, W)`` or ``(B, 1, H, W)`` (grey is repeated to RGB).
        device: where the extractor runs.
        consumed: the outputs some score uses (``"features"``, ``"logits"``); NaN/inf there is
            an error.
    """
    if not isinstance(images, Tensor) or images.dtype != torch.uint8:
        raise TypeError(
            "GenerativeMetrics takes uint8 images in [0, 255]; got "
            + (f"dtype {images.dtype}" if isinstance(images, Tensor) else type(images).__name__)
            + ". Quantise generator output (floats in [-1, 1]) with "
            "giugan.metrics.quantize_images first; never pass floats in [0, 1]."
        )
    if images.dim() != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError(
            "GenerativeMetrics takes a non-empty batch of images of shape (B, 3, H, W) or "
            f"(B, 1, H, W); got {tuple(images.shape)}."
        )
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    # No autograd, and no autocast: a mixed-precision trainer must not run the extractor in
    # fp16/bf16 (the protocol is float32 features).
    with torch.no_grad(), torch.autocast(device.type, enabled=False):
        features, logits = network(images.to(device))
    outputs = {"features": features.float(), "logits": logits.float()}
    for what, name in (("pool features", "features"), ("logits", "logits")):
        value = outputs[name]
        if name in consumed and not torch.isfinite(value).all():
            raise RuntimeError(
                f"The {network.name} extractor returned NaN/inf {what} for "
                f"{int((~torch.isfinite(value)).any(dim=1).sum())} of {value.shape[0]} images. "
                "FID/IS/KID would be NaN; check the extractor weights (a corrupt file?) and "
                "the images passed in."
            )
    return outputs


def extractor_protocol(name: str, network: nn.Module | None) -> dict[str, object]:
    """The extractor's part of a metrics protocol (``None`` entries when it is unavailable)."""
    return {
        "extractor": name,
        "extractor_identity": getattr(network, "identity", None),
        "comparable_with_papers": name == "inception",
        "weights_file": getattr(network, "weights_path", None),
        "weights_sha256": getattr(network, "weights_sha256", None),
        "resize": getattr(network, "resize", None),
        "feature_dim": getattr(network, "num_features", None),
        "num_classes": getattr(network, "num_classes", None),
    }


__all__ = ["check_on_missing_weights", "extract_features", "extractor_protocol", "shared_extractor"]
