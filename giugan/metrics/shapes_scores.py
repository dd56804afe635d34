"""Scores of generated shapes images from the shapes judge (:mod:`giugan.metrics.shapes_judge`).

* **recognisable** - the fraction of samples for which *every* head (shape, colour, background)
  gives its most probable class a probability above :data:`RECOGNISABLE_THRESHOLD` (0.9).
* **modes covered** - how many of the 36 (shape, colour, background) modes at least one
  recognisable sample falls in.
* **mode balance** - :math:`D_{KL}(p_{samples} \\Vert p_{real})` over the 36 modes, each sample
  and real image counted in the mode of its most probable classes (the mode-KL of Srivastava et
  al. 2017, "VEEGAN", Table 2, and Lin et al. 2018, "PacGAN", on stacked MNIST). Both histograms
  get :data:`MODE_PSEUDO_COUNT` (0.5, Jeffreys) added to every mode before normalising, so the
  divergence is finite; 0 is perfect balance, a single collapsed mode gives about ``log 36``.
* **judge Fréchet distance** - the Fréchet distance (Heusel et al. 2017) between Gaussians fitted
  to the judge's 64-d feature layer for samples and real images.

The ``*_from_outputs`` functions are pure functions of :class:`JudgeOutputs`;
:func:`shapes_judge_scores` runs the judge once over both image batches and returns all four.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from giugan.metrics.fid import frechet_distance
from giugan.metrics.shapes_judge import HEAD_SIZES, JudgeOutputs, ShapesJudge, judge_images

__all__ = [
    "MODE_PSEUDO_COUNT",
    "NUM_MODES",
    "RECOGNISABLE_THRESHOLD",
    "frechet_from_outputs",
    "mode_balance",
    "mode_balance_from_outputs",
    "mode_histogram",
    "modes_covered_from_outputs",
    "predicted_modes",
    "recognisable_from_outputs",
    "recognisable_mask",
    "shapes_judge_scores",
]

RECOGNISABLE_THRESHOLD = 0.9
MODE_PSEUDO_COUNT = 0.5
NUM_MODES = math.prod(HEAD_SIZES)


def recognisable_mask(outputs: JudgeOutputs, threshold: float = RECOGNISABLE_THRESHOLD) -> Tensor:
    """``(N,)`` bool: every head's top probability is above ``threshold``."""
    confident = [p.max(dim=1).values > threshold for p in outputs.probabilities]
    return torch.stack(confident).all(dim=0)


def predicted_modes(outputs: JudgeOutputs) -> Tensor:
    """``(N,)`` int64 mode index ``(shape * 6 + colour) * 2 + background`` of the top classes."""
    shape, colour, background = (p.argmax(dim=1) for p in outputs.probabilities)
    return (shape * HEAD_SIZES[1] + colour) * HEAD_SIZES[2] + background


def mode_histogram(outputs: JudgeOutputs, mask: Tensor | None = None) -> Tensor:
    """``(36,)`` float64 counts of :func:`predicted_modes` (of the samples in ``mask`` if given)."""
    modes = predicted_modes(outputs)
    if mask is not None:
        modes = modes[mask]
    return torch.bincount(modes, minlength=NUM_MODES).double()


def recognisable_from_outputs(
    outputs: JudgeOutputs, threshold: float = RECOGNISABLE_THRESHOLD
) -> float:
    """Fraction of samples whose every head is confident above ``threshold``."""
    return float(recognisable_mask(outputs, threshold).double().mean())


def modes_covered_from_outputs(
    outputs: JudgeOutputs, threshold: float = RECOGNISABLE_THRESHOLD
) -> float:
    """Number of modes (of 36) holding at least one recognisable sample."""
    return float((mode_histogram(outputs, recognisable_mask(outputs, threshold)) > 0).sum())


def mode_balance_from_outputs(
    outputs: JudgeOutputs, real_histogram: Tensor, pseudo_count: float = MODE_PSEUDO_COUNT
) -> float:
    """:math:`D_{KL}(p_{samples} \\Vert p_{real})` of the smoothed mode histograms, in nats."""
    if real_histogram.shape != (NUM_MODES,):
        raise ValueError(
            f"real_histogram must hold one count per mode, shape ({NUM_MODES},); got "
            f"{tuple(real_histogram.shape)}. Compute it with mode_histogram(judge_images(real))."
        )
    return mode_balance(mode_histogram(outputs), real_histogram, pseudo_count)


def mode_balance(
    sample_histogram: Tensor, real_histogram: Tensor, pseudo_count: float = MODE_PSEUDO_COUNT
) -> float:
    """:math:`D_{KL}(p_{samples} \\Vert p_{real})` of two ``(36,)`` mode count histograms, in nats.

    Both get ``pseudo_count`` added to every mode before normalising (see the module doc).
    """
    samples = sample_histogram.double() + pseudo_count
    real = real_histogram.double() + pseudo_count
    p, q = samples / samples.sum(), real / real.sum()
    return float((p * (p / q).log()).sum())


def frechet_from_outputs(outputs: JudgeOutputs, real: JudgeOutputs) -> float:
    """Fréchet distance between Gaussians fitted to the two sets' judge features (float64)."""
    statistics = []
    for features in (outputs.features, real.features):
        if features.shape[0] < 2:
            raise ValueError(
                "The judge Fréchet distance needs at least 2 images per set to estimate a "
                f"covariance; got {features.shape[0]}."
            )
        features = features.double()
        statistics += [features.mean(dim=0), torch.cov(features.T)]
    return frechet_distance(*statistics)


def shapes_judge_scores(
    images: Tensor,
    real_images: Tensor,
    judge: ShapesJudge | None = None,
    threshold: float = RECOGNISABLE_THRESHOLD,
) -> dict[str, float]:
    """All four scores of ``images`` against ``real_images`` (uint8, or float in [-1, 1]).

    Returns:
        ``recognisable``, ``modes_covered``, ``mode_balance`` and ``judge_frechet`` as floats.
    """
    outputs, real = judge_images(images, judge), judge_images(real_images, judge)
    return {
        "recognisable": recognisable_from_outputs(outputs, threshold),
        "modes_covered": modes_covered_from_outputs(outputs, threshold),
        "mode_balance": mode_balance_from_outputs(outputs, mode_histogram(real)),
        "judge_frechet": frechet_from_outputs(outputs, real),
    }
