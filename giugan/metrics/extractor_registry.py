"""The one table of feature extractors the scores of :class:`~giugan.metrics.GenerativeMetrics`
consume, by registered name.

A score names its extractor (:attr:`~giugan.metrics.score.Score.extractor`); the suite builds
an extractor only when an enabled score names it, and runs it once per batch for all of them
(:mod:`giugan.metrics.features`). An extractor is an ``nn.Module`` taking uint8 images
``(B, 3, H, W)`` and returning a tuple of float tensors named, in order, by its ``outputs`` dict
(output name -> width); it carries ``name``, ``resize`` and ``identity`` (a string that changes
whenever its features could: weights hash, resolution, layer), which enters the
reference-statistics key.

The ``inception`` role is served by the network the suite's ``extractor`` option chooses:
"inception" (the published protocol) or "standin" (its test double, numbers not comparable).

Adding an extractor: its module, one entry in :data:`EXTRACTORS`, and the options it reads in
:class:`ExtractorOptions` (arguments of ``GenerativeMetrics`` of the same names).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from giugan.metrics.clip import build_clip_extractor
from giugan.metrics.dinov2 import build_dinov2_extractor
from giugan.metrics.extractors import InceptionExtractor, build_standin
from giugan.metrics.shapes_judge import JudgeExtractor


@dataclass(frozen=True)
class ExtractorOptions:
    """The options of :class:`~giugan.metrics.GenerativeMetrics` that the extractors read."""

    inception: str = "inception"
    weights_path: str | None = None
    weights_sha256: str | None = None
    resize: str = "tensorflow"
    dinov2_weights_path: str | None = None
    dinov2_model: str = "vit_large_patch14_dinov2"
    clip_weights_path: str | None = None
    clip_model: str = "clip-vit-b-32"


@dataclass(frozen=True)
class ExtractorEntry:
    """How to build one extractor, and whether it looks its weights up itself.

    ``finds_weights`` is True when the options leave the weights to a lookup that may download
    (the suite then builds on first use, so a model holding the metrics loads on a machine
    without them); an explicit file is checked at once.
    """

    build: Callable[[ExtractorOptions], nn.Module]
    finds_weights: Callable[[ExtractorOptions], bool] = lambda options: False


#: Registered name -> extractor.
EXTRACTORS: dict[str, ExtractorEntry] = {
    "inception": ExtractorEntry(
        lambda o: InceptionExtractor(o.weights_path, o.weights_sha256, o.resize),  # type: ignore[arg-type]
        lambda o: o.weights_path is None,
    ),
    "standin": ExtractorEntry(lambda o: build_standin(o.weights_path, o.resize)),  # type: ignore[arg-type]
    "shapes_judge": ExtractorEntry(lambda o: JudgeExtractor()),
    "dinov2": ExtractorEntry(
        lambda o: build_dinov2_extractor(o.dinov2_model, o.dinov2_weights_path),
        lambda o: o.dinov2_weights_path is None,
    ),
    "clip": ExtractorEntry(
        lambda o: build_clip_extractor(o.clip_model, o.clip_weights_path),
        lambda o: o.clip_weights_path is None,
    ),
}


def build_named_extractor(name: str, options: ExtractorOptions) -> nn.Module:
    """Build the extractor registered as ``name``."""
    if name not in EXTRACTORS:
        raise ValueError(
            f"Unknown feature extractor {name!r}; registered: {', '.join(map(repr, EXTRACTORS))} "
            "('inception' is the published protocol, 'standin' its test network)."
        )
    return EXTRACTORS[name].build(options)


def build_extractor(
    name: str,
    weights_path: str | None = None,
    weights_sha256: str | None = None,
    resize: str = "tensorflow",
) -> nn.Module:
    """Build the extractor registered as ``name`` with the Inception options (which the
    stand-in checks: a path warns, ``resize="clean"`` is refused)."""
    return build_named_extractor(name, ExtractorOptions(name, weights_path, weights_sha256, resize))


__all__ = ["EXTRACTORS", "ExtractorEntry", "ExtractorOptions", "build_extractor", "build_named_extractor"]
