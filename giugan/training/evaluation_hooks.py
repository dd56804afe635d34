"""``GANModule``'s evaluation hooks: Lightning's validation and test loops drive the Evaluator.

The loops' batches are sample counts (``num_fake`` split across ranks, see
:class:`giugan.training.evaluation.SampleBatches`); the real statistics come from the cache or,
once, from the data module's reference split. Scores reach the loggers, ``ModelCheckpoint`` and
early stopping through ``self.log``, with the generator iteration as the logged step.

The record of a fit (every evaluation, the best, the last; ``Evaluator.state_dict``) is part of
every checkpoint written at or after an evaluation: after each evaluation the checkpoint callbacks
are told (:meth:`EvaluationHooks.evaluation_recorded`), ``best.ckpt`` first, then the periodic
checkpoints of that iteration, which ``GeneratorIterationCheckpoint`` holds back until then. An
evaluation that a stop interrupted or skipped is written in the checkpoint as ``due`` and runs at
the start of the resume, on the restored weights, before training continues
(:meth:`EvaluationHooks.evaluate_missing`). So ``best.ckpt`` and ``eval/best_*`` are the best of
every evaluation of the run, however many attempts it took.

``giugan test`` and ``validate`` write their record (``eval.json``, ``eval-validate.json``) whole
or not at all: a SIGTERM or SIGINT during the evaluation (see ``GracefulStop``) leaves no record
and the command exits 143 or 130. One process stops at the end of the current batch; several
agree after each batch that every rank has and once more at the end of the loop, before the scores
are computed, and stop together.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info

from giugan.training.callbacks.signals import agree_on_stop, stop_received
from giugan.training.checks import metrics_ready
from giugan.training.evaluation import sample_batches_loader
from giugan.training.run_directory import report_filename


class EvaluationHooks:
    """Mixed into ``GANModule`` (uses its ``metrics``, ``evaluator``, ``generator_iteration``,
    ``evaluation_follows``, ``log_at_iteration`` and ``_evaluation_due``)."""

    #: Why the evaluation in progress is skipped (see ``_skip_in_fit``); None: it runs.
    _skipping_evaluation: str | None = None
    #: The record ``giugan test|validate`` wrote in this process (None: none yet).
    written_report: str | None = None

    def _check_metrics_reference(self) -> None:
        """Refuse a data module whose reference an enabled score cannot measure against (the
        shapes judge on CIFAR-10, say), before anything is measured."""
        trainer = self._attached_trainer()
        reference_id = getattr(getattr(trainer, "datamodule", None), "reference_id", None)
        check = getattr(self.metrics, "check_reference", None)
        if isinstance(reference_id, str) and callable(check):
            if trainer is not None and not trainer.is_global_zero:
                with warnings.catch_warnings():  # a refusal is raised on every rank; a caution
                    warnings.simplefilter("ignore", UserWarning)  # is said once, by rank 0
                    check(reference_id)
            else:
                check(reference_id)

    def _metrics_available(self, required: bool) -> bool:
        self._check_metrics_reference()
        if metrics_ready(self.metrics, required) or getattr(self, "_warned_unavailable", False):
            return self.metrics is not None and self.metrics.available
        if self.metrics is not None:
            warnings.warn(f"Metrics are disabled for this run: {self.metrics.unavailable_reason}")
            self._warned_unavailable = True
        return False

    def _evaluation_dataloader(self) -> Any:
        trainer = self.trainer
        self._metrics_available(required=True)
        batch_size = int(getattr(trainer.datamodule, "eval_batch_size", 250))
        return sample_batches_loader(
            int(self.metrics.num_fake), batch_size, trainer.global_rank, trainer.world_size
        )

    def val_dataloader(self) -> Any:
        return self._evaluation_dataloader()

    def test_dataloader(self) -> Any:
        return self._evaluation_dataloader()

    # ------------------------------------------------------------------ the record of a fit
    def evaluation_record(self) -> dict[str, Any]:
        """What a checkpoint keeps of the evaluations: ``Evaluator.state_dict()`` (``history``,
        ``best``, ``last``, ``last_iteration``) and ``due``: the generator iteration whose
        evaluation was scheduled but is not in the record (a stop interrupted or skipped it),
        else None."""
        if self.evaluator is None:
            return {}
        iteration = self.generator_iteration
        missing = self.evaluation_follows(iteration) and not self.evaluator.evaluated_at(iteration)
        if not missing and self._evaluation_due == iteration and not self.evaluator.evaluated_at(iteration):
            missing = True  # restored as due and not run yet (e.g. a stop right at the resume)
        return {**self.evaluator.state_dict(), "due": iteration if missing else None}

    def _evaluation_missing(self) -> bool:
        """At the start of a fit: is the evaluation of the restored iteration due and not recorded?"""
        iteration = self.generator_iteration
        if self.evaluator is None or iteration < 1 or self.evaluator.evaluated_at(iteration):
            return False
        if not self.trainer.limit_val_batches or not self._metrics_available(required=False):
            return False
        return self._evaluation_due == iteration or self.evaluation_follows(iteration)

    def evaluate_missing(self) -> None:
        """Run the evaluation of the restored generator iteration if it is due and missing.

        Called at the start of training (every rank: the decision comes from the checkpoint).
        The evaluation is the one the interrupted attempt would have made: the same samples of the
        same weights, logged at the same generator iteration; the checkpoint callbacks are then
        told, as after any evaluation, so ``best.ckpt`` and ``last.ckpt`` hold it.
        """
        if not self._evaluation_missing():
            return
        iteration = self.generator_iteration
        rank_zero_info(
            f"[giugan] the evaluation at generator iteration {iteration} is missing from the "
            f"checkpoint's record (a stop interrupted or skipped it): running it now, before "
            f"training continues."
        )
        self._start_evaluation()
        for count in self._evaluation_dataloader():
            self.evaluator.add_samples(int(count), self.device)
        values = self._score()
        # Outside Lightning's validation loop: to the loggers directly, at this iteration, as the
        # float32 numbers that ``self.log`` gives the loggers after any other evaluation.
        logged = self.evaluator.logged_values(values)
        self.log_at_iteration({k: float(torch.tensor(v, dtype=torch.float32)) for k, v in logged.items()})
        self._evaluation_due = None
        self.evaluation_recorded(resumed=True)

    def evaluation_recorded(self, resumed: bool = False) -> None:
        """Tell the checkpoint callbacks that the evaluation of this iteration is in the record:
        ``best.ckpt`` first (when it is the new best), then the periodic checkpoints of this
        iteration (``resumed``: an evaluation redone at the start of a resume)."""
        callbacks = [c for c in self.trainer.callbacks if callable(getattr(c, "after_evaluation", None))]
        callbacks.sort(key=lambda c: not getattr(c, "saves_best", False))
        for callback in callbacks:
            callback.after_evaluation(self.trainer, self, resumed=resumed)

    # ------------------------------------------------------------------ one evaluation
    def _start_evaluation(self) -> None:
        trainer = self.trainer
        self.evaluator.prepare_reference(trainer.datamodule, trainer.global_rank, trainer.world_size, self.device)
        if trainer.world_size > 1 and torch.distributed.is_initialized():
            # Every rank samples from rank 0's generator: DDP keeps the parameters equal, but each
            # rank's BatchNorm running statistics follow its own batches (rank 0's are saved).
            for buffer in self.sampling_generator().buffers():
                torch.distributed.broadcast(buffer, src=0)
        self.evaluator.start_samples(trainer.global_rank, self.device, trainer.world_size)

    def _score(self) -> dict[str, float]:
        values, _ = self.evaluator.compute(self.generator_iteration)
        rank_zero_info(
            f"[giugan] generator iteration {self.generator_iteration}: "
            + ", ".join(f"{k}={v:.4f}" for k, v in values.items())
        )
        return values

    def _finish_evaluation(self, command: str | None) -> dict[str, float]:
        if command is not None and agree_on_stop(self.trainer):
            # Stopped by a signal (every rank agrees, before any collective of the scores): no
            # record; GracefulStop ends the command with 128 + signal.
            return {}
        values = self._score()
        logged = self.evaluator.logged_values(values)
        # Every rank holds the same synchronised values (sync_dist only averages equal numbers);
        # the logged "step" makes the generator iteration the loggers' step axis.
        for name, value in {**logged, "step": float(self.generator_iteration)}.items():
            self.log(name, value, sync_dist=True)
        for name, value in values.items():
            if self.trainer.state.fn != "fit":
                self.log(name, value, sync_dist=True)
        if command is not None:
            folder = self.trainer.log_dir or self.trainer.default_root_dir  # a broadcast: every rank
            if self.trainer.is_global_zero:
                if stop_received(self.trainer):  # a signal after the agreement: still no record
                    rank_zero_info(f"[giugan] stopped by a signal: {report_filename(command)} not written")
                else:
                    self._write_report(values, command, folder)
        return values

    def _write_report(self, values: dict[str, float], command: str, folder: str) -> None:
        trainer, datamodule = self.trainer, self.trainer.datamodule
        context = {
            "command": command,
            "generator_iteration": self.generator_iteration,
            "checkpoint": getattr(trainer, "ckpt_path", None),
            "protocol": {
                "reference": datamodule.reference_id,
                "num_real": int(datamodule.num_reference_images),
                "generator": ("EMA generator" if self.generator_ema is not None else "generator")
                + f" in {self.hparams.eval_generator_mode} mode",
                "seed": self.hparams.seed,
                "world_size": trainer.world_size,
            },
        }
        path = self.evaluator.write_report(folder, values, context, report_filename(command))
        self.written_report = path
        rank_zero_info(f"[giugan] wrote {path}")

    # ------------------------------------------------------------------ Lightning's loops
    def _skip_in_fit(self) -> str | None:
        """Why this validation of a fit is skipped: ``"stop"`` (a stop is pending, which every
        rank knows: one process's handler or the ranks' agreement requested it; the evaluation
        then runs on resume) or ``"recorded"`` (the record holds this iteration already); None."""
        trainer = self.trainer
        if trainer.state.fn != "fit":
            return None
        if trainer.received_sigterm:
            rank_zero_info(
                f"[giugan] stopping: the evaluation at generator iteration {self.generator_iteration} "
                f"is skipped; it runs first when the run is resumed."
            )
            return "stop"
        return "recorded" if self.evaluator.evaluated_at(self.generator_iteration) else None

    def validation_step(self, batch: int, batch_idx: int) -> None:
        if self._skipping_evaluation is None:
            self.evaluator.add_samples(int(batch), self.device)

    def test_step(self, batch: int, batch_idx: int) -> None:
        self.evaluator.add_samples(int(batch), self.device)

    def on_validation_epoch_start(self) -> None:
        self.written_report = None
        self._skipping_evaluation = self._skip_in_fit()
        if self._skipping_evaluation is None:
            self._start_evaluation()

    def on_test_epoch_start(self) -> None:
        self.written_report = None
        self._start_evaluation()

    def on_validation_epoch_end(self) -> None:
        if self._skipping_evaluation is not None:
            return
        # ``giugan validate`` writes its own record; the evaluations inside ``fit`` go to the log.
        self._finish_evaluation(command="validate" if self.trainer.state.fn == "validate" else None)

    def on_validation_end(self) -> None:
        # After every callback's on_validation_end: the record holds this iteration's evaluation.
        trainer = self.trainer
        if trainer.state.fn == "fit" and not trainer.sanity_checking and self._skipping_evaluation != "stop":
            self.evaluation_recorded()
        self._skipping_evaluation = None

    def on_test_epoch_end(self) -> None:
        self._finish_evaluation(command="test")
