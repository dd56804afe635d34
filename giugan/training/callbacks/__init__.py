"""Lightning callbacks: sample grids, checkpoints in generator iterations, non-finite guards,
a progress bar in generator iterations, the prediction writer."""

from giugan.training.callbacks.checkpoints import (
    AtomicCheckpointIO,
    BestCheckpoint,
    GeneratorIterationCheckpoint,
)
from giugan.training.callbacks.guards import NonFiniteError, ensure_finite, total_grad_norm
from giugan.training.callbacks.prediction import ImageWriter
from giugan.training.callbacks.progress import GeneratorIterationProgressBar
from giugan.training.callbacks.samples import SampleGrid

__all__ = [
    "AtomicCheckpointIO",
    "BestCheckpoint",
    "GeneratorIterationCheckpoint",
    "GeneratorIterationProgressBar",
    "ImageWriter",
    "NonFiniteError",
    "SampleGrid",
    "ensure_finite",
    "total_grad_norm",
]
