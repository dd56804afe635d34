"""A trained generator on its own: ``giugan export`` writes it, :func:`load_generator` reads it.

``from giugan.export import load_generator`` imports neither Lightning nor the training code
(docs/export.md): ``generator = load_generator("runs/quickstart/export/last")`` and
``generator(torch.randn(16, generator.z_dim))`` gives 16 images in [-1, 1].
"""

from giugan.export.loading import (
    DESCRIPTION_FILE,
    TORCHSCRIPT_FILE,
    WEIGHTS_FILE,
    load_generator,
    read_description,
)

__all__ = ["DESCRIPTION_FILE", "TORCHSCRIPT_FILE", "WEIGHTS_FILE", "load_generator", "read_description"]
