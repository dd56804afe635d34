"""Property tests of config validation (random invalid values fail naming the key,
random valid ones are accepted). Operator properties live in tests/ops/test_properties.py."""

from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from giugan.data import ShapesDataModule
from giugan.losses import WassersteinLoss
from giugan.nets import Discriminator, Generator
from giugan.training.module import GANModule

pytestmark = pytest.mark.usefixtures("single_thread")

NETWORKS = {
    "generator": Generator(32, z_dim=8, conv_dim=2),
    "discriminator": Discriminator(32, conv_dim=2),
}
FAST = settings(max_examples=25, deadline=None)

bad_floats = st.floats(allow_nan=True, allow_infinity=True)


def module(**kwargs: object) -> GANModule:
    return GANModule(**NETWORKS, **kwargs)  # type: ignore[arg-type]


def adam(lr: float) -> functools.partial:
    return functools.partial(torch.optim.Adam, lr=lr, betas=(0.0, 0.9))


@FAST
@given(n_critic=st.integers(max_value=0))
def test_n_critic_below_one_is_rejected_naming_the_key(n_critic: int) -> None:
    with pytest.raises(ValueError, match=r"model\.init_args\.n_critic=.*integer >= 1"):
        module(n_critic=n_critic)


@FAST
@given(
    lr=bad_floats.filter(lambda x: not x > 0 or x == float("inf")),
    which=st.sampled_from(["optimizer_g", "optimizer_d"]),
)
def test_non_positive_or_non_finite_lr_is_rejected_naming_the_optimiser(
    lr: float, which: str
) -> None:
    with pytest.raises(ValueError, match=rf"model\.init_args\.{which}.*positive number"):
        module(**{which: adam(lr)})


@FAST
@given(ema_decay=bad_floats.filter(lambda x: not 0 < x < 1))
def test_ema_decay_outside_zero_one_is_rejected_naming_the_key(ema_decay: float) -> None:
    with pytest.raises(ValueError, match=r"model\.init_args\.ema_decay=.*strictly between 0 and 1"):
        module(ema_decay=ema_decay)


@FAST
@given(
    batch_size=st.integers(max_value=0),
    key=st.sampled_from(["batch_size", "batches_per_iteration", "eval_batch_size"]),
)
def test_batch_sizes_below_one_are_rejected_naming_the_key(batch_size: int, key: str) -> None:
    with pytest.raises(ValueError, match=rf"Invalid value {batch_size} for argument '{key}'.*>= 1"):
        ShapesDataModule(num_images=16, num_workers=0, **{key: batch_size})  # type: ignore[arg-type]


@FAST
@given(
    n_critic=st.integers(1, 10),
    lr=st.floats(1e-8, 1.0),
    ema_decay=st.none() | st.floats(1e-6, 1 - 1e-6),
    batch_size=st.integers(1, 4096),
    gp_weight=st.floats(0.0, 100.0),
)
def test_valid_settings_are_accepted(
    n_critic: int, lr: float, ema_decay: float | None, batch_size: int, gp_weight: float
) -> None:
    built = module(
        n_critic=n_critic,
        optimizer_g=adam(lr),
        optimizer_d=adam(lr),
        ema_decay=ema_decay,
        loss=WassersteinLoss(gp_weight=gp_weight),
    )
    assert built.hparams.n_critic == n_critic and built.hparams.ema_decay == ema_decay
    data = ShapesDataModule(
        num_images=16, num_workers=0, batch_size=batch_size, batches_per_iteration=n_critic
    )
    assert data.train_batch_size == batch_size * n_critic
