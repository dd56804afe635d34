"""Every experiment config (one YAML per table row) parses, builds its preset's networks and trains.

* ``configs/{cifar10,celeba,ablations,igan}/*.yaml`` are composed configs: a row names its
  dataset base with ``__base__`` (``configs/base.yaml`` <- ``cifar10/base.yaml``,
  ``celeba/base.yaml`` <- ``igan/base.yaml``; the ablations are CIFAR-10 rows) and states only
  what differs from it. Its networks are ``model.preset``, a name of ``giugan.nets.presets`` (the
  one source of a row's networks). The protocol checks read the config as the CLI resolves it.
* Each config is smoke-run through the real CLI (``giugan fit``) for two generator iterations on
  CPU, with its dataset swapped for tiny files in the real on-disk formats (CIFAR-10 pickles, a
  folder of 178x218 CelebA-like JPGs), metrics off and a 4-image sample grid; the run's saved
  ``config.yaml`` is the fully resolved record (no ``__base__``, the networks of the preset).
* The hardware presets ``configs/trainer/*.yaml`` combine with an experiment config as a second
  ``--config``: ``cpu.yaml`` is instantiated and run; the GPU ones are only parsed.

Everything runs in-process (no subprocess per config) with one intra-op thread.
"""

from __future__ import annotations

import json
import math
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from giugan.cli import GiuganCLI
from giugan.nets import PRESETS, build_preset
from giugan.training.module import architecture_fingerprint

CONFIG_ROOT = Path(__file__).resolve().parents[1] / "configs"
EXPERIMENT_DIRS = ("cifar10", "celeba", "ablations", "igan")
BASE_NAME = "base.yaml"
CONFIGS = sorted(
    path
    for folder in EXPERIMENT_DIRS
    for path in (CONFIG_ROOT / folder).glob("*.yaml")
    if path.name != BASE_NAME
)
IDS = [f"{path.parent.name}/{path.stem}" for path in CONFIGS]
CONFIG_PARAMS = [pytest.param(path, id=name) for path, name in zip(CONFIGS, IDS)]
REFERENCE_CONFIG = CONFIG_ROOT / "cifar10" / "giu_gan.yaml"

#: Variants of another row (folder/stem: the row file they name as ``__base__``).
VARIANTS = {"igan/constant_lr": "igan.yaml"}

#: One epoch of CelebA's 202,599 aligned images at batch 64 (full batches): the iGAN lr interval.
IGAN_EPOCH_STEPS = 202_599 // 64

#: Keys that choose networks: only rows set them, never a base.
PRESET_NAME_KEYS = {"preset", "generator", "discriminator"}

#: The base each folder's rows name (relative to the row file).
ROW_BASE = {"cifar10": "base.yaml", "celeba": "base.yaml", "igan": "base.yaml",
            "ablations": "../cifar10/base.yaml"}

#: Table rows that must have a config (file stem per folder); guards against a lost file.
EXPECTED = {
    "cifar10": {"dcgan", "lsgan", "wgan_gp", "sngan", "sagan", "giu_gan", "giu_gan_no_rbn"},
    "celeba": {"wgan_gp", "wgan_gp_plus2", "wgan_gp_plus3", "lsgan", "sngan", "sagan", "giu_gan",
               "giu_gan_no_rbn"},
    "ablations": {"table1_middle", "table1_shallow_d_deep_g",
                  "table1_shallow_d_deep_g_two_modules", "table1_all", "table1_only_g",
                  "table1_only_d", "table2_v1", "table2_v2", "table2_v3", "table2_v4", "table2_v5",
                  "table4_k5", "table4_k7", "table4_gc8", "table4_gc32", "table7_baseline",
                  "table7_no_giu"},
    "igan": {"dcgan", "sagan", "igan", "case2", "case3", "case4", "case5", "case6", "case7",
             "constant_lr"},
}


def preset_of(path: Path) -> str:
    """The preset a row config names (``model.preset``; a variant inherits its row's)."""
    for file in reversed(base_chain(path)):
        preset = (yaml.safe_load(file.read_text()).get("model") or {}).get("preset")
        if preset is not None:
            return preset
    raise AssertionError(f"{path}: no model.preset in its chain")


def base_chain(path: Path) -> list[Path]:
    """The files of a row from the oldest base to the row itself (following ``__base__``)."""
    chain = [path]
    while (base := yaml.safe_load(chain[-1].read_text()).get("__base__")) is not None:
        chain.append((chain[-1].parent / base).resolve())
    return chain[::-1]


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": leaf}`` for every leaf of a nested mapping."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def resolved(path: Path) -> dict[str, Any]:
    """The config as ``giugan fit --config path`` resolves it (parsed, not instantiated)."""
    return ParseOnlyCLI(args=["--config", str(path)], run=False).config.as_dict()


def run_name(path: Path) -> str:
    """Logger name of a config: folder and row (``cifar10_giu_gan``, ``ablation_table4_k5``)."""
    folder = "ablation" if path.parent.name == "ablations" else path.parent.name
    return f"{folder}_{path.stem}"


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module", autouse=True)
def _cli_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No W&B, no stray ``runs/`` in the repository, no pytest arguments seen by LightningCLI, and
    one intra-op thread (small CPU convolutions on a shared 2-core machine run fastest that way)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "disabled")
        patch.setattr(sys, "argv", ["giugan"])
        patch.chdir(tmp_path_factory.mktemp("cwd"))
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root holding both datasets in their real formats, a few images each:

    * ``cifar-10-batches-py/data_batch_1..5`` and ``test_batch``: official pickle layout, 4 images
      per file (uint8 ``(N, 3072)`` channel-major rows, ``labels``);
    * ``img_align_celeba/00000k.jpg``: 6 aligned-size (178x218) JPGs, no partition file (a plain
      folder, so split/reference_split ``all`` mean every image).
    """
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    cifar = root / "cifar-10-batches-py"
    cifar.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [0, 1, 2, 3],
            b"data": rng.integers(0, 256, size=(4, 3072), dtype=np.uint8),
            b"filenames": [f"{name}_{i}.png".encode() for i in range(4)],
        }
        (cifar / name).write_bytes(pickle.dumps(batch, protocol=2))
    celeba = root / "img_align_celeba"
    celeba.mkdir()
    for index in range(1, 7):
        pixels = rng.integers(0, 256, size=(218, 178, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(celeba / f"{index:06d}.jpg", quality=90)
    return root


class ParseOnlyCLI(GiuganCLI):
    """Parses and validates like ``giugan`` but instantiates nothing (no GPU needed)."""

    def instantiate_classes(self) -> None:
        pass

    def after_instantiate_classes(self) -> None:
        pass


# ---------------------------------------------------------------------------- file contract
def test_every_table_row_has_a_config() -> None:
    found = {folder: {p.stem for p in CONFIGS if p.parent.name == folder} for folder in EXPECTED}
    assert found == EXPECTED


def test_bases_are_not_rows() -> None:
    bases = {path.relative_to(CONFIG_ROOT).as_posix() for path in CONFIG_ROOT.glob("**/base.yaml")}
    assert bases == {"base.yaml", "cifar10/base.yaml", "celeba/base.yaml", "igan/base.yaml"}
    for name in bases:
        model = yaml.safe_load((CONFIG_ROOT / name).read_text()).get("model", {})
        assert not PRESET_NAME_KEYS & set(model), name


def test_run_names_are_unique() -> None:
    names = [run_name(path) for path in CONFIGS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("path", CONFIG_PARAMS)
def test_row_states_only_what_differs_from_its_base(path: Path) -> None:
    text = path.read_text()
    first = text.splitlines()[0]
    assert first.startswith(("# GIU-GANs (Tian et al.), Table", "# iGAN report")), first
    row = yaml.safe_load(text)
    variant = f"{path.parent.name}/{path.stem}"
    assert row["__base__"] == VARIANTS.get(variant, ROW_BASE[path.parent.name])
    assert row["__run_name__"] == run_name(path)
    # Networks come from the preset only, never spelled out beside it.
    assert variant in VARIANTS or "preset" in row["model"]
    assert preset_of(path) in PRESETS
    assert not {"generator", "discriminator"} & set(row["model"])
    # No key repeats the value its base chain already gives (init_args under a new class_path
    # start afresh, so they may).
    inherited: dict[str, Any] = {}
    for base in base_chain(path)[:-1]:
        inherited.update(flatten(yaml.safe_load(base.read_text())))
    flat = flatten(row)
    new_classes = [key[: -len("class_path")] for key in flat if key.endswith("class_path")]
    repeated = {
        key: value for key, value in flat.items()
        if inherited.get(key, object()) == value and not any(key.startswith(c) for c in new_classes)
    }  # fmt: skip
    assert not repeated, f"{path.name} repeats its base: {repeated}"
    # batches_per_iteration is linked from model.n_critic by the CLI, never set by hand.
    assert all("batches_per_iteration" not in file.read_text() for file in base_chain(path))


@pytest.mark.parametrize("path", CONFIG_PARAMS)
def test_config_states_row_preset_and_protocol(path: Path) -> None:
    config = resolved(path)
    model, data = config["model"], config["data"]["init_args"]
    is_igan = path.parent.name == "igan"

    assert model["preset"] == preset_of(path)
    assert model["generator"] is None and model["discriminator"] is None
    assert data["batch_size"] == 64
    assert data["batches_per_iteration"] == model["n_critic"] == 1
    assert model["generator_iterations"] == (50_000 if is_igan else 1_000_000)
    metrics = model["metrics"]
    assert metrics["class_path"] == "giugan.metrics.GenerativeMetrics"
    protocol = ("extractor", "fid", "inception_score", "kid", "num_fake")
    assert {key: metrics["init_args"][key] for key in protocol} == {
        "extractor": "inception", "fid": True, "inception_score": True, "kid": False,
        "num_fake": 50_000,
    }
    assert model["eval_every"] == (2_500 if is_igan else 100_000)
    if is_igan:
        assert model["loss"]["init_args"]["gp_mode"] == "separate_step"
        for name, lr in (("optimizer_g", 0.0001), ("optimizer_d", 0.0004)):
            assert model[name]["class_path"] == "torch.optim.Adam"
            assert model[name]["init_args"]["lr"] == lr
            assert tuple(model[name]["init_args"]["betas"]) == (0.0, 0.9)

    expected_data = {
        "cifar10": "giugan.data.CIFAR10DataModule",
        "ablations": "giugan.data.CIFAR10DataModule",
        "celeba": "giugan.data.CelebADataModule",
        "igan": "giugan.data.CelebADataModule",
    }[path.parent.name]
    assert config["data"]["class_path"] == expected_data
    if expected_data.endswith("CelebADataModule"):
        assert data["image_size"] == 64
        assert data["crop_size"] == (178 if is_igan else 160)

    assert config["checkpoint"]["every_n_generator_iterations"] == 10_000
    samples = {key: config["samples"][key] for key in ("every", "num_samples")}
    assert samples == {"every": 1_000, "num_samples": 64}
    trainer = config["trainer"]
    assert trainer["accelerator"] == "auto" and trainer["devices"] == 1
    name = run_name(path)
    csv, wandb = trainer["logger"]
    assert csv["class_path"] == "giugan.training.loggers.CSVLogger"
    assert {key: csv["init_args"][key] for key in ("save_dir", "name", "version")} == {
        "save_dir": "runs", "name": name, "version": ""
    }
    assert wandb["class_path"] == "giugan.training.loggers.WandbLogger"
    assert {key: wandb["init_args"][key] for key in ("save_dir", "project", "name")} == {
        "save_dir": f"runs/{name}", "project": "giugan", "name": name
    }
    assert wandb["init_args"].get("offline") is None  # WANDB_MODE / credentials decide


@pytest.mark.parametrize(
    "path", [param for param in CONFIG_PARAMS if param.values[0].parent.name != "igan"]
)
def test_giu_gans_rows_evaluate_as_the_paper(path: Path) -> None:
    """GIU-GANs section 5: 50,000 images "every 100,000 times", "the best scores in 10 tests"."""
    model = resolved(path)["model"]
    assert model["metrics"]["init_args"]["num_fake"] == 50_000
    assert model["eval_every"] == 100_000
    # Ten evaluations, the last one at the final iteration, so best-of-10 and last are both kept.
    assert model["generator_iterations"] % model["eval_every"] == 0
    assert model["generator_iterations"] // model["eval_every"] == 10


IGAN_PARAMS = [param for param in CONFIG_PARAMS if param.values[0].parent.name == "igan"]


@pytest.mark.parametrize("path", IGAN_PARAMS)
def test_igan_rows_decay_the_learning_rate_as_the_report(path: Path) -> None:
    """iGAN report Table 1: lr decay 0.95, applied once per epoch; constant_lr is the code's."""
    model = resolved(path)["model"]
    if path.stem == "constant_lr":
        assert model["lr_schedule"] == "constant"
        row = resolved(path.with_name("igan.yaml"))
        assert {**model, "lr_schedule": "exponential"} == row["model"]
        return
    assert model["lr_schedule"] == "exponential"
    assert model["lr_decay_rate"] == 0.95
    assert model["lr_decay_every"] == IGAN_EPOCH_STEPS == 3_165
    # 50,000 steps are the report's ~16 epochs: the lr ends at 0.95^15 of its start.
    assert model["generator_iterations"] // model["lr_decay_every"] == 15


# ---------------------------------------------------------------------------- networks == preset
@pytest.mark.parametrize("path", CONFIG_PARAMS)
def test_config_builds_exactly_its_preset(path: Path) -> None:
    # The stand-in extractor avoids needing Inception weights just to build the config.
    cli = GiuganCLI(
        args=["--config", str(path), "--model.metrics.init_args.extractor", "standin"], run=False
    )
    model = cli.model
    assert model.hparams.preset == preset_of(path)  # the networks come from the preset
    generator, discriminator = build_preset(preset_of(path))
    for ours, theirs in ((model.generator, generator), (model.discriminator, discriminator)):
        assert type(ours) is type(theirs)
        assert architecture_fingerprint(ours) == architecture_fingerprint(theirs)
        assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    assert model.z_dim == generator.z_dim == (100 if path.stem == "lsgan" else 128)
    assert cli.datamodule.image_size == generator.image_size == discriminator.image_size
    assert cli.datamodule.batches_per_iteration == model.hparams.n_critic
    assert model.metrics is not None and model.metrics.num_fake == 50_000


# ---------------------------------------------------------------------------- smoke fit
def smoke_args(path: Path, data_root: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        "fit",
        "--config", str(path),
        *extra,
        "--data.init_args.root", str(data_root),
        "--data.init_args.batch_size", "4",
        "--data.init_args.num_workers", "0",
        "--model.metrics", "null",
        "--model.generator_iterations", "2",
        "--trainer.logger", "false",
        "--trainer.default_root_dir", str(run_dir),
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--checkpoint.every_n_generator_iterations", "2",
        "--samples.every", "1",
        "--samples.num_samples", "4",
    ]


def check_finished_run(cli: Any, run_dir: Path, iterations: int) -> None:
    last = run_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    assert checkpoint["giugan"]["generator_iteration"] == iterations
    assert (run_dir / "checkpoints" / f"iter-{iterations:08d}.ckpt").is_file()
    assert (run_dir / "samples" / f"iter-{iterations:08d}.png").is_file()
    assert (run_dir / "config.yaml").is_file()
    for key in ("loss_d", "loss_g"):
        value = float(cli.trainer.callback_metrics[key])
        assert math.isfinite(value), f"{key} = {value}"


@pytest.mark.parametrize("path", CONFIG_PARAMS)
def test_config_trains_two_generator_iterations(path: Path, tiny_data: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cli = GiuganCLI(args=smoke_args(path, tiny_data, run_dir, "--trainer.accelerator", "cpu"))
    assert cli.model.generator_iteration == 2
    check_finished_run(cli, run_dir, 2)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert "__base__" not in saved and "__run_name__" not in saved
    assert saved["model"]["preset"] == preset_of(path)
    assert saved["model"]["loss"] == resolved(path)["model"]["loss"]  # the base's keys are in it
    # The saved record is the resolved config (as lists, with the smoke run's overrides).
    expected = {**resolved(path)["model"], "metrics": None, "generator_iterations": 2}
    expected = json.loads(json.dumps(expected))  # tuples as the YAML's lists
    assert saved["model"] == expected


# ---------------------------------------------------------------------------- trainer presets
def test_cpu_trainer_preset_runs_with_an_experiment_config(tiny_data: Path, tmp_path: Path) -> None:
    cpu = CONFIG_ROOT / "trainer" / "cpu.yaml"
    run_dir = tmp_path / "run"
    cli = GiuganCLI(args=smoke_args(REFERENCE_CONFIG, tiny_data, run_dir, "--config", str(cpu)))
    assert type(cli.trainer.accelerator).__name__ == "CPUAccelerator"
    assert cli.trainer.num_devices == 1
    assert cli.trainer.precision == "32-true"
    check_finished_run(cli, run_dir, 2)


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("gpu", {"accelerator": "gpu", "devices": 1, "precision": "32-true"}),
        ("ddp", {"accelerator": "gpu", "devices": -1, "precision": "32-true",
                 "strategy": "ddp_find_unused_parameters_true"}),
        ("multinode", {"accelerator": "gpu", "devices": -1, "num_nodes": 2, "precision": "32-true",
                       "strategy": "ddp_find_unused_parameters_true"}),
    ],
)
def test_gpu_trainer_presets_parse_with_an_experiment_config(preset: str, expected: dict) -> None:
    path = CONFIG_ROOT / "trainer" / f"{preset}.yaml"
    assert set(yaml.safe_load(path.read_text())) == {"trainer"}  # touches nothing else
    cli = ParseOnlyCLI(args=["--config", str(REFERENCE_CONFIG), "--config", str(path)], run=False)
    trainer = cli.config.trainer
    for key, value in expected.items():
        assert trainer[key] == value, key
    # The experiment's own settings survive the second --config.
    assert cli.config.model.loss.class_path == "giugan.losses.WassersteinLoss"
    assert cli.config.model.generator_iterations == 1_000_000
    assert [logger.init_args.name for logger in trainer.logger] == ["cifar10_giu_gan"] * 2
