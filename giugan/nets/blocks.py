"""Small insertable blocks used by the presets (e.g. the extra layers of WGAN-GP(+2)/(+3))."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from giugan.ops.spectral import maybe_spectral_norm
from giugan.validation import check_int, check_odd_kernel


class ConvBlock(nn.Module):
    """Shape-keeping ``Conv KxK (stride 1, same padding) [+ BN] + activation``.

    GIU-GANs section 3 / Table 6: WGAN-GP(+2) adds ``3x3 conv C->C + BN + ReLU`` to the generator
    and ``3x3 conv C->C + LeakyReLU(0.1)`` to the discriminator (docs/architectures.md).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        norm: Literal["batch", "none"] = "batch",
        activation: Literal["relu", "leaky_relu"] = "relu",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        check_int("channels", channels, owner="ConvBlock")
        check_odd_kernel(kernel_size, owner="ConvBlock")
        if norm not in ("batch", "none"):
            raise ValueError(f"ConvBlock: norm={norm!r} is not allowed; use 'batch' or 'none'.")
        if activation not in ("relu", "leaky_relu"):
            raise ValueError(
                f"ConvBlock: activation={activation!r} is not allowed; use 'relu' or 'leaky_relu'."
            )
        self.channels = channels
        conv = nn.Conv2d(channels, channels, kernel_size, 1, (kernel_size - 1) // 2)
        layers: list[nn.Module] = [maybe_spectral_norm(conv, spectral_norm)]
        if norm == "batch":
            layers.append(nn.BatchNorm2d(channels))
        layers.append(nn.ReLU(inplace=True) if activation == "relu" else nn.LeakyReLU(0.1, inplace=True))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)
