"""``GANModule``: one LightningModule for every model of both papers (manual optimisation).

One training step = one **generator iteration** (the papers' unit: "1 million iterations"): it
consumes ``n_critic`` real mini-batches (the data module delivers them stacked; the CLI links
``data.batches_per_iteration`` to ``model.n_critic``), takes ``n_critic`` discriminator steps and
one generator step. Training length, logging, evaluation, sample grids, checkpoints and LR
schedules all count generator iterations (``self.generator_iteration``), never
``trainer.global_step``, which under manual optimisation counts every optimiser step.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor, nn

from giugan import compat
from giugan.legacy_settings import checkpoint_in_current_form
from giugan.losses import AdversarialLoss
from giugan.metrics import GenerativeMetrics
from giugan.ops import RepresentativeBatchNorm2d
from giugan.seeding import step_generator
from giugan.training.acceleration import CompiledForward, to_channels_last
from giugan.training.bookkeeping import (  # architecture_fingerprint: re-exported
    LogWindow,
    architecture_fingerprint,
    check_checkpoint_architecture,
    checkpoint_architecture,
    frozen_copy,
    lr_factor,
    update_ema,
)
from giugan.training.callbacks.checkpoints import BestCheckpoint
from giugan.training.callbacks.guards import ensure_finite
from giugan.training.checks import (
    check_learning_rates,
    refuse_replaced_representative_norms,
    resolve_loss,
    resolve_networks,
    validate_settings,
)
from giugan.training.distributed import announce_world_size_change
from giugan.training.evaluation import Evaluator
from giugan.training.evaluation_hooks import EvaluationHooks
from giugan.training.steps import StepBackend, StepSettings, generator_iteration

LRSchedule = Literal["constant", "linear", "exponential"]
__all__ = ["GANModule", "LRSchedule", "architecture_fingerprint"]


class GANModule(EvaluationHooks, LightningModule):
    """Pairs a generator with a discriminator under manual optimisation.

    Args:
        generator: any ``nn.Module`` (YAML ``class_path``/``init_args``) that exposes ``z_dim``.
            Give both networks, or neither and a ``preset``.
        discriminator: any ``nn.Module`` (YAML ``class_path``/``init_args``) scoring images.
        preset: name from ``giugan.nets.presets`` (e.g. ``giu_gan_32``) used when no networks are
            given.
        loss: the adversarial loss object with its gradient penalty (``giugan.losses``; YAML
            ``class_path``/``init_args``, e.g. ``giugan.losses.HingeLoss``); None = WGAN-GP,
            ``WassersteinLoss(gp_weight=10)`` (GIU-GANs eq. 14). docs/configs.md, "Losses".
        n_critic: discriminator steps per generator step.
        generator_iterations: training length in generator iterations.
        optimizer_g: the generator's optimiser factory (e.g. Adam lr 2e-4, betas (0, 0.9)).
        optimizer_d: the discriminator's optimiser factory (e.g. Adam lr 2e-4, betas (0, 0.9)).
        lr_schedule: ``constant``; ``linear`` decay to 0 at ``generator_iterations``;
            ``exponential``: lr * lr_decay_rate ** (iteration // lr_decay_every) (iGAN Table 1).
        lr_decay_rate: factor of the ``exponential`` schedule per ``lr_decay_every`` iterations.
        lr_decay_every: period, in generator iterations, of the ``exponential`` schedule.
        ema_decay: decay of an exponential moving average of G's weights (None = no EMA);
            evaluation and sampling then use the EMA generator.
        ema_start: generator iteration before which the EMA copies G instead of averaging.
        metrics: a :class:`giugan.metrics.GenerativeMetrics` (None = no metrics).
        eval_every: evaluate every this many generator iterations (0 = only at the end of fit), in
            Lightning's validation loop (``trainer.val_check_interval`` is set from it).
        eval_generator_mode: ``eval`` (BN running statistics, the default and what we report) or
            ``train`` (batch statistics) for the generator during evaluation and sampling.
        seed: noise seed; step noise is drawn from ``(seed, rank, iteration)``.
        nan_guard: stop with a clear error on a non-finite loss before its optimiser step.
        compile_networks: ``torch.compile`` G and D for their ordinary forwards (the gradient
            penalty differentiates the eager D: compiled graphs have no double backward); falls
            back to eager with a warning if compilation fails.
        compile_mode: ``torch.compile``'s ``mode`` (e.g. ``reduce-overhead`` for CUDA graphs);
            None = its default.
        channels_last: keep G, D and the real batches in channels-last memory format.
    """

    def __init__(
        self,
        generator: nn.Module | None = None,
        discriminator: nn.Module | None = None,
        preset: str | None = None,
        loss: AdversarialLoss | None = None,
        n_critic: int = 1,
        generator_iterations: int = 100_000,
        optimizer_g: OptimizerCallable = torch.optim.Adam,
        optimizer_d: OptimizerCallable = torch.optim.Adam,
        lr_schedule: LRSchedule = "constant",
        lr_decay_rate: float = 0.95,
        lr_decay_every: int = 1000,
        ema_decay: float | None = None,
        ema_start: int = 0,
        metrics: GenerativeMetrics | None = None,
        eval_every: int = 0,
        eval_generator_mode: Literal["eval", "train"] = "eval",
        seed: int = 0,
        nan_guard: bool = True,
        compile_networks: bool = False,
        compile_mode: str | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        # Built by `giugan` (LightningCLI), the hyperparameters are the config, networks and
        # optimisers included as class_path/init_args, so GANModule.load_from_checkpoint(path)
        # rebuilds the same model. Built in Python, those arguments are objects: not saved.
        self.save_hyperparameters(ignore=[] if compat.built_by_lightning_cli() else _OBJECT_ARGUMENTS)
        validate_settings(
            n_critic=n_critic, generator_iterations=generator_iterations, lr_schedule=lr_schedule,
            lr_decay_rate=lr_decay_rate, lr_decay_every=lr_decay_every, ema_decay=ema_decay,
            ema_start=ema_start, eval_every=eval_every,
        )
        generator, discriminator = resolve_networks(generator, discriminator, preset)
        self.generator = generator
        self.discriminator = discriminator
        self.generator_ema = frozen_copy(generator) if ema_decay is not None else None
        self.adversarial_loss = resolve_loss(loss)
        self.step_settings = StepSettings(loss=self.adversarial_loss, nan_guard=nan_guard)
        self.metrics = metrics
        self.evaluator = (
            Evaluator(metrics, self.generate, self.z_dim, seed) if metrics is not None else None
        )
        self.generator_iteration = 0
        self._compiled: tuple[CompiledForward, CompiledForward] | None = None
        self._optimizer_factories = (optimizer_g, optimizer_d)
        check_learning_rates(optimizer_g, "optimizer_g")
        check_learning_rates(optimizer_d, "optimizer_d")
        self._window = LogWindow()
        #: The iteration of an evaluation the restored checkpoint says was due and not run.
        self._evaluation_due: int | None = None
        self._rbn_layers = [
            name for name, layer in self.named_modules() if isinstance(layer, RepresentativeBatchNorm2d)
        ]

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls, checkpoint_path: Any, *args: Any, **kwargs: Any
    ) -> GANModule:
        """Lightning's ``load_from_checkpoint``; a checkpoint of the form before loss objects
        (``loss: wasserstein``, ``gp_weight``, ``gp_mode``) is read in the current form."""
        return super().load_from_checkpoint(checkpoint_in_current_form(checkpoint_path), *args, **kwargs)

    # ------------------------------------------------------------------ set-up
    @property
    def z_dim(self) -> int:
        return int(self.generator.z_dim)

    def configure_optimizers(self) -> Any:
        factory_g, factory_d = self._optimizer_factories
        opt_g = factory_g(self.generator.parameters())
        opt_d = factory_d(self.discriminator.parameters())
        schedule = self._lr_factor
        return [opt_g, opt_d], [
            torch.optim.lr_scheduler.LambdaLR(opt_g, schedule),
            torch.optim.lr_scheduler.LambdaLR(opt_d, schedule),
        ]

    def _lr_factor(self, iteration: int) -> float:
        hp = self.hparams
        return lr_factor(hp.lr_schedule, iteration, hp.generator_iterations, hp.lr_decay_rate, hp.lr_decay_every)

    def on_train_start(self) -> None:
        # Forget what a killed attempt logged after the restored checkpoint (after iteration 0
        # for a start from scratch, e.g. after a kill before the first checkpoint).
        for logger in self.loggers:
            truncate = getattr(logger, "truncate_after", None)
            if callable(truncate):
                truncate(self.generator_iteration)
        # An evaluation that a stop interrupted or skipped runs now, on the restored weights.
        self.evaluate_missing()

    def on_fit_start(self) -> None:
        refuse_replaced_representative_norms(self, self._rbn_layers)
        if self.hparams.channels_last:
            to_channels_last(self.generator, self.discriminator)
        if self.hparams.compile_networks and self._compiled is None:
            mode = self.hparams.compile_mode
            self._compiled = (
                CompiledForward(self.generator, "generator", mode),
                CompiledForward(self.discriminator, "discriminator", mode),
            )

    def setup(self, stage: str) -> None:
        """Evaluation runs in Lightning's validation loop, over sample batches (not real images).

        During fit, validation comes every ``eval_every`` generator iterations (one training step
        is one generator iteration) and at the end of training; without metrics there is none.
        """
        trainer = self.trainer
        compat.use_module_for_evaluation_data(trainer, self)
        if stage == "fit":
            if self.evaluator is None or not self._metrics_available(required=False):
                trainer.limit_val_batches = 0
            else:
                trainer.check_val_every_n_epoch = None
                trainer.val_check_interval = self.hparams.eval_every or self.hparams.generator_iterations
            trainer.num_sanity_val_steps = 0

    def evaluation_follows(self, iteration: int) -> bool:
        """Whether this fit evaluates right after generator iteration ``iteration``.

        The schedule :meth:`setup` gives Lightning's validation loop: every ``eval_every``
        iterations and at the end of training (``generator_iterations``), when metrics are on.
        ``GeneratorIterationCheckpoint`` writes the checkpoints of such an iteration after its
        evaluation, so that they hold it.
        """
        trainer = self._attached_trainer()
        if self.evaluator is None or trainer is None or not trainer.limit_val_batches or iteration < 1:
            return False
        every = self.hparams.eval_every
        return iteration >= self.hparams.generator_iterations or bool(every and iteration % every == 0)

    def configure_callbacks(self) -> list[Any]:
        """``best.ckpt`` by the metrics' main score (see ``BestCheckpoint.for_metrics``)."""
        if self.metrics is None:
            return []
        best = BestCheckpoint.for_metrics(getattr(self.metrics, "enabled", None))
        return [best] if best is not None else []

    # ------------------------------------------------------------------ training
    def _check_finite(self, values: dict[str, Tensor]) -> None:
        """NaN guard before an optimiser step: losses and gradient norms, in one host sync.

        Gradients are not checked under a GradScaler: scaled gradients may overflow by design and
        the scaler then skips the step itself.
        """
        if getattr(self.trainer.precision_plugin, "scaler", None) is not None:
            values = {k: v for k, v in values.items() if not k.startswith("grad_norm")}
        ensure_finite(values, self.generator_iteration)

    def _grad_scale(self) -> float:
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        return float(scaler.get_scale()) if scaler is not None else 1.0

    @contextlib.contextmanager
    def _toggled(self, optimizer: Any) -> Iterator[None]:
        """Only ``optimizer``'s parameters require grad inside (Lightning's toggle/untoggle)."""
        self.toggle_optimizer(optimizer)
        try:
            yield
        finally:
            self.untoggle_optimizer(optimizer)

    def _step_backend(self) -> StepBackend:
        return StepBackend(
            backward=self.manual_backward,
            toggle=self._toggled,
            grad_scale=self._grad_scale,
            check=self._check_finite,
            compiled_generator=self._compiled[0] if self._compiled else None,
            compiled_discriminator=self._compiled[1] if self._compiled else None,
        )

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        n_critic = self.hparams.n_critic
        if batch.shape[0] % n_critic != 0:
            raise ValueError(
                f"GANModule: a training batch of {batch.shape[0]} images cannot be split into "
                f"n_critic={n_critic} mini-batches; set data.init_args.batches_per_iteration to "
                f"n_critic (the CLI links them)."
            )
        started = time.perf_counter()
        if self.hparams.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        opt_g, opt_d = self.optimizers()
        rng = step_generator(self.hparams.seed, self.global_rank, self.generator_iteration, self.device)
        stats = generator_iteration(
            self.generator, self.discriminator, (opt_g, opt_d), batch, n_critic, rng,
            self.step_settings, self._step_backend(),
        )
        self.generator_iteration += 1
        self._update_ema()
        for scheduler in self.lr_schedulers():
            scheduler.step()
        self._window.add(stats, images=batch.shape[0], seconds=time.perf_counter() - started)
        self.log("g_iter", float(self.generator_iteration), prog_bar=True, logger=False, on_step=True)
        self.log("loss_d", stats["loss_d"], prog_bar=True, logger=False, on_step=True)
        self.log("loss_g", stats["loss_g"], prog_bar=True, logger=False, on_step=True)

    def _update_ema(self) -> None:
        if self.generator_ema is not None:
            decay = self.hparams.ema_decay if self.generator_iteration > self.hparams.ema_start else 0.0
            update_ema(self.generator_ema, self.generator, decay)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        iteration = self.generator_iteration
        if iteration % max(1, self.trainer.log_every_n_steps) == 0:
            self._log_window()
        if iteration >= self.hparams.generator_iterations:
            self.trainer.should_stop = True

    def _log_window(self) -> None:
        values = self._window.flush()
        if not values:
            return
        opt_g, opt_d = self.optimizers()
        values["lr_g"] = opt_g.param_groups[0]["lr"]
        values["lr_d"] = opt_d.param_groups[0]["lr"]
        values["generator_iteration"] = self.generator_iteration
        self.log_at_iteration(values)

    def log_at_iteration(self, values: dict[str, float]) -> None:
        """Send ``values`` to every logger with the generator iteration as the step axis."""
        if self.trainer.is_global_zero:
            for logger in self.loggers:
                logger.log_metrics(values, step=self.generator_iteration)
                # CSVLogger only flushes when (step + 1) % 100 == 0, which a generator-iteration
                # step axis logged every N iterations may never hit: flush now, lose nothing.
                logger.save()

    # ------------------------------------------------------------------ sampling
    def sampling_generator(self) -> nn.Module:
        """The generator used for evaluation and samples: the EMA copy when EMA is on."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def generate(self, latents: Tensor) -> Tensor:
        """Images in [-1, 1] from ``latents`` with :meth:`sampling_generator` in the configured mode."""
        generator = self.sampling_generator()
        was_training = generator.training
        generator.train(self.hparams.eval_generator_mode == "train")
        try:
            return generator(latents.to(self.device))
        finally:
            generator.train(was_training)

    # ------------------------------------------------------------------ prediction
    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Images for a batch of ``(indices, latents)`` (see ``giugan.training.callbacks.ImageWriter``)."""
        _, latents = batch
        return self.generate(latents).cpu()

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["giugan"] = {
            **checkpoint_architecture(self.generator, self.discriminator, self.hparams.preset),
            "generator_iteration": self.generator_iteration,
            "evaluation": self.evaluation_record(),
            "world_size": self.trainer.world_size,
        }

    def _attached_trainer(self) -> Any:
        """The trainer, or None when the module is used without one."""
        try:
            return self.trainer
        except RuntimeError:
            return None

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("giugan")
        check_checkpoint_architecture(saved, self.generator, self.discriminator, self.hparams.preset)
        self.generator_iteration = int(saved["generator_iteration"])
        trainer = self._attached_trainer()  # None in GANModule.load_from_checkpoint
        if trainer is not None and announce_world_size_change(
            saved.get("world_size"), trainer.world_size, trainer.state.fn
        ):
            compat.forget_training_data_position(checkpoint, trainer.datamodule)
        if self.evaluator is not None:
            record = saved.get("evaluation") or {}
            self.evaluator.load_state_dict(record)
            self._evaluation_due = record.get("due")


_OBJECT_ARGUMENTS = ["generator", "discriminator", "loss", "metrics", "optimizer_g", "optimizer_d"]
