"""The LightningCLI behind ``giugan fit|validate|test|predict`` and ``giugan stats``."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

from lightning.pytorch import LightningDataModule
from lightning.pytorch.callbacks import ModelSummary, TQDMProgressBar
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.plugins.io import TorchCheckpointIO

from giugan.cli.composition import expand_config_bases
from giugan.cli.presentation import giugan_help_formatter, quiet_library_notices
from giugan.cli.runs import apply_run_name, keep_records_apart, wandb_run_fields
from giugan.training.callbacks import (
    AtomicCheckpointIO,
    GeneratorIterationCheckpoint,
    GeneratorIterationProgressBar,
    ImageWriter,
    SampleGrid,
)
from giugan.training.callbacks.guards import FiniteCheckpoints
from giugan.training.callbacks.progress import GeneratorDiscriminatorSummary
from giugan.training.callbacks.signals import GracefulStop
from giugan.training.distributed import DEFAULT_TIMEOUT_SECONDS, configure_distributed
from giugan.training.module import GANModule
from giugan.training.resume_changes import ApplyResumeChanges, read_changes
from giugan.training.run_directory import (
    RunDirectoryLock,
    mark_training_started,
    release_held_locks,
    remove_stale_checkpoint_files,
)
from giugan.training.start_checks import (
    check_devices,
    check_image_sizes,
    check_resume,
    read_checkpoint_section,
    refuse_fresh_start_over_checkpoints,
    requeued_checkpoint,
    resolve_checkpoint,
)

TRAINER_DEFAULTS: dict[str, Any] = {
    "max_epochs": -1,  # training length is model.generator_iterations
    "num_sanity_val_steps": 0,
    "log_every_n_steps": 50,
}


class SaveFitConfig(SaveConfigCallback):
    """Save the resolved config into the run directory, for ``fit`` only, once training starts.

    Written at ``on_train_start``: after every check of the start and the checkpoint restore
    have passed, so a refused start changes no file. A resumed run never replaces the
    ``config.yaml`` it was trained with: its own config goes beside it as
    ``config-resume-<iteration>.yaml``. ``test``/``predict`` never write one (they point at the
    run's ``config.yaml``).
    """

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        return

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        mark_training_started()
        if trainer.ckpt_path is not None:
            iteration = int(getattr(pl_module, "generator_iteration", 0))
            self.config_filename = f"config-resume-{iteration:08d}.yaml"
        super().setup(trainer, pl_module, "fit")
        path = os.path.join(trainer.log_dir or trainer.default_root_dir, self.config_filename)
        for logger in trainer.loggers:
            save_run_file = getattr(logger, "save_run_file", None)
            if callable(save_run_file):
                save_run_file(path)


class GiuganCLI(LightningCLI):
    """LightningCLI with the GAN module fixed, data modules by class path, and giugan's callbacks."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        from jsonargparse import ArgumentError

        quiet_library_notices()
        try:
            self._init_cli(args, run)
        except ArgumentError as error:
            # One paragraph instead of the usage text and jsonargparse's union dumps, with the
            # nearest option or class when a name was mistyped.
            from giugan.cli.paragraphs import one_paragraph
            from giugan.cli.suggestions import parser_options, suggestion

            paragraph = one_paragraph(error)
            hint = suggestion(str(error), parser_options(getattr(self, "parser", None)))
            if hint:
                paragraph += (" " if paragraph.endswith((".", "?", "!")) else ". ") + hint
            print(f"giugan: {paragraph}\n(`giugan "
                  f"{self._subcommand_hint(args)} --help` lists the options)", file=sys.stderr)
            raise SystemExit(2) from None

    @staticmethod
    def _subcommand_hint(args: list[str] | None) -> str:
        words = sys.argv[1:] if args is None else args
        return words[0] if words and not words[0].startswith("-") else "fit"

    def _init_cli(self, args: list[str] | None, run: bool) -> None:
        mark_training_started(False)  # per command (tests run several in one process)
        self._given_args = list(sys.argv[1:] if args is None else args)
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

    def init_parser(self, **kwargs: Any) -> Any:
        # Parse errors are raised (and shown as one paragraph by giugan.cli), not printed with
        # the whole usage text.
        parser = super().init_parser(**kwargs)
        parser.exit_on_error = False
        parser.formatter_class = giugan_help_formatter()
        return parser

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        refuse_data_seed(self._given_args, config)
        apply_run_name(config)

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        trainer = super().instantiate_trainer(**kwargs)
        config = self.config[self.subcommand] if self.subcommand else self.config
        for logger in trainer.loggers:
            if callable(getattr(logger, "describe", None)):
                name = str(getattr(logger, "run_name", None) or logger.name)
                logger.describe(**wandb_run_fields(config, name, self.subcommand or "fit"))
        if self.subcommand in ("validate", "test", "predict"):
            keep_records_apart(trainer, self.subcommand)
        configure_distributed(trainer, config.get("ddp_timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
        trainer.callbacks.append(GracefulStop(keep_handlers_after_stop=True))
        trainer.callbacks.append(FiniteCheckpoints())
        trainer.callbacks.append(ApplyResumeChanges())
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
            elif type(callback) is ModelSummary:
                trainer.callbacks[index] = GeneratorDiscriminatorSummary(max_depth=callback._max_depth)
        return trainer

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_lightning_class_args(GeneratorIterationCheckpoint, "checkpoint")
        parser.add_lightning_class_args(SampleGrid, "samples")
        parser.add_lightning_class_args(ImageWriter, "predictions")
        parser.add_argument(
            "--run_name", type=str | None, default=None,
            help="Name of the run: its folder <logger save_dir>/NAME for the CSV log, the W&B run "
            "(name and save_dir) and the checkpoints. Without it, the loggers' names in the config (a row's __run_name__) name the run.",
        )
        parser.add_argument(
            "--ddp_timeout_seconds", type=float, default=DEFAULT_TIMEOUT_SECONDS,
            help="Under DDP (--trainer.devices N, several nodes): how long, in seconds, a collective "
            "(gradient all-reduce, barrier, metric sync) waits for the slowest rank before the run "
            "ends with an error naming the lost rank, instead of hanging. docs/distributed.md.",
        )
        parser.link_arguments("model.n_critic", "data.init_args.batches_per_iteration")
        # One seed: model.seed sets the training noise, the samples, the evaluation draws and the
        # data order (and so can never disagree with the data module's hyperparameters).
        parser.link_arguments("model.seed", "data.init_args.seed")
        parser.link_arguments("model.seed", "samples.seed")

    def _parse_ckpt_path(self) -> None:
        """Keep the command line authoritative when ``--ckpt_path`` is a file.

        LightningCLI would overwrite the parsed model arguments with the hyperparameters stored
        in the checkpoint, silently undoing e.g. ``--model.generator_iterations`` when extending a
        run or ``--predictions.output_dir``. The run's ``config.yaml`` is the record of its
        settings, and GANModule refuses a checkpoint whose architecture differs from the config.
        """

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if kwargs.get("ckpt_path") is not None:
            kwargs["ckpt_path"] = resolve_checkpoint(kwargs["ckpt_path"], checkpoint_folder(self.trainer))
            if subcommand != "fit":  # fit checks it in before_fit, with the architecture
                read_checkpoint_section(kwargs["ckpt_path"])  # a readable giugan checkpoint
        if subcommand == "predict":
            # Prediction needs no data: the writer's (index, latent) pairs feed GANModule.predict_step.
            kwargs.pop("datamodule", None)
            writer = next(c for c in self.trainer.callbacks if isinstance(c, ImageWriter))
            kwargs["dataloaders"] = writer.dataloader(self.model.z_dim)
            kwargs["return_predictions"] = False
        return kwargs

    def before_fit(self) -> None:
        """Every check of the start, before any data is read or file written; then the lock."""
        config = self.config_init[self.subcommand]
        folder = checkpoint_folder(self.trainer)
        check_image_sizes(self.datamodule, self.model)
        check_devices(self.config[self.subcommand].trainer.devices, self.trainer)
        ckpt_path = resolve_checkpoint(config.get("ckpt_path"), folder)
        if ckpt_path is None:
            ckpt_path = requeued_checkpoint(folder, self.trainer.default_root_dir)
            if ckpt_path is not None:  # a requeued SLURM job resumes by itself
                config["ckpt_path"] = ckpt_path
        if ckpt_path is None:
            refuse_fresh_start_over_checkpoints(folder)
            for logger in self.trainer.loggers:  # a fresh start is a new W&B run
                if hasattr(logger, "continue_run"):
                    logger.continue_run = False
        else:
            check_resume(ckpt_path, self.model)
            # A changed setting is applied (after Lightning restores the optimisers) and said
            # once, or refused here, before any file is written.
            changes = read_changes(ckpt_path, self.model, self.datamodule, self.trainer)
            for callback in self.trainer.callbacks:
                if isinstance(callback, ApplyResumeChanges):
                    callback.changes = changes
        if self.trainer.global_rank == 0:
            self.run_lock = RunDirectoryLock(self.trainer.log_dir or self.trainer.default_root_dir)
            self.run_lock.acquire()
            remove_stale_checkpoint_files(folder)

    def after_fit(self) -> None:
        release_held_locks()


DATA_SEED_FLAGS = ("--data.init_args.seed", "--data.seed")


def _given_data_seeds(args: list[str]) -> list[tuple[str, Any, Any]]:
    """``(where, data seed, model seed of the same source or None)`` for each data seed given.

    The command line and each ``--config`` file are sources; a saved ``config.yaml`` gives both
    seeds (equal, the link wrote them).
    """
    import yaml

    found: list[tuple[str, Any, Any]] = []
    for index, word in enumerate(args):
        flag, _, inline = word.partition("=")
        value = inline if inline else (args[index + 1] if index + 1 < len(args) else None)
        if flag in DATA_SEED_FLAGS and value is not None:
            found.append(("the command line", value, None))
        elif flag in ("--config", "-c") and value and os.path.isfile(value):
            try:
                with open(value) as handle:
                    loaded = yaml.safe_load(handle)
            except (OSError, yaml.YAMLError):
                continue  # the parser reports an unreadable config itself
            if not isinstance(loaded, dict) or not isinstance(loaded.get("data"), dict):
                continue
            data = loaded["data"]
            seed = (data.get("init_args") or {}).get("seed") if isinstance(data.get("init_args"), dict) else data.get("seed")
            model = loaded.get("model") if isinstance(loaded.get("model"), dict) else {}
            if seed is not None:
                found.append((value, seed, model.get("seed")))
    return found


def refuse_data_seed(args: list[str], config: Any) -> None:
    """A data seed other than ``model.seed`` is refused: the link would silently replace it."""
    model_seed = config.get("model", {}).get("seed") if hasattr(config, "get") else None
    for where, seed, same_source_model_seed in _given_data_seeds(args):
        expected = same_source_model_seed if same_source_model_seed is not None else model_seed
        if str(seed) != str(expected):
            raise ValueError(
                f"data.init_args.seed {seed} (from {where}) would be ignored: the data order and "
                f"flips are drawn from model.seed ({expected}), the run's one seed, which sets "
                f"data.init_args.seed, the training noise and the sample grids together. Give "
                f"--model.seed {seed} instead, or drop the data seed."
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
