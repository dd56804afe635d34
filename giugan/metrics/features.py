"""The extractors of a metric suite: built once, each run once per batch for all its scores.

:func:`build_extractors` builds the extractors that the enabled scores name (or disables the
suite with a reason when weights are missing and the suite was told to warn);
:class:`FeatureExtractors` runs each of them once per batch, under ``no_grad`` and without
autocast, names its outputs, checks the consumed ones for NaN/inf, and describes the extractors in
protocols and reference keys.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from giugan.metrics.extractor_registry import ExtractorOptions, build_named_extractor
from giugan.metrics.extractors import WeightsUnavailable

#: The role whose network the ``extractor`` option chooses (the Inception or its stand-in).
INCEPTION_ROLE = "inception"


def check_on_missing_weights(on_missing_weights: str) -> None:
    """Refuse an ``on_missing_weights`` other than "error" or "warn"."""
    if on_missing_weights not in ("error", "warn"):
        raise ValueError(
            f"GenerativeMetrics: `on_missing_weights` must be 'error' or 'warn', got "
            f"{on_missing_weights!r}."
        )


def check_images(images: Any) -> Tensor:
    """A uint8 ``(B, 3, H, W)`` batch (grey ``(B, 1, H, W)`` is repeated to RGB), or an error."""
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
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


class FeatureExtractors:
    """The built extractors of one suite, by registered name (role ``inception`` included).

    Args:
        networks: registered name -> extractor (in eval mode, without gradients); each has an
            ``outputs`` dict (output name -> width, in the order of its forward's tuple).
        inception: the registered name that serves the ``inception`` role ("inception" or
            "standin"), as the ``extractor`` option chose it.
    """

    def __init__(self, networks: dict[str, nn.Module], inception: str) -> None:
        self.networks = networks
        self.inception = inception

    def resolve(self, name: str) -> str:
        """The registered extractor serving ``name`` (the ``inception`` role is the option's)."""
        return self.inception if name == INCEPTION_ROLE else name

    def network(self, name: str) -> nn.Module | None:
        """The extractor serving ``name`` (``None`` when it is not built)."""
        return self.networks.get(self.resolve(name))

    def width(self, name: str, output: str) -> int:
        """The size of output ``output`` of the extractor serving ``name``."""
        network = self.network(name)
        assert network is not None, name
        return int(network.outputs[output])

    def to(self, device: torch.device) -> None:
        """Move every extractor to ``device`` (never the dtype: features stay float32)."""
        for network in self.networks.values():
            network.to(device=device)

    def run(
        self, images: Tensor, device: torch.device, consumed: dict[str, set[str]]
    ) -> dict[str, dict[str, Tensor]]:
        """``{extractor: {output: float32 values}}`` of a batch, for the extractors in ``consumed``.

        Args:
            images: uint8 ``(B, 3, H, W)`` or ``(B, 1, H, W)`` (grey is repeated to RGB).
            device: where the extractors run.
            consumed: extractor (name or role) -> the outputs some score uses; each of these
                extractors runs once, and NaN/inf in a consumed output is an error.
        """
        images = check_images(images).to(device)
        results: dict[str, dict[str, Tensor]] = {}
        for name, outputs in consumed.items():
            network = self.network(name)
            assert network is not None, name
            # No autograd, and no autocast: a mixed-precision trainer must not run an extractor
            # in fp16/bf16 (the protocol is float32 features).
            with torch.no_grad(), torch.autocast(device.type, enabled=False):
                values = network(images)
            named = {key: value.float() for key, value in zip(network.outputs, values)}
            for output in outputs:
                _check_finite(network.name, output, named[output])
            results[name] = named
        return results

    def key_entries(self, names: Iterable[str]) -> dict[str, Any]:
        """What the extractors ``names`` put into a reference key.

        The ``inception`` role keeps the entries keys always had (extractor, identity, weights
        hash, resize, feature dimension), so existing caches stay valid; any other extractor adds
        its identity (weights hash, resolution, layer) under ``extractors``.
        """
        entries: dict[str, Any] = {}
        others: dict[str, str] = {}
        for name in dict.fromkeys(names):
            network = self.network(name)
            if name == INCEPTION_ROLE:
                entries.update(
                    extractor=self.inception,
                    extractor_identity=getattr(network, "identity", "unavailable"),
                    weights_sha256=getattr(network, "weights_sha256", None),
                    resize=getattr(network, "resize", "unavailable"),
                    feature_dim=getattr(network, "num_features", None),
                )
            else:
                others[name] = getattr(network, "identity", "unavailable")
        if others:
            entries["extractors"] = others
        return entries

    def protocol(self) -> dict[str, Any]:
        """The extractors' part of a metrics protocol (``None`` entries for an unbuilt one)."""
        network = self.network(INCEPTION_ROLE)
        entries: dict[str, Any] = {
            "extractor": self.inception,
            "extractor_identity": getattr(network, "identity", None),
            "comparable_with_papers": self.inception == INCEPTION_ROLE,
            "weights_file": getattr(network, "weights_path", None),
            "weights_sha256": getattr(network, "weights_sha256", None),
            "resize": getattr(network, "resize", None),
            "feature_dim": getattr(network, "num_features", None),
            "num_classes": getattr(network, "num_classes", None),
        }
        for name, other in self.networks.items():
            if name != self.inception and callable(getattr(other, "protocol", None)):
                entries.update(other.protocol())
        return entries


def _check_finite(extractor: str, output: str, value: Tensor) -> None:
    if torch.isfinite(value).all():
        return
    what = "pool features" if output == "features" else output
    raise RuntimeError(
        f"The {extractor} extractor returned NaN/inf {what} for "
        f"{int((~torch.isfinite(value)).reshape(value.shape[0], -1).any(dim=1).sum())} of "
        f"{value.shape[0]} images. The scores would be NaN; check the extractor weights (a "
        "corrupt file?) and the images passed in."
    )


def build_extractors(
    names: Iterable[str], options: ExtractorOptions, on_missing_weights: str
) -> tuple[FeatureExtractors, str | None]:
    """``(the extractors named, None)``, or ``(no extractors, reason)``.

    Args:
        names: extractor names or roles the enabled scores consume (each built once).
        options: the suite's extractor options.
        on_missing_weights: "error" lets :class:`WeightsUnavailable` propagate; "warn" warns once
            and returns no extractors with the reason.
    """
    check_on_missing_weights(on_missing_weights)
    extractors = FeatureExtractors({}, options.inception)
    networks: dict[str, nn.Module] = {}
    try:
        for name in dict.fromkeys(extractors.resolve(n) for n in names):
            networks[name] = build_named_extractor(name, options).eval().requires_grad_(False)
    except WeightsUnavailable as err:
        if on_missing_weights == "error":
            raise
        warnings.warn("The metrics are disabled (on_missing_weights='warn'). " + str(err), stacklevel=3)
        return extractors, str(err)
    extractors.networks = networks
    return extractors, None


__all__ = [
    "INCEPTION_ROLE",
    "FeatureExtractors",
    "build_extractors",
    "check_images",
    "check_on_missing_weights",
]
