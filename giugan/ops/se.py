"""Squeeze-and-excitation (Hu et al., 2018); docs/operators.md, "SE"."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from giugan.validation import check_divisible, check_int


class SqueezeExcitation(nn.Module):
    """Channel recalibration ``X * sigmoid(W_up ReLU(W_down GAP(X)))`` (GIU-GANs eqs. 7-8).

    ``W_down: C -> C/r``, ``W_up: C/r -> C`` as ``nn.Linear`` (biases optional, on by default as in
    torchvision/timm). Parameters: ``2*C*C/r`` plus ``C/r + C`` with bias (8,464 for C=256, r=16).
    """

    def __init__(self, channels: int, reduction: int = 16, bias: bool = True) -> None:
        super().__init__()
        owner = "SqueezeExcitation"
        check_int("channels", channels, owner=owner)
        check_int("reduction", reduction, owner=owner)
        check_divisible("channels", channels, "reduction", reduction, owner=owner)
        self.channels = channels
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.down = nn.Linear(channels, channels // reduction, bias=bias)
        self.act = nn.ReLU(inplace=True)
        self.up = nn.Linear(channels // reduction, channels, bias=bias)
        self.gate_act = nn.Sigmoid()

    def gate(self, x: Tensor) -> Tensor:
        """Channel weights ``s`` of shape (B, C) in (0, 1) (GIU-GANs eq. 8)."""
        z = torch.flatten(self.squeeze(x), 1)
        return self.gate_act(self.up(self.act(self.down(z))))

    def forward(self, x: Tensor) -> Tensor:
        """Recalibrated features ``s[:, :, None, None] * x`` (GIU-GANs eq. 9)."""
        return x * self.gate(x)[:, :, None, None]
