"""Representative Batch Normalization (docs/operators.md): init, running stats, calibration."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from giugan.ops import RepresentativeBatchNorm2d

pytestmark = pytest.mark.usefixtures("single_thread")

SIGMOID_1 = 1 / (1 + math.exp(-1))  # 0.731059


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def randomise(rbn: RepresentativeBatchNorm2d) -> None:
    with torch.no_grad():
        for p in rbn.parameters():
            p.copy_(torch.randn_like(p))


def rbn_formula(rbn, x, mean=None, var=None):
    """Hand-written RBN forward (docs/operators.md); batch statistics (biased var) unless given."""
    w_m, w_v, w_b = rbn.center_weight, rbn.scale_weight, rbn.scale_bias
    centred = x + w_m * x.mean(dim=(2, 3), keepdim=True)
    if mean is None:
        mean = centred.mean(dim=(0, 2, 3))
        var = centred.var(dim=(0, 2, 3), unbiased=False)
    standardised = (centred - mean[None, :, None, None]) / torch.sqrt(
        var[None, :, None, None] + rbn.eps
    )
    scale = torch.sigmoid(w_v * standardised.mean(dim=(2, 3), keepdim=True) + w_b)
    out = scale * standardised
    if rbn.affine:
        out = rbn.weight[None, :, None, None] * out + rbn.bias[None, :, None, None]
    return out


def test_parameters_buffers_and_initial_values() -> None:
    rbn = RepresentativeBatchNorm2d(7)
    assert isinstance(rbn, nn.BatchNorm2d)
    assert count_params(rbn) == 5 * 7
    assert count_params(RepresentativeBatchNorm2d(256)) == 5 * 256
    for name, value in [
        ("weight", 1.0), ("bias", 0.0), ("center_weight", 0.0), ("scale_weight", 0.0),
        ("scale_bias", 1.0),
    ]:
        assert torch.all(getattr(rbn, name) == value), name
    for name in ("center_weight", "scale_weight", "scale_bias"):
        assert getattr(rbn, name).shape == (1, 7, 1, 1)
    assert torch.all(rbn.running_mean == 0) and torch.all(rbn.running_var == 1)
    assert (rbn.eps, rbn.momentum, rbn.affine, rbn.track_running_stats) == (1e-5, 0.1, True, True)
    assert count_params(RepresentativeBatchNorm2d(7, affine=False)) == 3 * 7


def test_init_equals_sigmoid_one_times_batchnorm_train_and_eval() -> None:
    rbn, bn = RepresentativeBatchNorm2d(8), nn.BatchNorm2d(8)
    for _ in range(3):
        x = 3 * torch.randn(4, 8, 5, 6) + 1
        torch.testing.assert_close(rbn(x), SIGMOID_1 * bn(x))
    # Same running statistics as BN after the same batches ...
    torch.testing.assert_close(rbn.running_mean, bn.running_mean)
    torch.testing.assert_close(rbn.running_var, bn.running_var)
    assert rbn.num_batches_tracked.item() == bn.num_batches_tracked.item() == 3
    # ... and eval mode uses them.
    rbn.eval(), bn.eval()
    x = torch.randn(2, 8, 5, 6)
    torch.testing.assert_close(rbn(x), SIGMOID_1 * bn(x))
    assert not torch.allclose(rbn(x), SIGMOID_1 * nn.functional.batch_norm(x, None, None, training=True))


def test_running_stats_come_from_centred_input() -> None:
    rbn = RepresentativeBatchNorm2d(6, momentum=0.1)
    with torch.no_grad():
        rbn.center_weight.copy_(torch.randn(1, 6, 1, 1))
    x = torch.randn(5, 6, 4, 4) + torch.randn(5, 6, 1, 1)
    rbn(x)
    centred = x + rbn.center_weight.detach() * x.mean(dim=(2, 3), keepdim=True)
    batch_mean = centred.mean(dim=(0, 2, 3))
    batch_var = centred.var(dim=(0, 2, 3), unbiased=True)  # PyTorch: unbiased for running var
    torch.testing.assert_close(rbn.running_mean, 0.1 * batch_mean)
    torch.testing.assert_close(rbn.running_var, 0.9 + 0.1 * batch_var)
    # Not from the raw input.
    assert not torch.allclose(rbn.running_mean, 0.1 * x.mean(dim=(0, 2, 3)))


@pytest.mark.parametrize("training", [True, False])
def test_centring_is_out_of_place(training: bool) -> None:
    rbn = RepresentativeBatchNorm2d(4).train(training)
    with torch.no_grad():
        rbn.center_weight.fill_(0.7)
    x = torch.randn(3, 4, 5, 5) + 2.0
    before = x.clone()
    rbn(x)
    assert torch.equal(x, before)


def test_calibration_formula_in_train_mode() -> None:
    rbn = RepresentativeBatchNorm2d(6)
    randomise(rbn)
    x = 2 * torch.randn(4, 6, 5, 3) - 1
    torch.testing.assert_close(rbn(x), rbn_formula(rbn, x), rtol=1e-4, atol=1e-5)


def test_calibration_formula_in_eval_mode_uses_running_stats() -> None:
    rbn = RepresentativeBatchNorm2d(6)
    randomise(rbn)
    with torch.no_grad():
        rbn.running_mean.copy_(torch.randn(6))
        rbn.running_var.copy_(torch.rand(6) + 0.5)
    rbn.eval()
    x = torch.randn(3, 6, 4, 4)
    expected = rbn_formula(rbn, x, rbn.running_mean, rbn.running_var)
    torch.testing.assert_close(rbn(x), expected, rtol=1e-4, atol=1e-5)
    running_before = rbn.running_mean.clone()
    rbn(x)
    assert torch.equal(rbn.running_mean, running_before)


@pytest.mark.parametrize("name", ["center_weight", "scale_weight", "scale_bias"])
def test_each_calibration_parameter_changes_the_output(name: str) -> None:
    rbn = RepresentativeBatchNorm2d(5)
    x = torch.randn(4, 5, 4, 4) + torch.randn(4, 5, 1, 1)
    before = rbn(x)
    with torch.no_grad():
        getattr(rbn, name).add_(0.8)
    after = rbn(x)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, rbn_formula(rbn, x), rtol=1e-4, atol=1e-5)


def test_affine_false_is_calibrated_standardisation() -> None:
    rbn = RepresentativeBatchNorm2d(5, affine=False)
    randomise(rbn)
    assert rbn.weight is None and rbn.bias is None
    x = torch.randn(3, 5, 4, 4)
    torch.testing.assert_close(rbn(x), rbn_formula(rbn, x), rtol=1e-4, atol=1e-5)


def test_momentum_none_is_cumulative_average() -> None:
    rbn = RepresentativeBatchNorm2d(3, momentum=None)
    bn = nn.BatchNorm2d(3, momentum=None)
    batches = [torch.randn(4, 3, 3, 3) * (i + 1) + i for i in range(4)]
    for x in batches:
        rbn(x), bn(x)
    means = torch.stack([x.mean(dim=(0, 2, 3)) for x in batches])
    variances = torch.stack([x.var(dim=(0, 2, 3), unbiased=True) for x in batches])
    # Cumulative average over all batches (starting from the initial 0 / 1 is overwritten at n=1).
    torch.testing.assert_close(rbn.running_mean, means.mean(0))
    torch.testing.assert_close(rbn.running_var, variances.mean(0))
    torch.testing.assert_close(rbn.running_mean, bn.running_mean)
    assert rbn.num_batches_tracked.item() == 4


def test_without_running_stats_eval_uses_batch_statistics() -> None:
    rbn = RepresentativeBatchNorm2d(4, track_running_stats=False).eval()
    bn = nn.BatchNorm2d(4, track_running_stats=False).eval()
    x = torch.randn(3, 4, 5, 5) + 3
    torch.testing.assert_close(rbn(x), SIGMOID_1 * bn(x))


def test_all_parameters_receive_gradients() -> None:
    rbn = RepresentativeBatchNorm2d(4)
    randomise(rbn)
    x = torch.randn(3, 4, 5, 5) + torch.randn(3, 4, 1, 1)
    (rbn(x) * torch.randn(3, 4, 5, 5)).sum().backward()
    for name, p in rbn.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_rejects_non_4d_input() -> None:
    with pytest.raises(ValueError):
        RepresentativeBatchNorm2d(4)(torch.randn(3, 4))
