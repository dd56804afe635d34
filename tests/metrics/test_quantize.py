"""quantize_images: clamp, (x + 1) * 127.5, round (half to even), uint8."""

from __future__ import annotations

import pytest
import torch

from giugan.metrics import QUANTISATION, quantize_images


def test_endpoints_midpoint_and_dtype() -> None:
    x = torch.tensor([-1.0, 0.0, 1.0])
    out = quantize_images(x)
    assert out.dtype == torch.uint8
    # 0.0 -> 127.5, which torch.round sends to the even neighbour 128 (round half to even).
    assert out.tolist() == [0, 128, 255]


def test_rounds_instead_of_truncating() -> None:
    # (0.999 + 1) * 127.5 = 254.87: rounding gives 255 where torchmetrics' normalize=True
    # ((x + 1) / 2 * 255 truncated) would give 254; likewise 127.4 -> 127 and 127.6 -> 128.
    x = torch.tensor([0.999, 127.4 / 127.5 - 1.0, 127.6 / 127.5 - 1.0, -0.996])
    assert quantize_images(x).tolist() == [255, 127, 128, 1]
    truncated = ((x + 1) / 2 * 255).to(torch.uint8)
    assert truncated[0] == 254


def test_half_to_even_at_exact_halves() -> None:
    # float32 inputs whose scaled value is exactly k + 0.5 (checked below) round to the even k.
    k = torch.arange(64, 200)
    x = (-1 + (k + 0.5) / 127.5).float()
    exact = ((x + 1) * 127.5) == (k + 0.5)
    assert exact.sum() > 50
    out = quantize_images(x[exact]).long()
    k = k[exact]
    assert torch.equal(out, torch.where(k % 2 == 0, k, k + 1))


def test_clamps_out_of_range_and_infinities() -> None:
    x = torch.tensor([-3.0, -1.0001, 1.0001, 7.0, float("-inf"), float("inf")])
    assert quantize_images(x).tolist() == [0, 0, 255, 255, 0, 255]


def test_shape_device_and_low_precision_input() -> None:
    x = torch.rand(2, 3, 5, 7) * 2 - 1
    expected = quantize_images(x)
    assert expected.shape == x.shape
    assert torch.equal(quantize_images(x.double()), expected)
    bf16 = quantize_images(x.bfloat16())
    assert bf16.dtype == torch.uint8 and (bf16.int() - expected.int()).abs().max() <= 1


def test_no_autograd_graph() -> None:
    x = (torch.rand(4) * 2 - 1).requires_grad_()
    out = quantize_images(x)
    assert not out.requires_grad


def test_rejects_nan_and_non_float() -> None:
    with pytest.raises(ValueError, match="NaN"):
        quantize_images(torch.tensor([0.0, float("nan")]))
    with pytest.raises(TypeError, match="uint8"):
        quantize_images(torch.zeros(3, dtype=torch.uint8))


def test_protocol_string_describes_the_function() -> None:
    assert QUANTISATION == "clamp [-1,1], round((x+1)*127.5), uint8"
