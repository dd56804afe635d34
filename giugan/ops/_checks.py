"""Argument checks shared by the operators: one-paragraph ``ValueError`` messages."""

from __future__ import annotations


def require_positive_int(name: str, value: int, owner: str) -> None:
    """Raise ``ValueError`` unless ``value`` is an ``int`` >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"{owner}: {name}={value!r} is not allowed; {name} must be a positive integer (>= 1)."
        )


def require_divisible(name: str, value: int, divisor_name: str, divisor: int, owner: str) -> None:
    """Raise ``ValueError`` unless ``divisor`` divides ``value``."""
    if value % divisor != 0:
        allowed = [d for d in range(1, value + 1) if value % d == 0]
        raise ValueError(
            f"{owner}: {name}={value} is not divisible by {divisor_name}={divisor}. "
            f"Choose {divisor_name} among the divisors of {value}: {allowed}."
        )


def require_odd_kernel(kernel_size: int, owner: str) -> None:
    """Raise ``ValueError`` unless ``kernel_size`` is a positive odd integer ("same" padding)."""
    require_positive_int("kernel_size", kernel_size, owner)
    if kernel_size % 2 == 0:
        raise ValueError(
            f"{owner}: kernel_size={kernel_size} is even; the window is centred on each pixel, so "
            f"kernel_size must be odd (1, 3, 5, 7, ...)."
        )
