"""PCA maps of hidden features (GIU-GANs Figures 1/2): hand computations on tiny tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from giugan.inspection import (
    capture_layer_output,
    first_component_maps,
    grey_grid,
    normalise_maps,
    save_grey_grid,
)
from giugan.nets import Discriminator


def _numpy_first_component(image: np.ndarray) -> np.ndarray:
    """Reference for one (C, H, W) image: SVD of the centred (positions x channels) matrix."""
    c, h, w = image.shape
    x = image.reshape(c, h * w).T.astype(np.float64)
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    v = vt[0]
    if v.sum() < 0:
        v = -v
    return (centred @ v).reshape(h, w)


def test_hand_computation_two_channels() -> None:
    """Channels (t, 2t) over 4 positions: the first component is (1, 2)/sqrt(5), so each
    position projects to sqrt(5) * (t - mean(t)); positive sum(v) fixes the sign."""
    t = torch.tensor([0.0, 1.0, 2.0, 5.0])
    features = torch.stack([t, 2 * t]).reshape(1, 2, 2, 2)
    expected = (5 ** 0.5) * (t - t.mean())
    maps = first_component_maps(features)
    assert maps.shape == (1, 2, 2)
    torch.testing.assert_close(maps.reshape(-1), expected)
    # Flipping every channel flips the eigenvector too, and the convention flips it back:
    # the map follows the data's sign.
    torch.testing.assert_close(first_component_maps(-features).reshape(-1), -expected)


def test_matches_numpy_svd_per_image() -> None:
    features = torch.randn(3, 5, 4, 3, dtype=torch.float64)
    maps = first_component_maps(features)
    for n in range(3):
        expected = _numpy_first_component(features[n].numpy())
        np.testing.assert_allclose(maps[n].numpy(), expected, rtol=1e-10, atol=1e-10)


def test_images_are_independent_and_dtype_kept() -> None:
    features = torch.randn(4, 6, 3, 3)
    maps = first_component_maps(features)
    assert maps.dtype == torch.float32
    torch.testing.assert_close(first_component_maps(features[2:3])[0], maps[2])
    # Adding a per-channel constant (a bias) changes nothing: channels are centred.
    shifted = features + torch.arange(6.0).reshape(1, 6, 1, 1)
    torch.testing.assert_close(first_component_maps(shifted), maps, rtol=1e-4, atol=1e-4)


def test_zero_sum_eigenvector_uses_the_largest_entry() -> None:
    """Channels (2t, -t, -t): v = (2, -1, -1)/sqrt(6) has sum 0, so its largest-magnitude entry
    is made positive: map = sqrt(6) * (t - mean(t)), for the data and for its negation alike."""
    t = torch.tensor([1.0, 3.0, 4.0, 8.0], dtype=torch.float64)
    features = torch.stack([2 * t, -t, -t]).reshape(1, 3, 2, 2)
    expected = 6 ** 0.5 * (t - t.mean())
    torch.testing.assert_close(first_component_maps(features).reshape(-1), expected)
    torch.testing.assert_close(first_component_maps(-features).reshape(-1), -expected)


def test_constant_features_give_zero_maps() -> None:
    maps = first_component_maps(torch.ones(2, 3, 4, 4))
    assert torch.equal(maps, torch.zeros(2, 4, 4))
    assert torch.equal(normalise_maps(maps), torch.zeros(2, 4, 4))


def test_bad_shape_message() -> None:
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*unsqueeze"):
        first_component_maps(torch.zeros(3, 4, 4))


def test_normalise_maps_per_image() -> None:
    maps = torch.tensor([[[1.0, 3.0], [2.0, 5.0]], [[-2.0, -2.0], [0.0, 2.0]]])
    expected = torch.tensor([[[0.0, 0.5], [0.25, 1.0]], [[0.0, 0.0], [0.5, 1.0]]])
    torch.testing.assert_close(normalise_maps(maps), expected)


def test_capture_layer_output_of_a_discriminator_block() -> None:
    discriminator = Discriminator(32)
    discriminator.train()
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    features = capture_layer_output(discriminator, "blocks.0", images)
    assert features.shape == (2, 64, 16, 16)
    with torch.no_grad():
        discriminator.eval()
        torch.testing.assert_close(features, discriminator.blocks[0](images))
        discriminator.train()
    assert discriminator.training and all(m.training for m in discriminator.modules())
    assert not any(m._forward_hooks for m in discriminator.modules())
    assert first_component_maps(features).shape == (2, 16, 16)


def test_capture_layer_output_is_not_changed_by_a_later_in_place_op() -> None:
    discriminator = Discriminator(32, conv_dim=4, spectral_norm=False)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    features = capture_layer_output(discriminator, "blocks.0.0", images)  # the conv, before ReLU
    with torch.no_grad():
        expected = discriminator.blocks[0][0](images)
    assert (expected < 0).any()
    torch.testing.assert_close(features, expected)


def test_capture_layer_output_unknown_layer_message() -> None:
    with pytest.raises(ValueError) as info:
        capture_layer_output(Discriminator(32), "block.0", torch.zeros(1, 3, 32, 32))
    message = str(info.value)
    assert "'block.0'" in message and "Did you mean" in message and "blocks.0" in message


def test_capture_layer_output_needs_a_tensor() -> None:
    class Pair(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x, x

    network = nn.Sequential(Pair())
    with pytest.raises(ValueError, match="not a tensor"):
        capture_layer_output(network, "0", torch.zeros(1, 2))


def test_grey_grid_layout_and_png(tmp_path) -> None:
    maps = torch.stack([torch.zeros(2, 3), torch.full((2, 3), 0.5), torch.ones(2, 3)])
    grid = grey_grid(maps, nrow=2, padding=1, scale=2)
    # 2 columns x 2 rows of 4x6 tiles with 1-pixel gaps.
    assert grid.shape == (2 * 5 + 1, 2 * 7 + 1) and grid.dtype == torch.uint8
    assert torch.all(grid[1:5, 1:7] == 0)
    assert torch.all(grid[1:5, 8:14] == 128)
    assert torch.all(grid[6:10, 1:7] == 255)
    assert grid[0, 0] == 255 and torch.all(grid[6:10, 8:14] == 255)  # padding and empty cell
    path = save_grey_grid(maps, tmp_path / "sub" / "maps.png", nrow=2, padding=1, scale=2)
    with Image.open(path) as image:
        assert image.mode == "L"
        assert np.array_equal(np.asarray(image), grid.numpy())
