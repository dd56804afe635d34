"""The built-in synthetic shapes set: deterministic, well-formed, no download."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from giugan.data import ShapesDataModule
from giugan.data.shapes import BACKGROUNDS, render_shape, render_shapes


def reference_images(**kwargs: object) -> torch.Tensor:
    dm = ShapesDataModule(num_workers=0, **kwargs)  # type: ignore[arg-type]
    dm.setup("validate")
    return torch.cat(list(dm.val_dataloader()))


def test_same_seed_gives_identical_images_and_other_seed_differs() -> None:
    first = reference_images(num_images=64, seed=3)
    again = reference_images(num_images=64, seed=3)
    other = reference_images(num_images=64, seed=4)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert (first != other).flatten(1).any(dim=1).float().mean() > 0.9  # nearly every image


def test_image_depends_only_on_seed_and_index() -> None:
    small = render_shapes(8, 32, seed=0)
    large = render_shapes(20, 32, seed=0)
    assert torch.equal(small, large[:8])
    np.testing.assert_array_equal(render_shape(0, 13, 32), large[13].numpy())
    state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    render_shapes(4, 32, seed=1)
    assert torch.equal(state, torch.random.get_rng_state())  # global RNGs untouched
    np.testing.assert_array_equal(np_state, np.random.get_state()[1])


@pytest.mark.parametrize("image_size", [32, 64])
def test_images_are_a_shape_on_a_plain_background(image_size: int) -> None:
    images = render_shapes(48, image_size, seed=0)
    assert images.dtype == torch.uint8 and images.shape == (48, 3, image_size, image_size)
    corners = images[:, :, [0, 0, -1, -1], [0, -1, 0, -1]].permute(0, 2, 1)
    backgrounds = torch.tensor(BACKGROUNDS, dtype=torch.uint8)
    # All four corners of every image are one of the plain backgrounds.
    assert ((corners[:, :, None, :] == backgrounds).all(-1).any(-1)).all()
    both = {tuple(c.tolist()) for c in corners[:, 0]}
    assert both == {tuple(b) for b in BACKGROUNDS}
    # Every image contains a shape covering between 2% and 50% of it.
    background = corners[:, 0, :, None, None]
    covered = (images != background).any(1).flatten(1).float().mean(1)
    assert covered.min() > 0.02 and covered.max() < 0.5
    # The set is varied: many distinct dominant shape colours.
    assert len({tuple(img.flatten(1).mode(1).values.tolist()) for img in images}) >= 2


def test_module_batches_and_reference_id() -> None:
    dm = ShapesDataModule(num_images=40, image_size=64, batch_size=8, num_workers=0)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (8, 3, 64, 64) and batch.dtype == torch.float32
    assert batch.min() >= -1 and batch.max() <= 1
    assert dm.num_reference_images == 40 and dm.num_train_images == 40
    assert dm.reference_id == "shapes-seed0-n40-64"
    ids = {
        ShapesDataModule(**kw).reference_id
        for kw in ({}, {"seed": 1}, {"num_images": 100}, {"image_size": 64})
    }
    assert ids == {
        "shapes-seed0-n2048-32",
        "shapes-seed1-n2048-32",
        "shapes-seed0-n100-32",
        "shapes-seed0-n2048-64",
    }


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"num_images": 0}, "num_images"), ({"image_size": 33}, "image_size"), ({"seed": -1}, "seed")],
)
def test_bad_arguments_name_themselves(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=f"argument '{argument}'"):
        ShapesDataModule(**kwargs)
