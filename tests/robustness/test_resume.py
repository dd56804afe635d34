"""Exact resume from any checkpoint: a stopped and resumed run ends bitwise equal to an unbroken one.

Every test trains tiny networks on the synthetic shapes with random flips, on one CPU thread, and
compares every parameter and buffer (EMA included) after resume-to-end with an uninterrupted run.
With 20 images in mini-batches of 4, an epoch is 5 generator iterations at ``n_critic=1`` and 2 at
``n_critic=2`` (8 images per step, 4 dropped), so the stop points below fall mid-epoch, on an
epoch boundary, and right after a numbered checkpoint (a run killed just after that save).
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch import Trainer

from giugan.cli import main
from giugan.data import ShapesDataModule
from giugan.nets import Discriminator, Generator
from giugan.training.callbacks import AtomicCheckpointIO, GeneratorIterationCheckpoint
from giugan.training.module import GANModule

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("single_thread")


def module(iterations: int, n_critic: int) -> GANModule:
    torch.manual_seed(0)
    adam = functools.partial(torch.optim.Adam, lr=1e-3, betas=(0.0, 0.9))
    return GANModule(
        generator=Generator(32, z_dim=8, conv_dim=4, rbn_blocks="outer"),
        discriminator=Discriminator(32, conv_dim=4),
        optimizer_g=adam,
        optimizer_d=adam,
        n_critic=n_critic,
        generator_iterations=iterations,
        ema_decay=0.9,
    )


def fit(root: Path, iterations: int, n_critic: int, workers: int, ckpt_path: Path | None = None) -> dict[str, torch.Tensor]:
    """Train to ``iterations`` in ``root`` (numbered checkpoints every 2) and return the state."""
    data = ShapesDataModule(
        num_images=20, image_size=32, batch_size=4, batches_per_iteration=n_critic,
        num_workers=workers, hflip=True, eval_batch_size=8,
    )
    trainer = Trainer(
        accelerator="cpu", devices=1, max_epochs=-1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=str(root),
        plugins=[AtomicCheckpointIO()],
        callbacks=[GeneratorIterationCheckpoint(2, dirpath=str(root / "checkpoints"))],
    )
    model = module(iterations, n_critic)
    trainer.fit(model, datamodule=data, ckpt_path=str(ckpt_path) if ckpt_path else None)
    assert model.generator_iteration == iterations
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_bitwise_equal(resumed: dict[str, torch.Tensor], uninterrupted: dict[str, torch.Tensor]) -> None:
    assert resumed.keys() == uninterrupted.keys()
    differing = [name for name, value in resumed.items() if not torch.equal(value, uninterrupted[name])]
    assert not differing, f"{len(differing)} of {len(resumed)} tensors differ, e.g. {differing[:3]}"


CASES = {  # (n_critic, workers): (total iterations, stops mid-epoch and at an epoch boundary)
    (1, 0): (7, [3, 5]),
    (2, 0): (5, [3, 4]),
    (1, 2): (7, [3, 5]),
    (2, 2): (5, [3, 4]),
}


@pytest.mark.parametrize(("n_critic", "workers"), list(CASES), ids=lambda v: str(v))
def test_stopped_and_resumed_runs_end_bitwise_equal(tmp_path: Path, n_critic: int, workers: int) -> None:
    total, stops = CASES[(n_critic, workers)]
    uninterrupted = fit(tmp_path / "full", total, n_critic, workers)
    # Stopped by reaching generator_iterations (last.ckpt written at the stop), then extended.
    for stop in stops:
        run = tmp_path / f"stop-{stop}"
        fit(run, stop, n_critic, workers)
        resumed = fit(run, total, n_critic, workers, run / "checkpoints" / "last.ckpt")
        assert_bitwise_equal(resumed, uninterrupted)
    # Killed right after the numbered checkpoint at iteration 2: resume from that file.
    after_checkpoint = tmp_path / "full" / "checkpoints" / "iter-00000002.ckpt"
    resumed = fit(tmp_path / "killed", total, n_critic, workers, after_checkpoint)
    assert_bitwise_equal(resumed, uninterrupted)


def test_a_run_resumed_twice_across_epochs_ends_bitwise_equal(tmp_path: Path) -> None:
    """Stopped mid-epoch (3), again in the next epoch (6), then finished (12, a third epoch)."""
    uninterrupted = fit(tmp_path / "full", 12, 1, 0)
    run = tmp_path / "stopped"
    fit(run, 3, 1, 0)
    fit(run, 6, 1, 0, run / "checkpoints" / "last.ckpt")
    assert_bitwise_equal(fit(run, 12, 1, 0, run / "checkpoints" / "last.ckpt"), uninterrupted)


def write_config(tmp_path: Path, name: str) -> Path:
    """configs/quickstart.yaml at tiny sizes, no metrics, logging to ``tmp_path/runs/<name>``."""
    config = yaml.safe_load((ROOT / "configs" / "quickstart.yaml").read_text())
    generator = config["model"]["generator"]["init_args"]
    generator.update(z_dim=8, conv_dim=4)
    generator["inserts"][1]["init_args"]["channels"] = 16
    config["model"]["discriminator"]["init_args"]["conv_dim"] = 4
    config["model"]["metrics"] = None
    config["model"].pop("eval_every")
    config["data"]["init_args"].update(num_images=20, batch_size=4, eval_batch_size=8, hflip=True)
    config["checkpoint"]["every_n_generator_iterations"] = 2
    config["samples"]["every"] = 1000
    config["trainer"].update(enable_progress_bar=False, enable_model_summary=False, logger=[{
        "class_path": "giugan.training.loggers.CSVLogger",
        "init_args": {"save_dir": str(tmp_path / "runs"), "name": name, "version": ""},
    }])
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_giugan_fit_stopped_mid_epoch_and_resumed_with_ckpt_path_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(tmp_path)
    full, stopped = write_config(tmp_path, "full"), write_config(tmp_path, "stopped")
    assert main(["fit", "--config", str(full), "--model.generator_iterations", "7"]) == 0
    assert main(["fit", "--config", str(stopped), "--model.generator_iterations", "3"]) == 0
    resume = ["fit", "--config", str(stopped), "--model.generator_iterations", "7", "--ckpt_path", "last"]
    assert main(resume) == 0
    states = [
        torch.load(tmp_path / "runs" / name / "checkpoints" / "last.ckpt", weights_only=False)
        for name in ("full", "stopped")
    ]
    assert [s["giugan"]["generator_iteration"] for s in states] == [7, 7]
    assert_bitwise_equal(states[1]["state_dict"], states[0]["state_dict"])
