"""Representative Batch Normalization (Gao et al., 2021; docs/operators.md)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RepresentativeBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm with centring and scaling calibration (GIU-GANs section 4, docs/operators.md).

    ``X_cm = X + w_m * GAP(X)``; ``X_s = BN_no_affine(X_cm)``;
    ``Y = gamma * (sigmoid(w_v * GAP(X_s) + w_b) * X_s) + beta``.
    Trainable parameters: 5C. At initialisation (w_m = w_v = 0, w_b = 1) the output equals
    ``sigmoid(1) * BN(x)``, about 0.731 x BN. The centring is out-of-place (the official code adds
    in place into the caller's tensor).
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        shape = (1, num_features, 1, 1)
        self.center_weight = nn.Parameter(torch.zeros(shape))
        self.scale_weight = nn.Parameter(torch.zeros(shape))
        self.scale_bias = nn.Parameter(torch.ones(shape))
        self.pool = nn.AdaptiveAvgPool2d(1)

    def _standardise(self, x: Tensor) -> Tensor:
        """Plain batch normalisation without affine, with nn.BatchNorm2d's running-stat rules."""
        if self.momentum is None:
            factor = 0.0
        else:
            factor = self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or self.running_mean is None
        return F.batch_norm(
            x,
            self.running_mean if not self.training or self.track_running_stats else None,
            self.running_var if not self.training or self.track_running_stats else None,
            None,
            None,
            use_batch_stats,
            factor,
            self.eps,
        )

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        centred = x + self.center_weight * self.pool(x)
        standardised = self._standardise(centred)
        scale = torch.sigmoid(self.scale_weight * self.pool(standardised) + self.scale_bias)
        out = scale * standardised
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out
