"""Argument checks shared by every layer, each raising one explanatory ``ValueError`` paragraph.

The module depends on the standard library only, so operators, networks, data modules and the
training module all import it without an import circle. Every check returns the value it accepted
and words its error in one of two shapes:

* at a config boundary (``owner=None``, e.g. ``data.init_args``):
  ``Invalid value 0 for argument 'batch_size': expected an integer >= 1. <hint>``
* inside a named component (``owner="Generator"``):
  ``Generator: z_dim=0 is not allowed; z_dim must be an integer >= 1. <hint>``

It also holds the two lists of supported square resolutions, which mean different things:
:data:`NETWORK_IMAGE_SIZES` (what the convolutional backbones build) and
:data:`DATA_IMAGE_SIZES` (what the data modules resize images to).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DATA_IMAGE_SIZES",
    "NETWORK_IMAGE_SIZES",
    "check_bool",
    "check_choice",
    "check_divisible",
    "check_image_size",
    "check_int",
    "check_number",
    "check_odd_kernel",
    "check_path",
    "invalid_value",
]

#: Square resolutions the backbone networks build. They start from a 4x4 map and double the
#: side once per block, so a size must be 4 * 2**k; 32 (CIFAR-10) and 64 (CelebA) are the ones
#: of the GIU-GANs and iGAN tables, 16 and 128 are the neighbours that still build.
NETWORK_IMAGE_SIZES: tuple[int, ...] = (16, 32, 64, 128)

#: Output resolutions the data modules resize to: every network size plus the STL-10-style 48
#: and 96 and 256, for networks of one's own that are not built by doubling from 4x4.
DATA_IMAGE_SIZES: tuple[int, ...] = tuple(sorted({*NETWORK_IMAGE_SIZES, 48, 96, 256}))

_IMAGE_SIZE_HINT = (
    "It is the square output side in pixels; the papers use 32 for CIFAR-10 and 64 for CelebA."
)


def invalid_value(
    name: str, value: Any, expected: str, *, owner: str | None = None, hint: str = ""
) -> ValueError:
    """The error for ``name=value`` that should have been ``expected``, in the module's wording.

    Args:
        name: The argument as a user writes it (``batch_size``, ``model.init_args.n_critic``).
        value: The value received (shown with ``repr``).
        expected: What would have been accepted, as a noun phrase (``an integer >= 1``).
        owner: The component that received it (``Generator``); ``None`` at a config boundary.
        hint: Extra sentence saying what the argument means or how to fix it.

    Returns:
        The ``ValueError`` to raise (the caller raises it, so tracebacks point at the caller).
    """
    if owner is None:
        text = f"Invalid value {value!r} for argument '{name}': expected {expected}."
    else:
        text = f"{owner}: {name}={value!r} is not allowed; {name} must be {expected}."
    return ValueError(f"{text} {hint}".rstrip())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(
    name: str, value: Any, minimum: int = 1, *, owner: str | None = None, hint: str = ""
) -> int:
    """Accept an ``int`` (not a ``bool``) that is at least ``minimum``."""
    if not _is_int(value) or value < minimum:
        raise invalid_value(name, value, f"an integer >= {minimum}", owner=owner, hint=hint)
    return value


def check_choice(
    name: str, value: Any, allowed: Sequence[Any], *, owner: str | None = None, hint: str = ""
) -> Any:
    """Accept one of ``allowed`` (a ``bool`` only where ``allowed`` holds booleans, not ``1``)."""
    if isinstance(value, bool) != any(isinstance(a, bool) for a in allowed) or value not in allowed:
        expected = f"one of {', '.join(repr(a) for a in allowed)}"
        raise invalid_value(name, value, expected, owner=owner, hint=hint)
    return value


def check_bool(name: str, value: Any, *, owner: str | None = None, hint: str = "") -> bool:
    """Accept ``True`` or ``False`` only (not ``1``, ``"yes"`` or ``None``)."""
    return check_choice(name, value, (True, False), owner=owner, hint=hint)


def check_number(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    include_minimum: bool = True,
    include_maximum: bool = True,
    owner: str | None = None,
    hint: str = "",
) -> float:
    """Accept a finite real number (not a ``bool``) within optional bounds.

    Args:
        name: See :func:`invalid_value`.
        value: The value received.
        minimum: Lower bound, or ``None`` for none.
        maximum: Upper bound, or ``None`` for none.
        include_minimum: Whether ``minimum`` itself is allowed.
        include_maximum: Whether ``maximum`` itself is allowed.
        owner: See :func:`invalid_value`.
        hint: See :func:`invalid_value`.
    """
    if minimum is not None and maximum is not None:
        expected = (
            f"a number in {'[' if include_minimum else '('}{minimum:g}, "
            f"{maximum:g}{']' if include_maximum else ')'}"
        )
    elif minimum is not None:
        expected = f"a finite number {'>=' if include_minimum else '>'} {minimum:g}"
    elif maximum is not None:
        expected = f"a finite number {'<=' if include_maximum else '<'} {maximum:g}"
    else:
        expected = "a finite number"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value >= minimum if include_minimum else value > minimum
    if ok and maximum is not None:
        ok = value <= maximum if include_maximum else value < maximum
    if not ok:
        raise invalid_value(name, value, expected, owner=owner, hint=hint)
    return value


def check_image_size(
    value: Any,
    allowed: Sequence[int] = DATA_IMAGE_SIZES,
    *,
    name: str = "image_size",
    owner: str | None = None,
) -> int:
    """Accept a square side in pixels from ``allowed`` (by default :data:`DATA_IMAGE_SIZES`)."""
    return check_choice(name, value, allowed, owner=owner, hint=_IMAGE_SIZE_HINT)


def check_path(
    name: str, value: Any, expected: str, *, owner: str | None = None
) -> Path:
    """Accept a non-empty ``str`` or path and return it as a user-expanded :class:`Path`.

    Args:
        name: See :func:`invalid_value`.
        value: The value received.
        expected: What the path should point at (``the folder that contains 'celeba/'``).
        owner: See :func:`invalid_value`.
    """
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise invalid_value(name, value, expected, owner=owner)
    return Path(value).expanduser()


def check_divisible(
    name: str, value: int, divisor_name: str, divisor: int, *, owner: str | None = None
) -> int:
    """Accept ``value`` when ``divisor`` divides it; the error lists the divisors of ``value``."""
    if value % divisor != 0:
        allowed = [d for d in range(1, value + 1) if value % d == 0]
        prefix = f"{owner}: " if owner else ""
        raise ValueError(
            f"{prefix}{name}={value} is not divisible by {divisor_name}={divisor}. "
            f"Choose {divisor_name} among the divisors of {value}: {allowed}."
        )
    return value


def check_odd_kernel(kernel_size: Any, *, owner: str | None = None) -> int:
    """Accept a positive odd kernel size: the window is centred on each pixel ("same" padding)."""
    check_int("kernel_size", kernel_size, 1, owner=owner)
    if kernel_size % 2 == 0:
        prefix = f"{owner}: " if owner else ""
        raise ValueError(
            f"{prefix}kernel_size={kernel_size} is even; the window is centred on each pixel, so "
            f"kernel_size must be odd (1, 3, 5, 7, ...)."
        )
    return kernel_size
