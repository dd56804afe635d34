"""Quantisation of generator output to the uint8 images every metric protocol expects.

FID/IS/KID reference implementations (TF, torch-fidelity) read 8-bit images. A generator emits
floats in [-1, 1]; we map them to uint8 ourselves instead of torchmetrics' ``normalize=True``,
which multiplies by 255 and *truncates* (an output of 0.999 gives 254.87, stored as 254, not 255).
"""

from __future__ import annotations

import torch
from torch import Tensor

#: One-line description of :func:`quantize_images`, recorded in protocols and reference keys.
QUANTISATION = "clamp [-1,1], round((x+1)*127.5), uint8"


def quantize_images(x: Tensor) -> Tensor:
    """Map images in [-1, 1] to uint8 in [0, 255]: clamp, ``(x + 1) * 127.5``, round, cast.

    Rounding is ``torch.round``, i.e. round half to even; the only exact halves a float can hit
    in practice are rare, and the common case ``0.0 -> 127.5`` rounds to 128 (even) just like
    round-half-up would. Values outside [-1, 1] are clamped first (``-inf -> 0``, ``+inf -> 255``).
    The computation is done in float32 whatever the input dtype (fp16/bf16 generator output),
    without autograd.

    Args:
        x: floating tensor of any shape (usually ``(B, C, H, W)`` generator output).

    Returns:
        A ``torch.uint8`` tensor of the same shape and device.

    Raises:
        TypeError: ``x`` is not a floating tensor (uint8 images need no quantisation).
        ValueError: ``x`` contains NaN, which has no meaningful 8-bit value.
    """
    if not isinstance(x, Tensor) or not torch.is_floating_point(x):
        raise TypeError(
            "quantize_images expects a floating tensor with values in [-1, 1] (generator output), "
            f"got {type(x).__name__}"
            + (f" of dtype {x.dtype}" if isinstance(x, Tensor) else "")
            + ". Images that are already uint8 in [0, 255] must be passed to the metrics as they "
            "are, without quantising them again."
        )
    with torch.no_grad():
        x = x.detach().float()
        if torch.isnan(x).any():
            raise ValueError(
                f"quantize_images got {int(torch.isnan(x).sum())} NaN values in a tensor of shape "
                f"{tuple(x.shape)}. NaN images have no 8-bit value and would silently become black "
                "pixels, corrupting FID/IS; the generator has diverged or produced invalid output. "
                "Check the training losses (giugan's NaN guards) before evaluating."
            )
        return ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
