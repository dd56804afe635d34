"""Image transforms: RGB conversion, crop-then-resize, flips, scaling to [-1, 1]."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from giugan.data.transforms import ImageTransform, random_hflip, to_rgb, uint8_to_signed_unit


def test_uint8_to_signed_unit_maps_endpoints_exactly() -> None:
    values = torch.tensor([0, 255, 51], dtype=torch.uint8)
    out = uint8_to_signed_unit(values)
    assert out.dtype == torch.float32
    assert out.tolist() == pytest.approx([-1.0, 1.0, 51 / 127.5 - 1])


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (Image.new("L", (3, 2), 100), (100, 100, 100)),
        (Image.new("1", (3, 2), 1), (255, 255, 255)),
        (Image.new("RGBA", (3, 2), (10, 20, 30, 255)), (10, 20, 30)),
        (Image.new("RGBA", (3, 2), (10, 20, 30, 0)), (255, 255, 255)),  # transparent -> white
        (Image.new("LA", (3, 2), (50, 0)), (255, 255, 255)),
        (Image.new("CMYK", (3, 2), (0, 0, 0, 0)), (255, 255, 255)),
        (Image.fromarray(np.full((2, 3), 65535, dtype=np.uint16)), (255, 255, 255)),
    ],
    ids=["L", "1", "RGBA-opaque", "RGBA-transparent", "LA", "CMYK", "I16"],
)
def test_to_rgb_converts_every_mode(image: Image.Image, expected: tuple[int, int, int]) -> None:
    rgb = to_rgb(image)
    assert rgb.mode == "RGB"
    assert rgb.size == image.size
    assert rgb.getpixel((1, 1)) == expected


def test_to_rgb_palette_with_and_without_transparency() -> None:
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([200, 10, 10, 10, 200, 10] + [0] * 762)
    palette.putpixel((0, 0), 1)
    rgb = to_rgb(palette)
    assert rgb.getpixel((0, 0)) == (10, 200, 10) and rgb.getpixel((3, 3)) == (200, 10, 10)
    palette.info["transparency"] = 0
    rgb = to_rgb(palette)
    assert rgb.getpixel((0, 0)) == (10, 200, 10) and rgb.getpixel((3, 3)) == (255, 255, 255)


def test_centre_crop_takes_torchvision_offsets_before_resize() -> None:
    # 6 wide x 8 high; crop 4 keeps rows round((8-4)/2)=2..5 and columns 1..4.
    array = np.arange(6 * 8, dtype=np.uint8).reshape(8, 6) * 5
    image = Image.fromarray(array)
    out = ImageTransform(image_size=4, crop_size=4)(image)
    expected = torch.from_numpy(array[2:6, 1:5].astype(np.float32)) / 127.5 - 1
    assert out.shape == (3, 4, 4)
    for channel in out:
        torch.testing.assert_close(channel, expected)


def test_crop_then_resize_removes_border_and_keeps_centre_marker() -> None:
    image = Image.new("RGB", (178, 218), (255, 0, 0))
    image.paste((0, 0, 255), (14, 34, 164, 184))  # 150x150 blue centre
    image.paste((0, 255, 0), (69, 89, 109, 129))  # 40x40 green marker in the middle
    out = ImageTransform(image_size=16, crop_size=140)(image)
    assert out.shape == (3, 16, 16)
    assert out[0].max() < -0.99  # no red anywhere: the border was cropped away
    assert out[1, 7:9, 7:9].min() > 0.9  # the marker survives in the centre
    assert out[2, 0, 0] > 0.99 and out[1, 0, 0] < -0.99  # corners are the blue centre square


def test_non_square_image_without_crop_becomes_square() -> None:
    image = Image.new("RGB", (100, 40), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 40))  # white strip at the far left is cropped off
    out = ImageTransform(image_size=8)(image)
    assert out.shape == (3, 8, 8)
    assert out.max() == -1.0


def test_crop_larger_than_image_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"crop_size=50 is larger than the image \(40x30"):
        ImageTransform(image_size=16, crop_size=50)(Image.new("RGB", (40, 30)))


def test_output_range_is_exactly_minus_one_to_one() -> None:
    image = Image.new("RGB", (32, 32), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 16, 32))
    out = ImageTransform(image_size=32)(image)
    assert out.dtype == torch.float32
    assert out.min().item() == -1.0 and out.max().item() == 1.0


def test_hflip_transform_flips_some_but_not_all() -> None:
    image = Image.new("RGB", (8, 8), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 2, 8))  # white on the left
    transform = ImageTransform(image_size=8, hflip=True)
    torch.manual_seed(0)
    lefts = {transform(image)[0, 0, 0].item() for _ in range(32)}
    assert lefts == {1.0, -1.0}
    assert set(ImageTransform(image_size=8)(image)[0, 0, :1].tolist()) == {1.0}


def test_random_hflip_with_generator_is_reproducible() -> None:
    x = torch.arange(4.0).view(1, 1, 4)
    first = [random_hflip(x, torch.Generator().manual_seed(s))[0, 0, 0].item() for s in range(8)]
    again = [random_hflip(x, torch.Generator().manual_seed(s))[0, 0, 0].item() for s in range(8)]
    assert first == again and set(first) == {0.0, 3.0}
