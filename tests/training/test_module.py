"""GANModule behaviour: step schedule, EMA, LR schedules, guards, resume, checkpoints."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from torch import nn

from giugan.losses import WassersteinLoss
from giugan.nets import Discriminator, Generator
from giugan.training.callbacks import NonFiniteError

from .helpers import parameters_of, tiny_data, tiny_module, tiny_trainer

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize(("gp_mode", "steps_per_iteration"), [("same_step", 3 + 1), ("separate_step", 2 * 3 + 1)])
def test_n_critic_schedule_counts_discriminator_and_generator_steps(
    tmp_path: Path, gp_mode: str, steps_per_iteration: int
) -> None:
    module = tiny_module(n_critic=3, loss=WassersteinLoss(gp_mode=gp_mode), generator_iterations=2)
    trainer = tiny_trainer(tmp_path)
    trainer.fit(module, datamodule=tiny_data(n_critic=3, num_images=24))
    assert module.generator_iteration == 2
    # trainer.global_step counts every optimiser step under manual optimisation (Lightning #17958)
    assert trainer.global_step == 2 * steps_per_iteration


def test_training_length_is_counted_in_generator_iterations(tmp_path: Path) -> None:
    module = tiny_module(generator_iterations=5)
    trainer = tiny_trainer(tmp_path, every=2)
    trainer.fit(module, datamodule=tiny_data(num_images=8))  # 2 batches per epoch -> 3 epochs
    assert module.generator_iteration == 5
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.ckpt"))
    assert names == ["iter-00000002.ckpt", "iter-00000004.ckpt", "last.ckpt"]
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["giugan"]["generator_iteration"] == 5


def test_ema_is_a_moving_average_of_the_generator(tmp_path: Path) -> None:
    module = tiny_module(generator_iterations=1, ema_decay=0.25, ema_start=0)
    before = parameters_of(module.generator)
    tiny_trainer(tmp_path).fit(module, datamodule=tiny_data())
    after = parameters_of(module.generator)
    ema = dict(module.generator_ema.named_parameters())
    for name, _ in module.generator.named_parameters():
        expected = 0.25 * before[name] + 0.75 * after[name]
        torch.testing.assert_close(ema[name].detach(), expected)
    assert not any(p.requires_grad for p in module.generator_ema.parameters())
    assert module.sampling_generator() is module.generator_ema


@pytest.mark.parametrize(
    ("schedule", "expected_factor"), [("constant", 1.0), ("exponential", 0.5**3), ("linear", 0.0)]
)
def test_lr_schedules_follow_generator_iterations(tmp_path: Path, schedule: str, expected_factor: float) -> None:
    module = tiny_module(generator_iterations=3, lr_schedule=schedule, lr_decay_rate=0.5, lr_decay_every=1)
    tiny_trainer(tmp_path).fit(module, datamodule=tiny_data())
    for opt in module.optimizers():
        assert opt.param_groups[0]["lr"] == pytest.approx(2e-4 * expected_factor)
    if schedule == "linear":
        assert module._lr_factor(1) == pytest.approx(2 / 3)


class NanAfter(nn.Module):
    """A critic that starts returning NaN after ``calls`` forward passes."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.inner = Discriminator(32, conv_dim=4)
        self.calls = calls

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls -= 1
        out = self.inner(x)
        return out * float("nan") if self.calls < 0 else out


def test_nan_guard_stops_before_the_step_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    # one iteration = 2 critic calls + 1 GP call + 1 generator-step call = 4 forward passes
    module = tiny_module(discriminator=NanAfter(calls=8), generator_iterations=10)
    trainer = tiny_trainer(tmp_path)
    with pytest.raises(NonFiniteError, match="generator iteration 2") as info:
        trainer.fit(module, datamodule=tiny_data())
    assert "--ckpt_path last" in str(info.value)
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["giugan"]["generator_iteration"] == 2
    assert all(torch.isfinite(v).all() for v in saved["state_dict"].values() if v.is_floating_point())
    # the weights in memory are the last good ones as well: no step was taken on the NaN loss
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path: Path) -> None:
    # 16 images, batch 4: 4 generator iterations per epoch; interrupt after the first epoch.
    straight = tiny_module(generator_iterations=8, n_critic=1, ema_decay=0.9)
    tiny_trainer(tmp_path / "a").fit(straight, datamodule=tiny_data())

    first = tiny_module(generator_iterations=4, n_critic=1, ema_decay=0.9)
    tiny_trainer(tmp_path / "b").fit(first, datamodule=tiny_data())
    resumed = tiny_module(generator_iterations=8, n_critic=1, ema_decay=0.9)
    trainer = tiny_trainer(tmp_path / "b")
    trainer.fit(resumed, datamodule=tiny_data(), ckpt_path="last")
    assert resumed.generator_iteration == 8
    expected = parameters_of(straight)
    for name, value in parameters_of(resumed).items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=0, msg=name)


def test_resuming_with_another_architecture_fails_clearly(tmp_path: Path) -> None:
    tiny_trainer(tmp_path).fit(tiny_module(generator_iterations=1), datamodule=tiny_data())
    other = tiny_module(conv_dim=8, generator_iterations=2)
    with pytest.raises(ValueError, match="different architecture") as info:
        tiny_trainer(tmp_path).fit(other, datamodule=tiny_data(), ckpt_path="last")
    assert "config.yaml" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"n_critic": 0}, "n_critic"),
        ({"ema_decay": 1.0}, "ema_decay"),
        ({"ema_decay": 0.0}, "ema_decay"),
        ({"generator_iterations": 0}, "generator_iterations"),
        ({"loss": "wasserstein"}, "model.init_args.loss"),
        ({"optimizer_g": functools.partial(torch.optim.Adam, lr=0.0)}, "optimizer_g"),
        ({"optimizer_d": functools.partial(torch.optim.SGD, lr=-1.0)}, "optimizer_d"),
        ({"preset": "giu_gan_33", "generator": None, "discriminator": None}, "giu_gan_32"),
    ],
)
def test_invalid_settings_name_the_key(kwargs: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        tiny_module(**kwargs)


def test_module_builds_networks_from_a_preset() -> None:
    module = tiny_module(preset="giu_gan_32", generator=None, discriminator=None)
    assert isinstance(module.generator, Generator) and module.z_dim == 128
    assert sum(p.numel() for p in module.parameters()) == 1_916_676


def test_step_noise_differs_between_ranks_and_is_reproducible() -> None:
    from giugan.seeding import step_generator

    def draw(rank: int, step: int) -> torch.Tensor:
        return torch.randn(4, generator=step_generator(7, rank, step, torch.device("cpu")))

    torch.testing.assert_close(draw(0, 3), draw(0, 3))
    assert not torch.equal(draw(0, 3), draw(1, 3))
    assert not torch.equal(draw(0, 3), draw(0, 4))


def test_sync_batchnorm_replacing_rbn_is_refused() -> None:
    from lightning.pytorch.plugins import TorchSyncBatchNorm

    module = tiny_module()  # RBN in G's first and last hidden blocks
    assert module._rbn_layers
    synced = TorchSyncBatchNorm().apply(module)  # what trainer.sync_batchnorm=true does under DDP
    with pytest.raises(ValueError, match=r"RepresentativeBatchNorm2d layers \(generator\..*sync_batchnorm"):
        synced.on_fit_start()
