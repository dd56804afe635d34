"""SAGAN self-attention as in ``heykeetae/Self-Attention-GAN`` (docs/operators.md)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from giugan.validation import check_divisible, check_int


class SelfAttention(nn.Module):
    """``Y = gamma * softmax(Q^T K) V + X`` with 1x1 convs Q, K: C -> C/8 and V: C -> C.

    All three convs have biases and no spectral norm; gamma is a scalar initialised to 0, so the
    layer is the identity at initialisation. Parameters ``2*(C*C/8 + C/8) + C*C + C + 1``
    (5,201 for C=64). ``forward`` returns the features; :meth:`attend` also returns the (B, N, N)
    attention map whose rows sum to 1.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        owner = "SelfAttention"
        check_int("channels", channels, owner=owner)
        check_divisible("channels", channels, "8 (the query/key reduction)", 8, owner=owner)
        self.channels = channels
        self.query = nn.Conv2d(channels, channels // 8, 1)
        self.key = nn.Conv2d(channels, channels // 8, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.softmax = nn.Softmax(dim=-1)

    def attend(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(Y, A)``: output features and the attention map ``A[b, i, j]``."""
        batch, channels, height, width = x.shape
        n = height * width
        q = self.query(x).view(batch, -1, n).permute(0, 2, 1)  # (B, N, C/8)
        k = self.key(x).view(batch, -1, n)  # (B, C/8, N)
        attention = self.softmax(torch.bmm(q, k))  # (B, N, N), rows sum to 1
        v = self.value(x).view(batch, -1, n)  # (B, C, N)
        out = torch.bmm(v, attention.permute(0, 2, 1)).view(batch, channels, height, width)
        return self.gamma * out + x, attention

    def forward(self, x: Tensor) -> Tensor:
        return self.attend(x)[0]
