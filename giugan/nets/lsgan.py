"""LSGAN of ``eriklindernoren/PyTorch-GAN`` (``implementations/lsgan/lsgan.py``).

See docs/architectures.md.

At 32x32 with latent_dim 100: 1,149,284 parameters and 117,249,536 thop-2020 MACs (G + D),
GIU-GANs Table 5 exactly. ``BatchNorm2d(C, 0.8)`` sets eps = 0.8: a quirk of that repository,
kept for fidelity.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from giugan.validation import NETWORK_IMAGE_SIZES, check_int


def _check_size(image_size: int, owner: str) -> None:
    if image_size not in NETWORK_IMAGE_SIZES:
        raise ValueError(
            f"{owner}: image_size={image_size!r} is not supported; use 32 (GIU-GANs Table 5) or "
            f"64 (Table 6; see the README for why that row does not match)."
        )


class LSGANGenerator(nn.Module):
    """Linear(z -> 128 x s/4 x s/4), [Upsample x2, Conv3x3, BN(eps .8), LReLU .2] x 2, Conv3x3 + Tanh."""

    def __init__(self, image_size: int = 32, z_dim: int = 100) -> None:
        super().__init__()
        _check_size(image_size, "LSGANGenerator")
        check_int("z_dim", z_dim, owner="LSGANGenerator")
        self.image_size = image_size
        self.z_dim = z_dim
        self.init_size = image_size // 4
        self.project = nn.Linear(z_dim, 128 * self.init_size**2)
        self.main = nn.Sequential(
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 128, 3, stride=1, padding=1),
            nn.BatchNorm2d(128, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 64, 3, stride=1, padding=1),
            nn.BatchNorm2d(64, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(64, 3, 3, stride=1, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:
        x = self.project(z.view(z.shape[0], self.z_dim))
        return self.main(x.view(z.shape[0], 128, self.init_size, self.init_size))


class LSGANDiscriminator(nn.Module):
    """Four [Conv3x3 s2 p1, LReLU .2, Dropout2d .25, BN(eps .8)] blocks (16..128 ch), Linear to a score."""

    def __init__(self, image_size: int = 32) -> None:
        super().__init__()
        _check_size(image_size, "LSGANDiscriminator")
        self.image_size = image_size
        layers: list[nn.Module] = []
        in_channels = 3
        for index, out_channels in enumerate((16, 32, 64, 128)):
            layers += [
                nn.Conv2d(in_channels, out_channels, 3, 2, 1),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Dropout2d(0.25),
            ]
            if index > 0:
                layers.append(nn.BatchNorm2d(out_channels, 0.8))
            in_channels = out_channels
        self.main = nn.Sequential(*layers)
        self.score = nn.Linear(128 * (image_size // 16) ** 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.score(torch.flatten(self.main(x), 1)).squeeze(1)
