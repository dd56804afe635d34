"""Lightning callbacks: sample grids, checkpoints in generator iterations, non-finite guards,
a progress bar in generator iterations."""

from giugan.training.callbacks.checkpoints import AtomicCheckpointIO, GeneratorIterationCheckpoint
from giugan.training.callbacks.guards import NonFiniteError, ensure_finite, total_grad_norm
from giugan.training.callbacks.progress import GeneratorIterationProgressBar
from giugan.training.callbacks.samples import SampleGrid

__all__ = [
    "AtomicCheckpointIO",
    "GeneratorIterationCheckpoint",
    "GeneratorIterationProgressBar",
    "NonFiniteError",
    "SampleGrid",
    "ensure_finite",
    "total_grad_norm",
]
