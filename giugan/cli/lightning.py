"""The LightningCLI behind ``giugan fit|validate|test|predict`` and ``giugan stats`` (see cli.py)."""

from __future__ import annotations

import glob
import os
import sys
import warnings
from typing import Any

from lightning.pytorch import LightningDataModule
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.plugins.io import TorchCheckpointIO

from giugan.cli.composition import expand_config_bases
from giugan.training.callbacks import (
    AtomicCheckpointIO,
    GeneratorIterationCheckpoint,
    GeneratorIterationProgressBar,
    SampleGrid,
)
from giugan.messages import first_few
from giugan.training.module import GANModule

TRAINER_DEFAULTS: dict[str, Any] = {
    "max_epochs": -1,  # training length is model.generator_iterations
    "num_sanity_val_steps": 0,
    "log_every_n_steps": 50,
}


class SaveFitConfig(SaveConfigCallback):
    """Save the resolved config into the run directory for ``fit`` only.

    ``test``/``predict`` runs point at a run's ``config.yaml``; rewriting it with their own
    subcommand's keys would make it unusable for ``fit --ckpt_path last``.
    """

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit":
            super().setup(trainer, pl_module, stage)


class GiuganCLI(LightningCLI):
    """LightningCLI with the GAN module fixed, data modules by class path, and giugan's callbacks."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        super().__init__(
            GANModule,
            LightningDataModule,
            subclass_mode_data=True,
            auto_configure_optimizers=False,
            save_config_callback=SaveFitConfig,
            save_config_kwargs={"overwrite": True},
            trainer_defaults=TRAINER_DEFAULTS,
            args=None if args is None else expand_config_bases(args),  # __base__ rows
            run=run,
        )

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        trainer = super().instantiate_trainer(**kwargs)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        # Lightning's TQDM bar -> the same bar (same settings) with the generator iteration shown
        # as an integer; other progress bars (e.g. RichProgressBar) are left alone.
        for index, callback in enumerate(trainer.callbacks):
            if type(callback) is TQDMProgressBar:
                trainer.callbacks[index] = GeneratorIterationProgressBar(
                    refresh_rate=callback.refresh_rate,
                    process_position=callback.process_position,
                    leave=getattr(callback, "_leave", False),
                )
        return trainer

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_lightning_class_args(GeneratorIterationCheckpoint, "checkpoint")
        parser.add_lightning_class_args(SampleGrid, "samples")
        parser.link_arguments("model.n_critic", "data.init_args.batches_per_iteration")

    def _parse_ckpt_path(self) -> None:
        """Keep the command line authoritative when ``--ckpt_path`` is a file.

        LightningCLI would overwrite the parsed model arguments with the hyperparameters stored
        in the checkpoint, silently undoing e.g. ``--model.generator_iterations`` when extending a
        run or ``--model.predict_output_dir``. The run's ``config.yaml`` is the record of its
        settings, and GANModule refuses a checkpoint whose architecture differs from the config.
        """

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if subcommand == "predict":
            # Prediction needs no data: the module feeds latent indices (see GANModule.predict_step).
            kwargs.pop("datamodule", None)
            kwargs["dataloaders"] = self.model.predict_dataloader()
        return kwargs

    def before_fit(self) -> None:
        ckpt_path = self.config_init[self.subcommand].get("ckpt_path")
        if ckpt_path is None:
            folder = checkpoint_folder(self.trainer)
            existing = sorted(glob.glob(os.path.join(folder, "*.ckpt")))
            if existing:
                raise FileExistsError(
                    f"The run directory already holds checkpoints ({folder}: "
                    f"{first_few([os.path.basename(p) for p in existing])}). Starting a new run "
                    f"there would mix and overwrite them. Resume it with --ckpt_path last, or give "
                    f"the new run another name (trainer.logger name, e.g. "
                    f"--trainer.logger.init_args.name), or move the folder away."
                )


def checkpoint_folder(trainer: Any) -> str:
    """Where the checkpoint callback will write, resolved as Lightning does."""
    callback = trainer.checkpoint_callback
    if callback is not None and callback.dirpath:
        return str(callback.dirpath)
    if trainer.loggers:
        logger = trainer.loggers[0]
        version = logger.version
        version = version if isinstance(version, str) else f"version_{version}"
        return os.path.join(str(logger.save_dir or trainer.default_root_dir), str(logger.name), version, "checkpoints")
    return os.path.join(trainer.default_root_dir, "checkpoints")


def stats_main(argv: list[str]) -> int:
    """``giugan stats --config X``: fill the reference-statistics cache for X's data and metrics."""
    from giugan.metrics import compute_reference_statistics

    with warnings.catch_warnings():
        # `giugan stats` hands LightningCLI the arguments after "stats" on purpose.
        warnings.filterwarnings("ignore", message=".*args parameter is intended to run")
        cli = GiuganCLI(args=argv, run=False)
    metrics = cli.model.metrics
    if metrics is None:
        print("giugan stats: the config has no model.metrics; nothing to compute.", file=sys.stderr)
        return 2
    datamodule = cli.datamodule
    datamodule.prepare_data()
    datamodule.setup("validate")
    path = compute_reference_statistics(
        metrics, datamodule.val_dataloader(), datamodule.reference_id, datamodule.num_reference_images
    )
    print(f"reference statistics: {path}")
    return 0
