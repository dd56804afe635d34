"""FD-DINOv2 (Stein et al., NeurIPS 2023, "Exposing flaws of generative model evaluation metrics
and their unfair treatment of diffusion models", section 4): the Fréchet distance of Gaussians
fitted to the DINOv2 ViT-L/14 features of real and generated images.

The same statistics and float64 distance as FID (:class:`~giugan.metrics.fid.FIDScore`), on the
``dinov2`` extractor (:mod:`giugan.metrics.dinov2`, preprocessed as torch-fidelity's DINOv2
extractor); the real statistics are cached as ``fd_dinov2_*`` entries of the reference file,
under a key holding the DINOv2 weights hash. Switched on by ``fd_dinov2: true``.
"""

from __future__ import annotations

from typing import Any

from giugan.metrics.fid import FIDScore
from giugan.metrics.score import Logged, ScoreSettings


class FDDINOv2Score(FIDScore):
    """The Fréchet distance in DINOv2 features (lower is better)."""

    name = "fd_dinov2"
    label = "FD-DINOv2"
    logged = (Logged("fd_dinov2", "lower"),)
    extractor = "dinov2"
    consumes = "features"

    @classmethod
    def protocol(cls, settings: ScoreSettings, enabled: bool) -> dict[str, Any]:
        return {
            "fd_dinov2": enabled,
            "fd_dinov2_features": "DINOv2 final-normalised class token (Stein et al. 2023)",
        }


__all__ = ["FDDINOv2Score"]
