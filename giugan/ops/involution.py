"""Involution (Li et al., 2021) in two flavours: the official kernel generator and the iGAN one.

Semantics follow docs/operators.md: a per-pixel K x K kernel is generated from the pixel's own
feature vector (1x1 reduce -> BN -> ReLU -> 1x1 span), shared by all channels of a group, and
multiplied-and-summed with the K x K neighbourhood of the *input* (zero padding).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from giugan.validation import check_divisible, check_int, check_odd_kernel

#: Inputs of at most this many pixels (H * W) per kernel tap (K * K) are aggregated as one batched
#: matmul (:func:`aggregate_as_matmul`), larger ones by ``unfold`` (:func:`aggregate_by_unfold`).
#: The matmul does ``H*W / (K*K)`` times the multiply-adds of the direct sum, but as a matmul; it
#: was faster up to about 10, even with unfold around 16 and slower from about 28
#: (docs/performance.md, "Involution aggregation").
MATMUL_MAX_PIXELS_PER_TAP = 12


def involution_aggregate(
    values: Tensor, kernel: Tensor, kernel_size: int, groups: int, stride: int = 1
) -> Tensor:
    """Multiply each K x K neighbourhood of ``values`` with its per-pixel, per-group kernel.

    docs/operators.md, "Involution", steps 2-3: ``Y[b,c,i,j] = sum_t kernel[b, g(c)*K*K + t, i, j] *
    unfold(values)[b, c, t, i, j]`` with ``g(c) = c // (C / groups)`` and ``t = ki*K + kj``.
    Small inputs take :func:`aggregate_as_matmul`, the others :func:`aggregate_by_unfold`; both
    compute the same sum (in a different order, so fp32 results agree to rounding).

    Args:
        values: (B, C, H, W) features whose neighbourhoods are aggregated.
        kernel: (B, groups*K*K, H', W') generated kernel, group-major channel order.
        kernel_size: odd window size K.
        groups: number of kernel groups G (C must be divisible by G).
        stride: spatial stride of the aggregation.

    Returns:
        (B, C, H', W') tensor.
    """
    if values.shape[-2] * values.shape[-1] <= MATMUL_MAX_PIXELS_PER_TAP * kernel_size * kernel_size:
        return aggregate_as_matmul(values, kernel, kernel_size, groups, stride)
    return aggregate_by_unfold(values, kernel, kernel_size, groups, stride)


def aggregate_by_unfold(
    values: Tensor, kernel: Tensor, kernel_size: int, groups: int, stride: int = 1
) -> Tensor:
    """:func:`involution_aggregate` as written in docs/operators.md: unfold, multiply, sum."""
    batch, channels = values.shape[:2]
    k2 = kernel_size * kernel_size
    out_h, out_w = kernel.shape[-2:]
    patches = F.unfold(values, kernel_size, padding=(kernel_size - 1) // 2, stride=stride)
    patches = patches.view(batch, groups, channels // groups, k2, out_h, out_w)
    weights = kernel.view(batch, groups, 1, k2, out_h, out_w)
    return (weights * patches).sum(dim=3).view(batch, channels, out_h, out_w)


def aggregate_as_matmul(
    values: Tensor, kernel: Tensor, kernel_size: int, groups: int, stride: int = 1
) -> Tensor:
    """:func:`involution_aggregate` as ``Y[b, g] = X[b, g] @ M[b, g]`` (docs/performance.md).

    ``X[b, g]`` is the group's (C/G, H*W) block of ``values`` and ``M[b, g]`` an (H*W, H'*W')
    matrix whose column for output pixel ``p`` holds that pixel's K*K kernel weights at the rows of
    the input pixels they multiply (zero elsewhere, and no row for taps in the zero padding).
    ``M`` is gathered from ``kernel`` with a fixed index, so the whole aggregation is one batched
    matmul (which autocast runs in bf16/fp16) and stays twice differentiable for the penalty.
    """
    batch, channels, height, width = values.shape
    out_h, out_w = kernel.shape[-2:]
    index = _tap_index(height, width, out_h, out_w, kernel_size, stride, values.device)
    taps = F.pad(kernel.reshape(batch, groups, -1), (0, 1))  # the last slot is the zero weight
    mixing = taps.index_select(-1, index).view(batch, groups, height * width, out_h * out_w)
    grouped = values.reshape(batch, groups, channels // groups, height * width)
    return torch.matmul(grouped, mixing).view(batch, channels, out_h, out_w)


def _tap_index(
    height: int, width: int, out_h: int, out_w: int, kernel_size: int, stride: int,
    device: torch.device,
) -> Tensor:
    """Flat (H*W * H'*W') index into ``[kernel taps of one group..., 0]`` for :func:`aggregate_as_matmul`.

    Entry ``(q, p)`` is ``t * H'*W' + p`` when tap ``t`` of output pixel ``p`` reads input pixel
    ``q``, and ``K*K * H'*W'`` (the appended zero) when no tap does. Eager calls reuse a cached
    index; under ``torch.compile`` it is built in the graph (shape-only ops, no graph break).
    """
    if torch.compiler.is_compiling():
        return _build_tap_index(height, width, out_h, out_w, kernel_size, stride, device)
    return _cached_tap_index(height, width, out_h, out_w, kernel_size, stride, device)


def _build_tap_index(
    height: int, width: int, out_h: int, out_w: int, kernel_size: int, stride: int,
    device: torch.device,
) -> Tensor:
    pad = (kernel_size - 1) // 2
    outputs, taps = out_h * out_w, kernel_size * kernel_size
    tap = torch.arange(taps, device=device).view(taps, 1)
    pixel = torch.arange(outputs, device=device).view(1, outputs)
    row = torch.div(pixel, out_w, rounding_mode="floor") * stride - pad + torch.div(
        tap, kernel_size, rounding_mode="floor")
    col = pixel % out_w * stride - pad + tap % kernel_size
    inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
    # Taps in the zero padding are written past the H*W rows (one slot each, so no index repeats)
    # and dropped; inside the image, distinct taps of one output pixel read distinct input pixels.
    pixels = height * width
    target = torch.where(inside, (row * width + col) * outputs + pixel, (pixels + tap) * outputs + pixel)
    index = torch.full(((pixels + taps) * outputs,), taps * outputs, dtype=torch.long, device=device)
    index = index.scatter(0, target.flatten(), (tap * outputs + pixel).flatten())
    return index[: pixels * outputs]


_cached_tap_index = functools.lru_cache(maxsize=64)(_build_tap_index)


class _Involution(nn.Module):
    """Shared body: kernel generator ``span(ReLU(BN(reduce(x))))`` + :func:`involution_aggregate`."""

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        stride: int,
        groups: int,
        reduction_ratio: int,
        bn_momentum: float,
        owner: str,
    ) -> None:
        super().__init__()
        check_int("channels", channels, owner=owner)
        check_odd_kernel(kernel_size, owner=owner)
        check_int("stride", stride, owner=owner)
        check_int("reduction_ratio", reduction_ratio, owner=owner)
        check_divisible("channels", channels, "reduction_ratio", reduction_ratio, owner=owner)
        self.channels = channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.groups = groups
        self.reduction_ratio = reduction_ratio
        hidden = channels // reduction_ratio
        self.kernel_pool = nn.AvgPool2d(stride, stride) if stride > 1 else nn.Identity()
        self.reduce = nn.Conv2d(channels, hidden, 1, bias=False)
        self.reduce_norm = nn.BatchNorm2d(hidden, momentum=bn_momentum)
        self.reduce_act = nn.ReLU(inplace=True)
        self.span = nn.Conv2d(hidden, kernel_size * kernel_size * groups, 1, bias=True)

    def generate_kernel(self, source: Tensor) -> Tensor:
        """Per-pixel kernels (B, G*K*K, H', W') from ``source`` (docs/operators.md step 1)."""
        hidden = self.reduce_act(self.reduce_norm(self.reduce(self.kernel_pool(source))))
        return self.span(hidden)

    def forward(self, x: Tensor, kernel_source: Tensor | None = None) -> Tensor:
        """Involution of ``x``; the kernel is generated from ``kernel_source`` (default ``x``)."""
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"{type(self).__name__}: expected input of shape (B, {self.channels}, H, W), got "
                f"{tuple(x.shape)}. Build the module with channels equal to the input's channels."
            )
        kernel = self.generate_kernel(x if kernel_source is None else kernel_source)
        return involution_aggregate(x, kernel, self.kernel_size, self.groups, self.stride)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, kernel_size={self.kernel_size}, groups={self.groups}, "
            f"reduction_ratio={self.reduction_ratio}, stride={self.stride}"
        )


class Involution2d(_Involution):
    """Official-style involution (``d-li14/involution``, docs/operators.md, "Involution").

    Kernel generator: 1x1 conv C -> C/r without bias, BatchNorm (momentum 0.1), ReLU, 1x1 conv
    C/r -> K*K*G with bias; ``G = channels / group_channels``. The official code hard-codes
    r = 4 and group_channels = 16; both are arguments here with those defaults.
    Trainable parameters: ``C*C/r + 2*C/r + (C/r)*K*K*G + K*K*G`` (25,872 for C=256, K=3).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        group_channels: int = 16,
        reduction_ratio: int = 4,
    ) -> None:
        owner = "Involution2d"
        check_int("channels", channels, owner=owner)
        check_int("group_channels", group_channels, owner=owner)
        check_divisible("channels", channels, "group_channels", group_channels, owner=owner)
        self.group_channels = group_channels
        super().__init__(
            channels, kernel_size, stride, channels // group_channels, reduction_ratio, 0.1, owner
        )


class IGANInvolution2d(_Involution):
    """The involution the iGAN report's code ran (docs/operators.md, "iGAN involution").

    A pre-May-2021 ``ChristophReich1996/Involution`` module with the report's settings: ``groups``
    is the number of groups (not channels per group), reduce conv without bias, BatchNorm with
    momentum 0.3, span conv with bias, stride 1. Default C=64, K=3, G=4, r=2 has 3,300 parameters.
    """

    def __init__(
        self,
        channels: int = 64,
        kernel_size: int = 3,
        groups: int = 4,
        reduction_ratio: int = 2,
        bn_momentum: float = 0.3,
    ) -> None:
        owner = "IGANInvolution2d"
        check_int("channels", channels, owner=owner)
        check_int("groups", groups, owner=owner)
        check_divisible("channels", channels, "groups", groups, owner=owner)
        super().__init__(channels, kernel_size, 1, groups, reduction_ratio, bn_momentum, owner)


def igan_report_parameter_count(
    channels: int, kernel_size: int, groups: int, reduction_ratio: int
) -> int:
    """Parameter count of the iGAN report's eq. (4): ``(C/G + K^2) * C/(R*G) * G``.

    This is the weight count of a grouped, bias-free two-layer kernel generator
    (docs/operators.md); it
    reproduces six of the seven Table 2 entries (the K=1 row prints 644, the formula gives 544).
    It is *not* the parameter count of :class:`IGANInvolution2d`, which is ungrouped with a BN.
    """
    c, k, g, r = channels, kernel_size, groups, reduction_ratio
    return (c // g + k * k) * (c // (r * g)) * g
