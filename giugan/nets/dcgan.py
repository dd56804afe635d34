"""Radford et al.'s DCGAN trimmed to 32x32, as the GIU-GANs Table 5 row (docs/architectures.md).

PyTorch DCGAN example with nz = 128, ngf = ndf = 64, no conv biases, no spectral norm:
4,341,248 parameters and 309,239,808 thop-2020 MACs for G + D.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from giugan.validation import check_int


def _num_blocks(image_size: int, owner: str) -> int:
    if image_size not in (32, 64):
        raise ValueError(
            f"{owner}: image_size={image_size!r} is not supported; use 32 (the paper's CIFAR-10 "
            f"row) or 64 (the PyTorch DCGAN example)."
        )
    return int(math.log2(image_size)) - 2


class DCGANGenerator(nn.Module):
    """ConvT(z -> 8*ngf, 4x4) + BN + ReLU, then ConvT k4 s2 p1 + BN + ReLU blocks, ConvT to RGB + Tanh."""

    def __init__(self, image_size: int = 32, z_dim: int = 128, conv_dim: int = 64) -> None:
        super().__init__()
        num_blocks = _num_blocks(image_size, "DCGANGenerator")
        check_int("z_dim", z_dim, owner="DCGANGenerator")
        check_int("conv_dim", conv_dim, owner="DCGANGenerator")
        self.image_size = image_size
        self.z_dim = z_dim
        # 32x32: 512 -> 256 -> 128 (the example's 64x64 stack without its last hidden block).
        top = conv_dim * 8
        channels = [top // 2**i for i in range(num_blocks)]
        layers: list[nn.Module] = []
        in_channels = z_dim
        for index, out_channels in enumerate(channels):
            stride, padding = (1, 0) if index == 0 else (2, 1)
            layers += [
                nn.ConvTranspose2d(in_channels, out_channels, 4, stride, padding, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
            in_channels = out_channels
        layers += [nn.ConvTranspose2d(in_channels, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.main(z.view(z.shape[0], self.z_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    """Conv k4 s2 p1 + LeakyReLU(0.2) (BN from block 2 on), Conv k4 to one score.

    The example ends with a Sigmoid. By default we return the logit and the non-saturating loss
    applies the sigmoid inside a numerically stable BCE-with-logits (same function, same counts:
    thop counts Sigmoid as 0); ``output_sigmoid=True`` returns probabilities as the example does.
    """

    def __init__(self, image_size: int = 32, conv_dim: int = 64, output_sigmoid: bool = False) -> None:
        super().__init__()
        num_blocks = _num_blocks(image_size, "DCGANDiscriminator")
        check_int("conv_dim", conv_dim, owner="DCGANDiscriminator")
        self.image_size = image_size
        layers: list[nn.Module] = []
        in_channels = 3
        for index in range(num_blocks):
            out_channels = conv_dim * 2**index
            layers.append(nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=False))
            if index > 0:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            in_channels = out_channels
        layers.append(nn.Conv2d(in_channels, 1, 4, 1, 0, bias=False))
        if output_sigmoid:
            layers.append(nn.Sigmoid())
        self.main = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return torch.flatten(self.main(x), 1).squeeze(1)
