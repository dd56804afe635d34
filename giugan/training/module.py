"""``GANModule``: one LightningModule for every model of both papers (manual optimisation).

One training step = one **generator iteration** (the papers' unit: "1 million iterations"): it
consumes ``n_critic`` real mini-batches (the data module delivers them stacked; the CLI links
``data.batches_per_iteration`` to ``model.n_critic``), takes ``n_critic`` discriminator steps and
one generator step. Training length, logging, evaluation, sample grids, checkpoints and LR
schedules all count generator iterations (``self.generator_iteration``), never
``trainer.global_step``, which under manual optimisation counts every optimiser step.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterable
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor, nn

from giugan.training.callbacks.guards import ensure_finite, total_grad_norm
from giugan.training.evaluation import Evaluator
from giugan.losses import LossName, get_loss, gradient_penalty
from giugan.messages import first_few
from giugan.metrics import GenerativeMetrics
from giugan.nets.presets import build_preset, check_preset_name
from giugan.ops import RepresentativeBatchNorm2d
from giugan.seeding import step_generator

LRSchedule = Literal["constant", "linear", "exponential"]


def architecture_fingerprint(module: nn.Module) -> list[list[Any]]:
    """Names and shapes of every parameter and buffer: equal iff two networks are interchangeable."""
    return [[name, list(t.shape)] for name, t in module.state_dict().items()]


class GANModule(LightningModule):
    """Pairs a generator with a discriminator under manual optimisation.

    Args:
        generator, discriminator: any ``nn.Module`` (YAML ``class_path``/``init_args``); the
            generator must expose ``z_dim``. Give both, or neither and a ``preset``.
        preset: name from ``giugan.nets.presets`` (e.g. ``giu_gan_32``) used when no networks are
            given.
        loss: adversarial loss (``giugan.losses``).
        gp_weight: lambda of the WGAN-GP gradient penalty (GIU-GANs eq. 14: 10); 0 disables it.
        gp_mode: ``same_step`` adds lambda*GP to the critic loss (Gulrajani et al.);
            ``separate_step`` takes its own optimiser step on lambda*GP after the critic step, as
            the iGAN / heykeetae code does.
        n_critic: discriminator steps per generator step.
        generator_iterations: training length in generator iterations.
        optimizer_g, optimizer_d: optimiser factories (e.g. Adam lr 2e-4, betas (0, 0.9)).
        lr_schedule: ``constant``; ``linear`` decay to 0 at ``generator_iterations``;
            ``exponential``: lr * lr_decay_rate ** (iteration // lr_decay_every) (iGAN Table 1).
        ema_decay: decay of an exponential moving average of G's weights (None = no EMA);
            evaluation and sampling then use the EMA generator. ``ema_start``: iteration before
            which the EMA copies G.
        metrics: a :class:`giugan.metrics.GenerativeMetrics` (None = no metrics).
        eval_every: evaluate every this many generator iterations (0 = only at the end of fit).
        eval_generator_mode: ``eval`` (BN running statistics, the default and what we report) or
            ``train`` (batch statistics) for the generator during evaluation and sampling.
        seed: noise seed; step noise is drawn from ``(seed, rank, iteration)``.
        nan_guard: stop with a clear error on a non-finite loss before its optimiser step.
        predict_num_images, predict_seed, predict_output_dir, predict_npz: ``giugan predict``.
    """

    def __init__(
        self,
        generator: nn.Module | None = None,
        discriminator: nn.Module | None = None,
        preset: str | None = None,
        loss: LossName = "wasserstein",
        gp_weight: float = 10.0,
        gp_mode: Literal["same_step", "separate_step"] = "same_step",
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
        predict_num_images: int = 64,
        predict_seed: int = 0,
        predict_output_dir: str | None = None,
        predict_npz: bool = False,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        # Built by `giugan` (LightningCLI), the hyperparameters are the config, networks and
        # optimisers included as class_path/init_args, so GANModule.load_from_checkpoint(path)
        # rebuilds the same model. Built in Python, those arguments are objects: not saved.
        self.save_hyperparameters(ignore=[] if _built_from_config() else _OBJECT_ARGUMENTS)
        _validate_settings(
            loss=loss, gp_weight=gp_weight, gp_mode=gp_mode, n_critic=n_critic,
            generator_iterations=generator_iterations, lr_schedule=lr_schedule,
            lr_decay_rate=lr_decay_rate, lr_decay_every=lr_decay_every, ema_decay=ema_decay,
            ema_start=ema_start, eval_every=eval_every, predict_num_images=predict_num_images,
        )
        if preset is not None:
            check_preset_name(preset)  # also when networks are given: a typo must not pass silently
        if (generator is None) != (discriminator is None):
            raise ValueError(
                "GANModule: give both model.init_args.generator and model.init_args.discriminator, "
                "or neither together with model.init_args.preset."
            )
        if generator is None:
            if preset is None:
                raise ValueError(
                    "GANModule: no networks given. Set model.init_args.preset (e.g. giu_gan_32; "
                    "`giugan profile --all` lists them) or both generator and discriminator."
                )
            generator, discriminator = build_preset(preset)
        if not isinstance(getattr(generator, "z_dim", None), int):
            raise ValueError(
                f"GANModule: the generator {type(generator).__name__} has no integer attribute "
                f"`z_dim`; a generator must say how long its latent vector is."
            )
        self.generator = generator
        self.discriminator = discriminator
        self.generator_ema = _frozen_copy(generator) if ema_decay is not None else None
        self.adversarial_loss = get_loss(loss)
        self.metrics = metrics
        self.evaluator = Evaluator(self)
        self.generator_iteration = 0
        self._optimizer_factories = (optimizer_g, optimizer_d)
        _check_learning_rates(optimizer_g, "optimizer_g")
        _check_learning_rates(optimizer_d, "optimizer_d")
        self._window = _LogWindow()
        self._rbn_layers = [
            name for name, layer in self.named_modules() if isinstance(layer, RepresentativeBatchNorm2d)
        ]

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
        """LR multiplier after ``iteration`` generator iterations."""
        if self.hparams.lr_schedule == "linear":
            return max(0.0, 1.0 - iteration / self.hparams.generator_iterations)
        if self.hparams.lr_schedule == "exponential":
            return self.hparams.lr_decay_rate ** (iteration // self.hparams.lr_decay_every)
        return 1.0

    def on_train_start(self) -> None:
        # A resumed run: forget what a killed attempt logged after the restored checkpoint.
        if self.generator_iteration:
            for logger in self.loggers:
                truncate = getattr(logger, "truncate_after", None)
                if callable(truncate):
                    truncate(self.generator_iteration)

    def on_fit_start(self) -> None:
        _refuse_replaced_representative_norms(self)
        # Evaluation runs inside training every `eval_every` generator iterations (see
        # Evaluator); Lightning's own epoch-level validation loop is not used during fit.
        self.trainer.limit_val_batches = 0
        self.trainer.num_sanity_val_steps = 0

    # ------------------------------------------------------------------ training
    def _noise(self, batch_size: int, rng: torch.Generator) -> Tensor:
        return torch.randn(batch_size, self.z_dim, device=self.device, generator=rng)

    def _ensure_finite(self, losses: dict[str, Tensor], grad_norm: Tensor, grad_name: str) -> None:
        """NaN guard before an optimiser step: losses and the gradient norm, in one host sync.

        Gradients are not checked under a GradScaler: scaled gradients may overflow by design and
        the scaler then skips the step itself.
        """
        if getattr(self.trainer.precision_plugin, "scaler", None) is None:
            losses = {**losses, grad_name: grad_norm}
        ensure_finite(losses, self.generator_iteration)

    def _grad_scale(self) -> float:
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        return float(scaler.get_scale()) if scaler is not None else 1.0

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        n_critic = self.hparams.n_critic
        if batch.shape[0] % n_critic != 0:
            raise ValueError(
                f"GANModule: a training batch of {batch.shape[0]} images cannot be split into "
                f"n_critic={n_critic} mini-batches; set data.init_args.batches_per_iteration to "
                f"n_critic (the CLI links them)."
            )
        started = time.perf_counter()
        opt_g, opt_d = self.optimizers()
        rng = step_generator(self.hparams.seed, self.global_rank, self.generator_iteration, self.device)
        for real in batch.chunk(n_critic):
            d_stats = self._discriminator_step(real, opt_d, rng)
        g_stats = self._generator_step(real.shape[0], opt_g, rng)
        self.generator_iteration += 1
        self._update_ema()
        for scheduler in self.lr_schedulers():
            scheduler.step()
        self._window.add({**d_stats, **g_stats}, images=batch.shape[0], seconds=time.perf_counter() - started)
        self.log("g_iter", float(self.generator_iteration), prog_bar=True, logger=False, on_step=True)
        self.log("loss_d", d_stats["loss_d"], prog_bar=True, logger=False, on_step=True)
        self.log("loss_g", g_stats["loss_g"], prog_bar=True, logger=False, on_step=True)

    def _discriminator_step(self, real: Tensor, opt_d: Any, rng: torch.Generator) -> dict[str, Tensor]:
        hp = self.hparams
        with torch.no_grad():
            fake = self.generator(self._noise(real.shape[0], rng))
        self.toggle_optimizer(opt_d)
        real_scores = self.discriminator(real)
        fake_scores = self.discriminator(fake)
        loss_d = self.adversarial_loss.discriminator(real_scores, fake_scores)
        alpha = torch.rand(real.shape[0], 1, 1, 1, device=self.device, generator=rng, dtype=real.dtype)
        penalty = torch.zeros((), device=self.device)
        total = loss_d
        if hp.gp_weight > 0 and hp.gp_mode == "same_step":
            penalty = gradient_penalty(self.discriminator, real, fake, alpha, self._grad_scale())
            total = loss_d + hp.gp_weight * penalty
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(total)
        grad_norm = total_grad_norm(list(self.discriminator.parameters()))
        if hp.nan_guard:
            self._ensure_finite({"loss_d": loss_d, "gp": penalty}, grad_norm, "grad_norm_d")
        opt_d.step()
        if hp.gp_weight > 0 and hp.gp_mode == "separate_step":
            penalty = gradient_penalty(self.discriminator, real, fake, alpha, self._grad_scale())
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(hp.gp_weight * penalty)
            if hp.nan_guard:
                gp_grad_norm = total_grad_norm(list(self.discriminator.parameters()))
                self._ensure_finite({"gp": penalty}, gp_grad_norm, "grad_norm_gp")
            opt_d.step()
        self.untoggle_optimizer(opt_d)
        stats = {
            "loss_d": loss_d.detach(),
            "gp": penalty.detach(),
            "d_real": real_scores.detach().mean(),
            "d_fake": fake_scores.detach().mean(),
            "grad_norm_d": grad_norm.detach(),
        }
        if self.adversarial_loss.wasserstein_estimate:
            stats["wasserstein"] = stats["d_real"] - stats["d_fake"]
        return stats

    def _generator_step(self, batch_size: int, opt_g: Any, rng: torch.Generator) -> dict[str, Tensor]:
        self.toggle_optimizer(opt_g)
        fake_scores = self.discriminator(self.generator(self._noise(batch_size, rng)))
        loss_g = self.adversarial_loss.generator(fake_scores)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        grad_norm = total_grad_norm(list(self.generator.parameters()))
        if self.hparams.nan_guard:
            self._ensure_finite({"loss_g": loss_g}, grad_norm, "grad_norm_g")
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        return {"loss_g": loss_g.detach(), "grad_norm_g": grad_norm.detach()}

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.generator_ema is None:
            return
        decay = self.hparams.ema_decay if self.generator_iteration > self.hparams.ema_start else 0.0
        ema_params = list(self.generator_ema.parameters())
        params = list(self.generator.parameters())
        torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        for ema_buffer, buffer in zip(self.generator_ema.buffers(), self.generator.buffers()):
            ema_buffer.copy_(buffer)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        iteration = self.generator_iteration
        if iteration % max(1, self.trainer.log_every_n_steps) == 0:
            self._log_window()
        if self.hparams.eval_every and iteration % self.hparams.eval_every == 0:
            self.evaluator.evaluate_during_fit()
        if iteration >= self.hparams.generator_iterations:
            self.trainer.should_stop = True

    def on_train_end(self) -> None:
        if self.metrics is not None and (
            not self.hparams.eval_every or self.generator_iteration % self.hparams.eval_every
        ):
            self.evaluator.evaluate_during_fit()

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

    # ------------------------------------------------------------------ evaluation
    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        self.evaluator.update_real(batch)

    def test_step(self, batch: Tensor, batch_idx: int) -> None:
        self.evaluator.update_real(batch)

    def on_validation_epoch_start(self) -> None:
        self.evaluator.start_loop_evaluation()

    def on_test_epoch_start(self) -> None:
        self.evaluator.start_loop_evaluation()

    def on_validation_epoch_end(self) -> None:
        self.evaluator.finish_loop_evaluation(write_report=False)

    def on_test_epoch_end(self) -> None:
        self.evaluator.finish_loop_evaluation(write_report=True)

    # ------------------------------------------------------------------ prediction
    def predict_dataloader(self) -> Iterable[Tensor]:
        indices = torch.arange(self.hparams.predict_num_images)
        return torch.utils.data.DataLoader(indices, batch_size=64, shuffle=False)

    def predict_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        from giugan.training.prediction import latents_for_indices, write_images

        latents = latents_for_indices(batch, self.z_dim, self.hparams.predict_seed)
        images = self.generate(latents)
        write_images(self, batch, images)
        return images.cpu()

    def on_predict_epoch_end(self) -> None:
        from giugan.training.prediction import finish_prediction

        finish_prediction(self)

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["giugan"] = {
            "generator_iteration": self.generator_iteration,
            "architecture": {
                "generator": architecture_fingerprint(self.generator),
                "discriminator": architecture_fingerprint(self.discriminator),
            },
            "generator_class": type(self.generator).__qualname__,
            "discriminator_class": type(self.discriminator).__qualname__,
            "preset": self.hparams.preset,
            "evaluation": self.evaluator.state_dict(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("giugan")
        if saved is None:
            raise ValueError(
                "This checkpoint was not written by giugan's GANModule (no 'giugan' section); "
                "give a checkpoint from a giugan run directory (runs/<name>/checkpoints/*.ckpt)."
            )
        for part in ("generator", "discriminator"):
            ours = architecture_fingerprint(getattr(self, part))
            if saved["architecture"][part] != ours:
                theirs = saved.get(f"{part}_class", "?")
                raise ValueError(
                    f"The checkpoint's {part} ({theirs}, preset {saved.get('preset')!r}) has a "
                    f"different architecture from the configured one ({type(getattr(self, part)).__qualname__}, "
                    f"preset {self.hparams.preset!r}): {_first_difference(saved['architecture'][part], ours)}. "
                    f"Use the config the checkpoint was trained with (it is saved as config.yaml in "
                    f"its run directory), or start a new run without --ckpt_path."
                )
        self.generator_iteration = int(saved["generator_iteration"])
        self.evaluator.load_state_dict(saved.get("evaluation", {}))


class _LogWindow:
    """Accumulates step statistics on device and averages them when flushed (one sync per log)."""

    def __init__(self) -> None:
        self._sums: dict[str, Tensor] = {}
        self._count = 0
        self._images = 0
        self._seconds = 0.0

    def add(self, stats: dict[str, Tensor], images: int, seconds: float) -> None:
        for name, value in stats.items():
            self._sums[name] = self._sums.get(name, 0.0) + value.float()
        self._count += 1
        self._images += images
        self._seconds += seconds

    def flush(self) -> dict[str, float]:
        if not self._count:
            return {}
        values = {name: float(total) / self._count for name, total in self._sums.items()}
        values["images_per_second"] = self._images / max(self._seconds, 1e-9)
        values["iterations_per_second"] = self._count / max(self._seconds, 1e-9)
        self.__init__()
        return values


def _frozen_copy(module: nn.Module) -> nn.Module:
    copied = copy.deepcopy(module)
    for parameter in copied.parameters():
        parameter.requires_grad_(False)
    return copied


def _first_difference(saved: list, ours: list) -> str:
    for (name_a, shape_a), (name_b, shape_b) in zip(saved, ours):
        if name_a != name_b or shape_a != shape_b:
            return f"checkpoint has {name_a} {shape_a} where the configured network has {name_b} {shape_b}"
    return f"checkpoint has {len(saved)} tensors, the configured network {len(ours)}"


def _check_learning_rates(factory: OptimizerCallable, name: str) -> None:
    probe = nn.Parameter(torch.zeros(1))
    try:
        optimizer = factory([probe])
    except ValueError as error:
        raise ValueError(
            f"GANModule: model.init_args.{name} is invalid: {error}. Optimiser settings must be "
            f"valid for it: a positive number for lr (the papers use 1e-4 to 4e-4), betas in [0, 1)."
        ) from error
    for group in optimizer.param_groups:
        lr = group.get("lr")
        if isinstance(lr, (int, float)) and not (lr > 0 and math.isfinite(lr)):
            raise ValueError(
                f"GANModule: model.init_args.{name} has lr={lr}; the learning rate must be a "
                f"positive number (the papers use 1e-4 to 4e-4)."
            )


def _validate_settings(**s: Any) -> None:
    """Check the GANModule settings; one-paragraph ``ValueError`` naming the key and allowed values."""

    def fail(key: str, allowed: str) -> None:
        raise ValueError(f"GANModule: model.init_args.{key}={s[key]!r} is not allowed; {allowed}.")

    get_loss(s["loss"])
    if not isinstance(s["n_critic"], int) or isinstance(s["n_critic"], bool) or s["n_critic"] < 1:
        fail("n_critic", "it must be an integer >= 1 (discriminator steps per generator step)")
    if not isinstance(s["gp_weight"], (int, float)) or s["gp_weight"] < 0 or not math.isfinite(s["gp_weight"]):
        fail("gp_weight", "it must be a finite number >= 0 (WGAN-GP uses 10; 0 disables the penalty)")
    if s["gp_mode"] not in ("same_step", "separate_step"):
        fail("gp_mode", "use 'same_step' or 'separate_step'")
    if not isinstance(s["generator_iterations"], int) or s["generator_iterations"] < 1:
        fail("generator_iterations", "it must be an integer >= 1 (training length in generator iterations)")
    if s["lr_schedule"] not in ("constant", "linear", "exponential"):
        fail("lr_schedule", "use 'constant', 'linear' or 'exponential'")
    if not 0 < s["lr_decay_rate"] <= 1:
        fail("lr_decay_rate", "it must lie in (0, 1]")
    if not isinstance(s["lr_decay_every"], int) or s["lr_decay_every"] < 1:
        fail("lr_decay_every", "it must be an integer >= 1 (generator iterations)")
    if s["ema_decay"] is not None and not 0 < s["ema_decay"] < 1:
        fail("ema_decay", "it must lie strictly between 0 and 1 (e.g. 0.999), or be null for no EMA")
    if not isinstance(s["ema_start"], int) or s["ema_start"] < 0:
        fail("ema_start", "it must be an integer >= 0")
    if not isinstance(s["eval_every"], int) or s["eval_every"] < 0:
        fail("eval_every", "it must be an integer >= 0 (0 = evaluate only at the end)")
    if not isinstance(s["predict_num_images"], int) or s["predict_num_images"] < 1:
        fail("predict_num_images", "it must be an integer >= 1")


_OBJECT_ARGUMENTS = ["generator", "discriminator", "metrics", "optimizer_g", "optimizer_d"]


def _built_from_config() -> bool:
    """True while LightningCLI instantiates the module from its parsed config."""
    try:
        from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
    except ImportError:  # a Lightning without it: keep the safe behaviour (objects not saved)
        return False
    return _given_hyperparameters.get() is not None


def _refuse_replaced_representative_norms(module: GANModule) -> None:
    """Stop when something (``trainer.sync_batchnorm``) swapped RBN layers for plain BatchNorm.

    ``SyncBatchNorm.convert_sync_batchnorm`` converts every ``_BatchNorm`` subclass, so RBN
    (spec 2) would silently become a plain synchronised BN and drop its calibration parameters.
    """
    replaced = [
        name for name in module._rbn_layers
        if not isinstance(module.get_submodule(name), RepresentativeBatchNorm2d)
    ]
    if replaced:
        raise ValueError(
            f"GANModule: RepresentativeBatchNorm2d layers ({first_few(replaced)}) were replaced by "
            f"{type(module.get_submodule(replaced[0])).__name__} before training, which would "
            f"silently train a different network without RBN's calibration (GIU-GANs section 4). "
            f"This is what trainer.sync_batchnorm=true does under DDP; set it to false (the "
            f"default: batch statistics per rank), or use a preset without RBN."
        )
