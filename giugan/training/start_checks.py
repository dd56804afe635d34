"""Checks made before a run reads any data or writes any file (each one paragraph, with the fix).

* ``--ckpt_path last|best|<file>`` resolves to an existing checkpoint, or the error lists the
  checkpoints that do exist (never a silent fresh start);
* a checkpoint is a giugan checkpoint of the configured networks, and not already past the end;
* a fresh start never goes into a directory that holds checkpoints;
* the data's image size, the generator's output and the discriminator's input agree;
* the devices asked for are the devices the trainer will use.
"""

from __future__ import annotations

import glob
import os
from typing import Any

import torch
from torch import nn

from giugan.messages import first_few
from giugan.training.bookkeeping import check_checkpoint_architecture


def existing_checkpoints(folder: str) -> list[str]:
    """File names of the ``*.ckpt`` in ``folder`` (sorted)."""
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder, "*.ckpt")))


def resolve_checkpoint(ckpt_path: str | None, folder: str) -> str | None:
    """``last``/``best`` -> the file in ``folder``; a path must exist. None stays None."""
    if ckpt_path is None:
        return None
    if ckpt_path in ("last", "best"):
        path = os.path.join(folder, f"{ckpt_path}.ckpt")
        if os.path.isfile(path):
            return path
        existing = existing_checkpoints(folder)
        why = (
            "last.ckpt is written every checkpoint.every_n_generator_iterations and when a run is "
            "stopped by a signal; a run killed before its first save has none"
            if ckpt_path == "last"
            else "best.ckpt is written after each evaluation of a run with metrics"
        )
        raise FileNotFoundError(
            f"--ckpt_path {ckpt_path}: there is no {path} ({why}). Checkpoints in {folder}: "
            f"{first_few(existing) if existing else 'none'}. Give one of them with --ckpt_path "
            f"<file>, or start a new run without --ckpt_path (in another run directory)."
        )
    if not os.path.isfile(ckpt_path):
        raise FileNotFoundError(
            f"--ckpt_path {ckpt_path}: no such file. Give a checkpoint of a giugan run "
            f"(runs/<name>/checkpoints/*.ckpt), or 'last' / 'best' for the configured run."
        )
    return ckpt_path


def read_checkpoint_section(path: str, given_as: str = "--ckpt_path") -> dict[str, Any]:
    """The ``giugan`` section of the checkpoint at ``path``, or a one-paragraph error that names
    the file as the user gave it (``given_as``: the option, or e.g. "inspect: checkpoint")."""
    import zipfile

    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise ValueError(
            f"{given_as} {path} is not a PyTorch checkpoint: it is not the zip archive torch.save "
            f"writes ({os.path.getsize(path)} bytes). It may be truncated (a copy that did not "
            f"finish) or another kind of file. Use another checkpoint of the run (e.g. an "
            f"iter-*.ckpt from runs/<name>/checkpoints/)."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as error:  # noqa: BLE001 - any failure to read means "not a checkpoint"
        raise ValueError(
            f"{given_as} {path} is not a readable PyTorch checkpoint ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200] if str(error) else 'unreadable'}). It may be "
            f"truncated (a copy that did not finish) or another kind of file. Use another "
            f"checkpoint of the run (e.g. an iter-*.ckpt)."
        ) from None
    if not isinstance(checkpoint, dict) or "giugan" not in checkpoint:
        raise ValueError(
            f"{given_as} {path} was not written by giugan's GANModule (no 'giugan' section); "
            f"give a checkpoint from a giugan run directory (runs/<name>/checkpoints/*.ckpt)."
        )
    return checkpoint["giugan"]


def check_resume(path: str, model: Any) -> None:
    """The checkpoint holds the configured networks and has iterations left to train."""
    section = read_checkpoint_section(path)
    check_checkpoint_architecture(section, model.generator, model.discriminator, model.hparams.preset)
    done, total = int(section.get("generator_iteration", 0)), int(model.hparams.generator_iterations)
    if done >= total:
        raise ValueError(
            f"--ckpt_path {path} is at generator iteration {done}, and the run is configured to "
            f"stop at model.generator_iterations={total}: there is nothing left to train. To train "
            f"longer, raise it (e.g. --model.generator_iterations {max(total, done) * 2}); to "
            f"evaluate the checkpoint, use `giugan test`."
        )


def requeued_checkpoint(folder: str, root_dir: str) -> str | None:
    """The newest checkpoint of a SLURM job that was requeued (``SLURM_RESTART_COUNT`` >= 1).

    A preempted job ends either through Lightning's requeue signal (``hpc_ckpt_<n>.ckpt`` in
    ``trainer.default_root_dir``) or through SIGTERM (``last.ckpt``); the requeued job runs the
    same command without ``--ckpt_path`` and continues from whichever is further along. Outside
    a requeued job this returns None, so a fresh start is never silently turned into a resume.
    """
    import os

    if os.environ.get("SLURM_RESTART_COUNT", "0").strip() in ("", "0"):
        return None
    candidates = glob.glob(os.path.join(root_dir, "hpc_ckpt_*.ckpt"))
    candidates += [p for p in [os.path.join(folder, "last.ckpt")] if os.path.isfile(p)]
    if not candidates:
        return None

    def iteration(path: str) -> int:
        return int(read_checkpoint_section(path).get("generator_iteration", 0))

    return max(candidates, key=iteration)


def refuse_fresh_start_over_checkpoints(folder: str) -> None:
    existing = existing_checkpoints(folder)
    if existing:
        raise FileExistsError(
            f"The run directory already holds checkpoints ({folder}: {first_few(existing)}). "
            f"Starting a new run there would mix and overwrite them. Resume it with --ckpt_path "
            f"last, or give the new run its own name with --run_name NAME (it names the run's "
            f"folder for the CSV log, W&B and the checkpoints together), or move the folder away."
        )


def _output_size(generator: nn.Module) -> int | None:
    size = getattr(generator, "image_size", None)
    if isinstance(size, int):
        return size
    was_training = generator.training
    generator.eval()
    try:
        with torch.no_grad():
            return int(generator(torch.zeros(1, generator.z_dim)).shape[-1])
    finally:
        generator.train(was_training)


def check_image_sizes(datamodule: Any, model: Any) -> None:
    """``data.init_args.image_size``, G's output and D's input must be one size."""
    data_size = getattr(datamodule, "image_size", None)
    g_size = _output_size(model.generator)
    d_size = getattr(model.discriminator, "image_size", None)
    sizes = {"data.init_args.image_size": data_size, "the generator's output": g_size,
             "the discriminator's input": d_size}
    known = {k: v for k, v in sizes.items() if isinstance(v, int)}
    if len(set(known.values())) > 1:
        listed = ", ".join(f"{k} = {v}" for k, v in known.items())
        raise ValueError(
            f"Image sizes disagree: {listed}. A discriminator fed other-size images returns a map "
            f"of scores per image that the losses would silently average. Use the config of the "
            f"resolution you want (configs/cifar10 for 32, configs/celeba for 64), or set "
            f"data.init_args.image_size and the networks' image_size to the same value."
        )


def check_devices(requested: Any, trainer: Any) -> None:
    """``--trainer.devices N`` must give N devices (per node), not silently fewer."""
    if isinstance(requested, str) and requested.isdigit():
        requested = int(requested)
    if isinstance(requested, int) and requested > 0 and trainer.num_devices != requested:
        raise ValueError(
            f"trainer.devices={requested} was asked for, but the trainer would use "
            f"{trainer.num_devices} ({type(trainer.strategy).__name__} on "
            f"{type(trainer.accelerator).__name__}). Give a strategy that runs several devices "
            f"(--trainer.strategy ddp, or --config configs/trainer/ddp.yaml), or --trainer.devices "
            f"{trainer.num_devices}."
        )
