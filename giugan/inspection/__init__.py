"""Looking inside trained networks: GIU-GANs Figure 1/2-style PCA maps of discriminator features."""

from giugan.inspection.pca_maps import (
    capture_layer_output,
    first_component_maps,
    grey_grid,
    normalise_maps,
    save_grey_grid,
)

__all__ = [
    "capture_layer_output",
    "first_component_maps",
    "grey_grid",
    "normalise_maps",
    "save_grey_grid",
]
