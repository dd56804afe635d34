"""FD-CLIP (Kynkäänniemi et al., ICLR 2023, "The Role of ImageNet Classes in Fréchet Inception
Distance"): the Fréchet distance of Gaussians fitted to the CLIP ViT-B/32 image embeddings of
real and generated images.

The same statistics and float64 distance as FID (:class:`~giugan.metrics.fid.FIDScore`), on the
``clip`` extractor (:mod:`giugan.metrics.clip`, torch-fidelity's CLIP encoder); the real
statistics are cached as ``fd_clip_*`` entries of the reference file, under a key holding the
CLIP weights hash. Switched on by ``fd_clip: true``.
"""

from __future__ import annotations

from typing import Any

from giugan.metrics.fid import FIDScore
from giugan.metrics.score import Logged, ScoreSettings


class FDCLIPScore(FIDScore):
    """The Fréchet distance in CLIP image embeddings (lower is better)."""

    name = "fd_clip"
    label = "FD-CLIP"
    logged = (Logged("fd_clip", "lower"),)
    extractor = "clip"
    consumes = "features"

    @classmethod
    def protocol(cls, settings: ScoreSettings, enabled: bool) -> dict[str, Any]:
        return {
            "fd_clip": enabled,
            "fd_clip_features": "CLIP projected image embedding (Kynkäänniemi et al. 2023)",
        }


__all__ = ["FDCLIPScore"]
