"""Involution: the identities, naive-loop reference and parameter counts of docs/operators.md."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from giugan.ops import (
    IGANInvolution2d,
    Involution2d,
    igan_report_parameter_count,
    involution_aggregate,
)
from giugan.ops.involution import (
    MATMUL_MAX_PIXELS_PER_TAP,
    aggregate_as_matmul,
    aggregate_by_unfold,
)

pytestmark = pytest.mark.usefixtures("single_thread")

def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def build(kind: str, channels: int, kernel_size: int, groups: int) -> nn.Module:
    """Both flavours configured with the same number of groups."""
    if kind == "official":
        return Involution2d(channels, kernel_size, group_channels=channels // groups)
    return IGANInvolution2d(channels, kernel_size, groups=groups, reduction_ratio=2)


def set_constant_kernel(module: nn.Module, onehot: dict[int, int]) -> None:
    """Span weight 0; span bias one-hot at kernel position ``onehot[g]`` for each listed group g."""
    k2 = module.kernel_size**2
    with torch.no_grad():
        module.span.weight.zero_()
        module.span.bias.zero_()
        for group, t in onehot.items():
            module.span.bias[group * k2 + t] = 1.0


def shift(x: torch.Tensor, di: int, dj: int) -> torch.Tensor:
    """``out[..., i, j] = x[..., i + di, j + dj]``, zero where out of range."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    for i, j in itertools.product(range(h), range(w)):
        if 0 <= i + di < h and 0 <= j + dj < w:
            out[..., i, j] = x[..., i + di, j + dj]
    return out


KINDS = ["official", "igan"]


# ----------------------------------------------------------------- identities of docs/operators.md


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_centre_one_hot_kernel_is_identity(kind: str, kernel_size: int) -> None:
    module = build(kind, 32, kernel_size, groups=2)
    centre = kernel_size * kernel_size // 2
    set_constant_kernel(module, {0: centre, 1: centre})
    x = torch.randn(2, 32, 6, 7)
    torch.testing.assert_close(module(x), x)
    module.eval()
    torch.testing.assert_close(module(x), x)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_top_left_one_hot_shifts_by_minus_half_window(kind: str, kernel_size: int) -> None:
    module = build(kind, 32, kernel_size, groups=2)
    set_constant_kernel(module, {0: 0, 1: 0})
    x = torch.randn(2, 32, 6, 5)
    y = module(x)
    half = kernel_size // 2
    expected = shift(x, -half, -half)
    torch.testing.assert_close(y, expected)
    # Zero padding: the first `half` rows and columns come from outside the image.
    assert torch.all(y[..., :half, :] == 0) and torch.all(y[..., :, :half] == 0)
    if kernel_size == 3:  # docs/operators.md's shift identity: Y[..., i, j] = X[..., i-1, j-1]
        torch.testing.assert_close(y[..., 1:, 1:], x[..., :-1, :-1])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("group", [0, 1, 2, 3])
def test_one_hot_in_one_group_only_touches_that_groups_channels(kind: str, group: int) -> None:
    channels, groups = 32, 4
    gc = channels // groups
    module = build(kind, channels, 3, groups=groups)
    t = 5  # offset (0, +1): Y[..., i, j] = X[..., i, j+1]
    set_constant_kernel(module, {group: t})
    x = torch.randn(2, channels, 5, 5)
    y = module(x)
    inside = slice(group * gc, (group + 1) * gc)
    outside = torch.ones(channels, dtype=torch.bool)
    outside[inside] = False
    assert torch.all(y[:, outside] == 0)
    torch.testing.assert_close(y[:, inside], shift(x[:, inside], 0, 1))
    assert y[:, inside].abs().sum() > 0


def test_group_of_channel_is_contiguous_block() -> None:
    """Channel c belongs to group c // gc, not c % G (docs/operators.md, "Involution" step 2)."""
    module = Involution2d(32, 3, group_channels=16)  # G = 2
    set_constant_kernel(module, {1: 4})
    x = torch.randn(1, 32, 4, 4)
    y = module(x)
    assert torch.all(y[:, :16] == 0)
    torch.testing.assert_close(y[:, 16:], x[:, 16:])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [(1, 1), (4, 4), (5, 9)])
def test_stride_one_keeps_shape(kind: str, size: tuple[int, int]) -> None:
    module = build(kind, 16, 3, groups=2).eval()
    x = torch.randn(2, 16, *size)
    assert module(x).shape == x.shape


def test_stride_two_halves_shape_and_samples_every_other_pixel() -> None:
    module = Involution2d(32, 3, stride=2, group_channels=16)
    x = torch.randn(2, 32, 8, 6)
    assert module(x).shape == (2, 32, 4, 3)
    set_constant_kernel(module, {0: 4, 1: 4})
    torch.testing.assert_close(module(x), x[..., ::2, ::2])


def test_stride_two_kernel_comes_from_avg_pooled_input() -> None:
    module = Involution2d(32, 3, stride=2, group_channels=8, reduction_ratio=4).eval()
    x = torch.randn(2, 32, 8, 8)
    pooled = F.avg_pool2d(x, 2, 2)
    hidden = F.relu(module.reduce_norm(module.reduce(pooled)))
    expected = involution_aggregate(x, module.span(hidden), 3, 4, stride=2)
    torch.testing.assert_close(module(x), expected)
    # The kernel would differ if it were taken from the strided (not pooled) pixels.
    hidden_strided = F.relu(module.reduce_norm(module.reduce(x[..., ::2, ::2])))
    wrong = involution_aggregate(x, module.span(hidden_strided), 3, 4, stride=2)
    assert not torch.allclose(module(x), wrong)


# --------------------------------------------------------------------- reference implementations


def naive_involution(x: torch.Tensor, kernel: torch.Tensor, k: int, groups: int, stride: int = 1):
    """Loop over (b, c, i, j, ki, kj) exactly as docs/operators.md step 3 states it."""
    b_, c_, h, w = x.shape
    out_h, out_w = kernel.shape[-2:]
    gc = c_ // groups
    pad = (k - 1) // 2
    xs, ks = x.tolist(), kernel.tolist()
    y = torch.zeros(b_, c_, out_h, out_w, dtype=torch.float64)
    for b, c, i, j in itertools.product(range(b_), range(c_), range(out_h), range(out_w)):
        g = c // gc
        acc = 0.0
        for ki, kj in itertools.product(range(k), range(k)):
            row, col = i * stride + ki - pad, j * stride + kj - pad
            if 0 <= row < h and 0 <= col < w:
                acc += ks[b][g * k * k + ki * k + kj][i][j] * xs[b][c][row][col]
        y[b, c, i, j] = acc
    return y


AGGREGATIONS = {"dispatch": involution_aggregate, "matmul": aggregate_as_matmul,
                "unfold": aggregate_by_unfold}


def random_aggregation_inputs(
    channels: int, groups: int, size: tuple[int, int], kernel_size: int, stride: int, **kw
) -> tuple[torch.Tensor, torch.Tensor]:
    height, width = size
    pad = (kernel_size - 1) // 2
    out_h = (height + 2 * pad - kernel_size) // stride + 1
    out_w = (width + 2 * pad - kernel_size) // stride + 1
    x = torch.randn(2, channels, height, width, **kw)
    return x, torch.randn(2, groups * kernel_size**2, out_h, out_w, **kw)


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
@pytest.mark.parametrize(
    ("kernel_size", "stride", "size"),
    [(3, 1, (6, 5)), (5, 1, (6, 5)), (3, 2, (6, 5)), (5, 2, (6, 5)), (7, 1, (3, 4)), (1, 1, (4, 4)),
     (3, 2, (1, 1))],
)
def test_aggregate_matches_naive_loop(aggregation: str, kernel_size: int, stride: int, size) -> None:
    """Both formulations (and the dispatch between them) are the sum of docs/operators.md step 3,
    also where the window is larger than the image (7 on 3x4) and at stride 2."""
    x, kernel = random_aggregation_inputs(4, 2, size, kernel_size, stride, dtype=torch.float64)
    got = AGGREGATIONS[aggregation](x, kernel, kernel_size, 2, stride)
    torch.testing.assert_close(got, naive_involution(x, kernel, kernel_size, 2, stride))


@pytest.mark.parametrize("aggregation", ["matmul", "unfold"])
def test_aggregation_is_twice_differentiable(aggregation: str) -> None:
    """The gradient penalty differentiates the critic's input gradient again (double backward)."""
    x, kernel = random_aggregation_inputs(4, 2, (5, 4), 3, 1, dtype=torch.float64, requires_grad=True)
    function = AGGREGATIONS[aggregation]
    assert torch.autograd.gradgradcheck(lambda a, b: function(a, b, 3, 2, 1), (x, kernel))


@pytest.mark.parametrize(
    ("size", "kernel_size", "expected"),
    [((4, 4), 3, "matmul"), ((8, 8), 3, "matmul"), ((16, 16), 5, "matmul"), ((16, 16), 3, "unfold"),
     ((32, 32), 7, "unfold")],
)
def test_dispatch_takes_matmul_only_for_few_pixels_per_tap(size, kernel_size: int, expected: str) -> None:
    """H*W <= MATMUL_MAX_PIXELS_PER_TAP * K*K goes to the matmul: the result is bit-identical to
    the chosen formulation (the two differ in summation order, so fp32 tells them apart)."""
    assert (size[0] * size[1] <= MATMUL_MAX_PIXELS_PER_TAP * kernel_size**2) == (expected == "matmul")
    x, kernel = random_aggregation_inputs(32, 4, size, kernel_size, 1, generator=torch.Generator().manual_seed(0))
    got = involution_aggregate(x, kernel, kernel_size, 4)
    chosen = AGGREGATIONS[expected](x, kernel, kernel_size, 4)
    other = AGGREGATIONS["unfold" if expected == "matmul" else "matmul"](x, kernel, kernel_size, 4)
    assert torch.equal(got, chosen)
    torch.testing.assert_close(got, other)


def test_matmul_aggregation_under_bf16_autocast_stays_close_to_fp32() -> None:
    """Autocast runs the matmul in bf16; the result keeps bf16's ~3 significant digits."""
    x, kernel = random_aggregation_inputs(32, 4, (4, 4), 3, 1, generator=torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = aggregate_as_matmul(x, kernel, 3, 4)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), aggregate_as_matmul(x, kernel, 3, 4), rtol=2e-2, atol=5e-2)


@pytest.mark.parametrize("kind", KINDS)
def test_module_equals_spec_pipeline(kind: str) -> None:
    """span(ReLU(BN(reduce(X)))), then the aggregation over the input (docs/operators.md; BN in
    train mode)."""
    module = build(kind, 32, 3, groups=2)
    x = torch.randn(3, 32, 5, 5)
    h = F.conv2d(x, module.reduce.weight)
    h = F.batch_norm(
        h, None, None, module.reduce_norm.weight, module.reduce_norm.bias, True, 0.0, 1e-5
    )
    kernel = F.conv2d(F.relu(h), module.span.weight, module.span.bias)
    expected = naive_involution(x.double(), kernel.double(), 3, 2).float()
    torch.testing.assert_close(module(x), expected, rtol=1e-4, atol=1e-5)


def test_kernel_source_argument_generates_kernel_from_other_tensor() -> None:
    module = Involution2d(16, 3, group_channels=8).eval()
    x, source = torch.randn(2, 16, 5, 5), torch.randn(2, 16, 5, 5)
    expected = involution_aggregate(x, module.generate_kernel(source), 3, 2)
    torch.testing.assert_close(module(x, kernel_source=source), expected)
    assert not torch.allclose(module(x, kernel_source=source), module(x))


# ------------------------------------------------------------------------- parameter counts


def test_official_involution_parameter_count_c256() -> None:
    assert count_params(Involution2d(256, 3, group_channels=16, reduction_ratio=4)) == 25_872


@pytest.mark.parametrize(
    ("channels", "kernel_size", "gc", "r"),
    [(256, 3, 16, 4), (512, 3, 16, 4), (64, 7, 16, 4), (256, 5, 8, 4), (128, 3, 32, 16)],
)
def test_official_involution_parameter_formula(channels, kernel_size, gc, r) -> None:
    g, hidden = channels // gc, channels // r
    expected = channels * hidden + 2 * hidden + hidden * kernel_size**2 * g + kernel_size**2 * g
    assert count_params(Involution2d(channels, kernel_size, 1, gc, r)) == expected


def test_official_involution_layout() -> None:
    module = Involution2d(256)
    assert module.groups == 16 and module.reduction_ratio == 4  # hard-coded defaults of d-li14
    assert module.reduce.bias is None  # mmcv bias='auto' with a norm: no bias
    assert module.span.bias is not None
    assert module.reduce_norm.momentum == pytest.approx(0.1)
    assert module.span.out_channels == 9 * 16


def test_igan_involution_default_parameter_count_and_layout() -> None:
    module = IGANInvolution2d()
    assert count_params(module) == 3_300
    assert (module.channels, module.kernel_size, module.groups, module.reduction_ratio) == (
        64, 3, 4, 2
    )
    assert module.reduce.bias is None and module.span.bias is not None
    assert module.reduce_norm.num_features == 32
    assert module.reduce_norm.momentum == pytest.approx(0.3)
    assert module.stride == 1


# (case, K, G, R, report Table 2 value, count of the module the iGAN code actually runs)
TABLE_2 = [
    (1, 3, 4, 2, 800, 3_300),
    (2, 7, 4, 8, 520, 2_292),
    (3, 7, 4, 2, 2_080, 8_580),
    (4, 3, 4, 8, 200, 852),
    (5, 3, 1, 2, 2_336, 2_409),
    # The report prints 644 for case 6: a typo, its own eq. (4) gives 544 (docs/operators.md).
    (6, 1, 4, 2, 544, 2_244),
    (7, 5, 4, 2, 1_312, 5_412),
]


@pytest.mark.parametrize(("case", "k", "g", "r", "report", "actual"), TABLE_2)
def test_igan_report_formula_and_actual_module(case, k, g, r, report, actual) -> None:
    assert igan_report_parameter_count(64, k, g, r) == report
    assert count_params(IGANInvolution2d(64, k, g, r)) == actual


# ---------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("factory", "needles"),
    [
        (lambda: Involution2d(30), ["channels=30", "group_channels=16"]),
        (lambda: Involution2d(32, reduction_ratio=3), ["channels=32", "reduction_ratio=3"]),
        (lambda: Involution2d(32, kernel_size=4), ["kernel_size=4", "odd"]),
        (lambda: Involution2d(0), ["channels=0"]),
        (lambda: Involution2d(-16), ["channels=-16"]),
        (lambda: Involution2d(32, kernel_size=0), ["kernel_size=0"]),
        (lambda: Involution2d(32, stride=0), ["stride=0"]),
        (lambda: Involution2d(32, group_channels=0), ["group_channels=0"]),
        (lambda: Involution2d(32, reduction_ratio=0), ["reduction_ratio=0"]),
        (lambda: Involution2d(32, reduction_ratio=-2), ["reduction_ratio=-2"]),
        (lambda: Involution2d(True), ["channels=True"]),
        (lambda: Involution2d(32.0), ["channels=32.0"]),
        (lambda: IGANInvolution2d(64, groups=3), ["channels=64", "groups=3"]),
        (lambda: IGANInvolution2d(64, groups=0), ["groups=0"]),
        (lambda: IGANInvolution2d(64, kernel_size=2), ["kernel_size=2"]),
        (lambda: IGANInvolution2d(64, reduction_ratio=5), ["reduction_ratio=5"]),
    ],
)
def test_bad_arguments_raise_value_error_naming_argument(factory, needles) -> None:
    with pytest.raises(ValueError) as info:
        factory()
    for needle in needles:
        assert needle in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_input_channels_raise(kind: str) -> None:
    module = build(kind, 32, 3, groups=2)
    with pytest.raises(ValueError, match=r"\(B, 32, H, W\)"):
        module(torch.randn(2, 16, 4, 4))
    with pytest.raises(ValueError):
        module(torch.randn(32, 4, 4))


def test_matmul_aggregation_compiles_without_graph_breaks() -> None:
    """``compile_networks`` compiles G and D whole: building the tap index must not break the graph."""
    import torch._dynamo

    x, kernel = random_aggregation_inputs(8, 2, (4, 4), 3, 1)
    explanation = torch._dynamo.explain(aggregate_as_matmul)(x, kernel, 3, 2, 1)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    torch._dynamo.reset()
