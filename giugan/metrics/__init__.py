"""Metrics layer: FID, Inception Score, KID, precision/recall, FD-DINOv2, FD-CLIP and the shapes judge
with a pinned protocol.

Knows torch, torchmetrics, torch-fidelity (also the CLIP encoder) and timm (the DINOv2 network)
only. Public entry points:

* :class:`GenerativeMetrics` — the module a training module owns (real-statistics cache,
  fake updates, DDP-safe ``compute()``, ``protocol()``).
* :func:`compute_reference_statistics` — fill the real-statistics cache (``giugan stats``).
* :func:`quantize_images` — generator output in [-1, 1] to uint8.
* :func:`build_extractor`, :class:`InceptionExtractor`, :class:`StandInExtractor`,
  :class:`DINOv2Extractor`, :class:`CLIPExtractor`.
* :mod:`giugan.metrics.registry` — what giugan knows of each score (logged keys, directions,
  the score deciding "best"), so that nothing outside this package names one.
* :func:`frechet_distance` — the Fréchet distance of two Gaussians, float64.

Layout: one module per score (``fid``, ``inception_score``, ``kid``, ``precision_recall``,
``shapes_metric``, ``fd_dinov2``, ``fd_clip``) implementing the ``Score`` interface (``score``) and listed in
the one table of ``registry``; one module per extractor (``extractors``: Inception and the
stand-in, ``shapes_judge``, ``dinov2``, ``clip``) listed in the table of ``extractor_registry``;
``reference`` (the real-statistics cache), ``distributed`` (everything across ranks),
``features`` (the extractors of a suite, each run once per batch), ``precompute``
(``giugan stats``) and ``suite`` (the coordinator).
"""

from giugan.metrics.clip import CLIPExtractor, CLIPWeightsUnavailable
from giugan.metrics.dinov2 import DINOv2Extractor, DINOv2WeightsUnavailable
from giugan.metrics.extractor_registry import build_extractor
from giugan.metrics.extractors import (
    INCEPTION_RESIZE,
    INCEPTION_WEIGHTS_FILENAME,
    INCEPTION_WEIGHTS_URL,
    WEIGHTS_ENV_VAR,
    InceptionExtractor,
    InceptionWeightsUnavailable,
    InvalidInceptionWeights,
    StandInExtractor,
    WeightsUnavailable,
    resolve_inception_weights,
    unavailable_message,
)
from giugan.metrics.fid import frechet_distance
from giugan.metrics.precompute import compute_reference_statistics
from giugan.metrics.quantize import QUANTISATION, quantize_images
from giugan.metrics.reference import reference_file_path
from giugan.metrics.suite import GenerativeMetrics

__all__ = [
    "INCEPTION_RESIZE",
    "INCEPTION_WEIGHTS_FILENAME",
    "INCEPTION_WEIGHTS_URL",
    "QUANTISATION",
    "WEIGHTS_ENV_VAR",
    "CLIPExtractor",
    "CLIPWeightsUnavailable",
    "DINOv2Extractor",
    "DINOv2WeightsUnavailable",
    "GenerativeMetrics",
    "InceptionExtractor",
    "InceptionWeightsUnavailable",
    "InvalidInceptionWeights",
    "StandInExtractor",
    "WeightsUnavailable",
    "build_extractor",
    "compute_reference_statistics",
    "frechet_distance",
    "quantize_images",
    "reference_file_path",
    "resolve_inception_weights",
    "unavailable_message",
]
