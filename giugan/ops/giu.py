"""The global-information-utilisation (GIU) module of GIU-GANs (Algorithm 1, eqs. 7-10).

SE recalibrates the channels, the involution kernel is generated from the recalibrated features,
and the K x K windows that kernel weighs are taken from the original input (eq. 10);
docs/operators.md.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from giugan.ops.involution import Involution2d
from giugan.ops.se import SqueezeExcitation

AggregateFrom = Literal["input", "recalibrated"]


class GIU(nn.Module):
    """SE (r2) followed by an official-style involution (K, group_channels, r1).

    Args:
        channels: input = output channels C.
        kernel_size: involution window K (paper: 3; Table 4 sweeps 3/5/7).
        group_channels: channels sharing one kernel (paper: 16, so G = C/16; Table 4: 8/16/32).
        reduction_ratio: r1 of the kernel generator. The paper's text says 16, but every Params
            and FLOPs entry of its tables is reproduced only with r1 = 4, the official involution's
            hard-coded value (docs/operators.md, "GIU"), so the default is 4.
        se_reduction: r2 of the SE block (paper: 16).
        se_bias: whether SE's two FC layers carry biases (the tables cannot tell; docs/counting.md).
        aggregate_from: ``"input"`` (eq. 10, default) aggregates windows of the original X;
            ``"recalibrated"`` aggregates the SE output instead.

    Parameters at defaults: 34,336 for C=256, 136,256 for C=512 (docs/operators.md, "GIU").
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        group_channels: int = 16,
        reduction_ratio: int = 4,
        se_reduction: int = 16,
        se_bias: bool = True,
        aggregate_from: AggregateFrom = "input",
    ) -> None:
        super().__init__()
        if aggregate_from not in ("input", "recalibrated"):
            raise ValueError(
                f"GIU: aggregate_from={aggregate_from!r} is not allowed; use 'input' (GIU-GANs "
                f"eq. 10, the default) or 'recalibrated'."
            )
        self.channels = channels
        self.aggregate_from = aggregate_from
        self.se = SqueezeExcitation(channels, se_reduction, bias=se_bias)
        self.involution = Involution2d(
            channels, kernel_size, 1, group_channels=group_channels, reduction_ratio=reduction_ratio
        )

    def forward(self, x: Tensor) -> Tensor:
        recalibrated = self.se(x)
        values = x if self.aggregate_from == "input" else recalibrated
        return self.involution(values, kernel_source=recalibrated)
