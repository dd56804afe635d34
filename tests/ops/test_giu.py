"""GIU module (docs/operators.md): SE-generated kernel over the original input, parameter counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from giugan.ops import GIU, Involution2d, involution_aggregate

pytestmark = pytest.mark.usefixtures("single_thread")

def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def set_centre_kernel(giu: GIU) -> None:
    inv = giu.involution
    k2 = inv.kernel_size**2
    with torch.no_grad():
        inv.span.weight.zero_()
        inv.span.bias.zero_()
        for g in range(inv.groups):
            inv.span.bias[g * k2 + k2 // 2] = 1.0


def randomise_se(giu: GIU, scale: float = 1.0) -> None:
    """Make the SE gate clearly non-trivial (far from 1 and varying across channels)."""
    with torch.no_grad():
        for p in giu.se.parameters():
            p.copy_(scale * torch.randn_like(p))


# ------------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("aggregate_from", ["input", "recalibrated"])
def test_open_se_gate_makes_giu_a_plain_involution(training: bool, aggregate_from: str) -> None:
    giu = GIU(32, group_channels=8, aggregate_from=aggregate_from).train(training)
    with torch.no_grad():
        giu.se.up.bias.fill_(float("inf"))  # s = sigmoid(+inf) = 1
    x = torch.randn(2, 32, 5, 5)
    assert torch.all(giu.se.gate(x) == 1)
    plain = Involution2d(32, 3, group_channels=8).train(training)
    plain.load_state_dict(giu.involution.state_dict())
    torch.testing.assert_close(giu(x), plain(x))


@pytest.mark.parametrize("shape", [(2, 32, 4, 4), (1, 64, 7, 5), (3, 16, 1, 1)])
def test_output_shape_equals_input_shape(shape) -> None:
    giu = GIU(shape[1]).eval()
    x = torch.randn(*shape)
    assert giu(x).shape == x.shape


def test_centre_kernel_gives_identity_regardless_of_se() -> None:
    giu = GIU(32, group_channels=16, se_reduction=4)
    set_centre_kernel(giu)
    x = torch.randn(2, 32, 5, 5)
    for scale in (0.5, 3.0):
        randomise_se(giu, scale)
        gate = giu.se.gate(x)
        assert (gate - 1).abs().max() > 0.1  # the SE really rescales channels
        torch.testing.assert_close(giu(x), x)


def test_recalibrated_aggregation_differs_and_rescales_values() -> None:
    from_input = GIU(32, group_channels=16, se_reduction=4, aggregate_from="input")
    randomise_se(from_input)
    from_recal = GIU(32, group_channels=16, se_reduction=4, aggregate_from="recalibrated")
    from_recal.load_state_dict(from_input.state_dict())
    x = torch.randn(2, 32, 5, 5)
    assert not torch.allclose(from_input(x), from_recal(x))
    # With the identity kernel the recalibrated variant returns the SE output s * X.
    set_centre_kernel(from_recal)
    torch.testing.assert_close(from_recal(x), x * from_recal.se.gate(x)[:, :, None, None])


def test_kernel_is_generated_from_recalibrated_features_and_applied_to_input() -> None:
    """Eq. 9-10: Wg from s*X, windows from the original X (default aggregate_from='input')."""
    giu = GIU(32, group_channels=8, se_reduction=4).eval()
    randomise_se(giu)
    x = torch.randn(2, 32, 6, 6)
    recalibrated = giu.se(x)
    inv = giu.involution
    expected = involution_aggregate(x, inv.generate_kernel(recalibrated), 3, inv.groups)
    torch.testing.assert_close(giu(x), expected)
    # ... which differs from generating the kernel from X itself.
    assert not torch.allclose(giu(x), inv(x))


def test_defaults_follow_paper_and_spec() -> None:
    giu = GIU(256)
    assert giu.channels == 256
    assert giu.aggregate_from == "input"
    assert giu.involution.kernel_size == 3
    assert giu.involution.groups == 256 // 16
    assert giu.involution.reduction_ratio == 4  # r1 = 4 reproduces the tables (docs/operators.md)
    assert giu.se.down.out_features == 256 // 16
    assert giu.se.up.bias is not None


# ---------------------------------------------------------------------------- parameter counts


@pytest.mark.parametrize(
    ("channels", "total", "se_part", "involution_part"),
    [
        (64, 2_248, 580, 1_668),
        (128, 8_720, 2_184, 6_536),
        (256, 34_336, 8_464, 25_872),
        (512, 136_256, 33_312, 102_944),
    ],
)
def test_parameter_counts(channels: int, total: int, se_part: int, involution_part: int) -> None:
    giu = GIU(channels)
    assert count_params(giu) == total
    assert count_params(giu.se) == se_part
    assert count_params(giu.involution) == involution_part


@pytest.mark.parametrize(("channels", "total"), [(256, 34_336), (512, 136_256)])
def test_parameter_counts_without_se_bias(channels: int, total: int) -> None:
    assert count_params(GIU(channels, se_bias=False)) == total - (channels // 16 + channels)


# ------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("factory", "needles"),
    [
        (lambda: GIU(32, aggregate_from="output"), ["aggregate_from='output'"]),
        (lambda: GIU(32, aggregate_from=None), ["aggregate_from=None"]),
        (lambda: GIU(100), ["channels=100"]),
        (lambda: GIU(64, group_channels=24), ["channels=64", "group_channels=24"]),
        (lambda: GIU(64, reduction_ratio=3), ["reduction_ratio=3"]),
        (lambda: GIU(64, kernel_size=4), ["kernel_size=4"]),
        (lambda: GIU(64, se_reduction=0), ["reduction=0"]),
        (lambda: GIU(0), ["channels=0"]),
    ],
)
def test_bad_arguments(factory, needles) -> None:
    with pytest.raises(ValueError) as info:
        factory()
    for needle in needles:
        assert needle in str(info.value)
