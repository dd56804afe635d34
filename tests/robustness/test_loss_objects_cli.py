"""Loss objects through ``python -m giugan``: a relativistic loss trains from the command line, and a
run written before loss objects (``loss: wasserstein``, ``gp_weight``, ``gp_mode`` in its
checkpoints and config.yaml) still resumes, predicts and loads."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from tiny_quickstart import ROOT

from giugan.losses import WassersteinLoss
from giugan.training.module import GANModule

from .cli_runs import HARD_TIMEOUT, fit, load, metrics_rows

WASSERSTEIN = {"class_path": "giugan.losses.WassersteinLoss", "init_args": {"gp_weight": 10.0, "gp_mode": "same_step"}}


def giugan(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m giugan ARGS`` in ``folder``, offline, one thread, under the hard timeout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIUGAN_", "SLURM_"))}
    env.update(WANDB_MODE="disabled", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "giugan", *args], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=HARD_TIMEOUT, check=False)


@pytest.mark.slow
def test_a_relativistic_loss_trains_through_giugan_fit(tmp_path: Path) -> None:
    done = fit(tmp_path, "relativistic", 3, "--model.loss", "giugan.losses.RelativisticAverageLoss",
               "--model.loss.init_args.gp_weight", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "runs" / "relativistic"
    saved = yaml.safe_load((run / "config.yaml").read_text())["model"]["loss"]
    assert saved == {"class_path": "giugan.losses.RelativisticAverageLoss",
                     "init_args": {"gp_weight": 0.0, "gp_mode": "same_step"}}
    rows = metrics_rows(run)
    assert [int(row["generator_iteration"]) for row in rows] == [1, 2, 3]
    for row in rows:
        assert float(row["gp"]) == 0.0 and not row.get("wasserstein")  # no penalty, no W estimate
        assert math.isfinite(float(row["loss_g"]))
    # Untrained critics score real and fake alike: both RaSGAN terms start near 2 log 2.
    assert float(rows[0]["loss_d"]) == pytest.approx(2 * math.log(2), abs=0.1)
    assert float(rows[0]["loss_g"]) == pytest.approx(2 * math.log(2), abs=0.1)


def _old_form(model: dict) -> dict:
    """A model section as ``giugan fit`` wrote it before loss objects (same keys, same order)."""
    assert model["loss"] == WASSERSTEIN
    old: dict = {}
    for key, value in model.items():
        if key == "loss":
            old.update(loss="wasserstein", gp_weight=10.0, gp_mode="same_step")
        else:
            old[key] = value
    return old


@pytest.fixture(scope="module")
def old_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-iteration run whose checkpoints and config.yaml are rewritten to the old form; the
    current-form last.ckpt is kept beside it as ``current-last.ckpt``."""
    folder = tmp_path_factory.mktemp("old_form")
    done = fit(folder, "old", 2)
    assert done.returncode == 0, done.stderr[-3000:]
    run = folder / "runs" / "old"
    shutil.copy(run / "checkpoints" / "last.ckpt", folder / "current-last.ckpt")
    for path in (run / "checkpoints").glob("*.ckpt"):
        checkpoint = load(path)
        checkpoint["hyper_parameters"] = _old_form(checkpoint["hyper_parameters"])
        torch.save(checkpoint, path)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["model"] = _old_form(config["model"])
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return run


@pytest.mark.slow
def test_an_old_checkpoint_predicts_the_same_images(old_run: Path, tmp_path: Path) -> None:
    outputs = {}
    for name, checkpoint in (("old", old_run / "checkpoints" / "last.ckpt"),
                             ("current", old_run.parent.parent / "current-last.ckpt")):
        outputs[name] = tmp_path / name
        done = giugan(tmp_path, "predict", "--ckpt_path", str(checkpoint), "--predictions.num_images", "3",
                      "--predictions.output_dir", str(outputs[name]))
        assert done.returncode == 0, done.stderr[-3000:]
        notices = [line for line in done.stderr.splitlines() if "the form before loss objects" in line]
        assert len(notices) == (name == "old"), done.stderr[-3000:]
    images = sorted(p.name for p in outputs["old"].glob("*.png"))
    assert images == ["000000.png", "000001.png", "000002.png"]
    for image in images:
        assert (outputs["old"] / image).read_bytes() == (outputs["current"] / image).read_bytes()


@pytest.mark.slow
def test_an_old_run_resumes_from_its_saved_config(old_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "runs" / "old"
    shutil.copytree(old_run, run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["trainer"]["logger"][0]["init_args"]["save_dir"] = str(tmp_path / "runs")
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    done = giugan(tmp_path, "fit", "--config", str(run / "config.yaml"), "--ckpt_path", "last",
                  "--model.generator_iterations", "4")
    assert done.returncode == 0, done.stderr[-3000:]
    said = [line for line in done.stderr.splitlines() if line.startswith("[giugan]")]
    assert any("config.yaml: model.loss: wasserstein, model.gp_weight: 10.0, model.gp_mode: same_step" in line
               for line in said), said
    changed = [line for line in said if "changed settings" in line]
    assert len(changed) == 1 and changed[0].endswith("model.generator_iterations 2 -> 4")  # the loss is the same
    assert [int(row["generator_iteration"]) for row in metrics_rows(run)] == [1, 2, 3, 4]
    last = load(run / "checkpoints" / "last.ckpt")
    assert last["giugan"]["generator_iteration"] == 4 and last["hyper_parameters"]["loss"] == WASSERSTEIN


def test_an_old_checkpoint_loads_in_python(old_run: Path) -> None:
    old = GANModule.load_from_checkpoint(old_run / "checkpoints" / "last.ckpt", map_location="cpu", metrics=None)
    current = GANModule.load_from_checkpoint(old_run.parent.parent / "current-last.ckpt", map_location="cpu",
                                             metrics=None)
    assert old.adversarial_loss == current.adversarial_loss == WassersteinLoss(10.0, "same_step")
    for (name, a), (_, b) in zip(old.state_dict().items(), current.state_dict().items()):
        assert torch.equal(a, b), name
