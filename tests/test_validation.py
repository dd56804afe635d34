"""The shared argument checks: accepted values return, refused ones raise one clear paragraph."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from giugan.validation import (
    DATA_IMAGE_SIZES,
    NETWORK_IMAGE_SIZES,
    check_bool,
    check_choice,
    check_divisible,
    check_image_size,
    check_int,
    check_number,
    check_odd_kernel,
    check_path,
    invalid_value,
)


def test_config_boundary_and_component_wordings() -> None:
    boundary = invalid_value("batch_size", 0, "an integer >= 1", hint="Images per step.")
    assert str(boundary) == (
        "Invalid value 0 for argument 'batch_size': expected an integer >= 1. Images per step."
    )
    component = invalid_value("z_dim", -1, "an integer >= 1", owner="Generator")
    assert str(component) == "Generator: z_dim=-1 is not allowed; z_dim must be an integer >= 1."


@pytest.mark.parametrize("value", [0, -3, 2.0, True, "4", None])
def test_check_int_refuses_non_integers_and_small_values(value: object) -> None:
    with pytest.raises(ValueError, match=r"expected an integer >= 1") as info:
        check_int("batch_size", value)
    assert repr(value) in str(info.value)


def test_check_int_returns_the_value_and_honours_the_minimum() -> None:
    assert check_int("num_workers", 0, 0) == 0
    assert check_int("channels", 64, owner="GIU") == 64
    with pytest.raises(ValueError, match=r"^GIU: channels=0 is not allowed; channels must be an"):
        check_int("channels", 0, owner="GIU")


def test_check_choice_keeps_booleans_and_numbers_apart() -> None:
    assert check_choice("split", "test", ("train", "test")) == "test"
    assert check_bool("hflip", False) is False
    with pytest.raises(ValueError, match=r"'hflip': expected one of True, False"):
        check_bool("hflip", 1)
    with pytest.raises(ValueError, match=r"expected one of 16, 32"):
        check_choice("image_size", True, (16, 32))
    with pytest.raises(ValueError, match=r"'split': expected one of 'train', 'test'. Pick one."):
        check_choice("split", "valid", ("train", "test"), hint="Pick one.")


@pytest.mark.parametrize(
    ("bounds", "good", "bad", "expected"),
    [
        ({"minimum": 0}, 10.0, -0.5, "a finite number >= 0"),
        ({"minimum": 0, "maximum": 1, "include_minimum": False}, 1.0, 0.0, "a number in (0, 1]"),
        (
            {"minimum": 0, "maximum": 1, "include_minimum": False, "include_maximum": False},
            0.999,
            1,
            "a number in (0, 1)",
        ),
        ({}, -2, math.inf, "a finite number"),
        ({"maximum": 5}, 5, True, "a finite number <= 5"),
    ],
)
def test_check_number_bounds(bounds: dict, good: float, bad: object, expected: str) -> None:
    assert check_number("x", good, **bounds) == good
    with pytest.raises(ValueError) as info:
        check_number("x", bad, owner="GANModule", **bounds)
    assert str(info.value) == f"GANModule: x={bad!r} is not allowed; x must be {expected}."


def test_image_sizes_network_sizes_are_a_subset_of_data_sizes() -> None:
    assert NETWORK_IMAGE_SIZES == (16, 32, 64, 128)
    assert DATA_IMAGE_SIZES == (16, 32, 48, 64, 96, 128, 256)
    assert all(size == 4 * 2 ** int(math.log2(size // 4)) for size in NETWORK_IMAGE_SIZES)
    assert check_image_size(96) == 96
    with pytest.raises(ValueError, match=r"'image_size': expected one of 16, 32, 48.*CIFAR-10"):
        check_image_size(40)
    with pytest.raises(ValueError, match=r"expected one of 16, 32, 64, 128"):
        check_image_size(48, NETWORK_IMAGE_SIZES)


def test_check_path_expands_the_user_folder() -> None:
    assert check_path("root", "~/data", "a folder") == Path.home() / "data"
    for bad in ("", None, 3):
        with pytest.raises(ValueError, match=r"for argument 'root': expected a folder\.$"):
            check_path("root", bad, "a folder")


def test_divisible_and_odd_kernel_messages() -> None:
    assert check_divisible("channels", 64, "groups", 16, owner="GIU") == 64
    with pytest.raises(ValueError) as info:
        check_divisible("channels", 12, "groups", 8, owner="GIU")
    assert str(info.value) == (
        "GIU: channels=12 is not divisible by groups=8. Choose groups among the divisors of 12: "
        "[1, 2, 3, 4, 6, 12]."
    )
    assert check_odd_kernel(7) == 7
    with pytest.raises(ValueError, match=r"^Involution2d: kernel_size=4 is even; .* must be odd"):
        check_odd_kernel(4, owner="Involution2d")
    with pytest.raises(ValueError, match=r"kernel_size=0 is not allowed"):
        check_odd_kernel(0, owner="Involution2d")
