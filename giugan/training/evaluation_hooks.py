"""``GANModule``'s evaluation hooks: Lightning's validation and test loops drive the Evaluator.

The loops' batches are sample counts (``num_fake`` split across ranks, see
:class:`giugan.training.evaluation.SampleBatches`); the real statistics come from the cache or,
once, from the data module's reference split. Scores reach the loggers, ``ModelCheckpoint`` and
early stopping through ``self.log``, with the generator iteration as the logged step.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info

from giugan.training.checks import metrics_ready
from giugan.training.evaluation import sample_batches_loader


def report_filename(command: str) -> str:
    """The record an evaluation command writes in the run directory: ``test`` -> ``eval.json``,
    ``validate`` -> ``eval-validate.json`` (so neither replaces the other's)."""
    return "eval.json" if command == "test" else f"eval-{command}.json"


class EvaluationHooks:
    """Mixed into ``GANModule`` (uses its ``metrics``, ``evaluator``, ``generator_iteration``)."""

    def _metrics_available(self, required: bool) -> bool:
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

    def _start_evaluation(self) -> None:
        trainer = self.trainer
        self.evaluator.prepare_reference(trainer.datamodule, trainer.global_rank, trainer.world_size, self.device)
        if trainer.world_size > 1 and torch.distributed.is_initialized():
            # Every rank samples from rank 0's generator: DDP keeps the parameters equal, but each
            # rank's BatchNorm running statistics follow its own batches (rank 0's are saved).
            for buffer in self.sampling_generator().buffers():
                torch.distributed.broadcast(buffer, src=0)
        self.evaluator.start_samples(trainer.global_rank, self.device, trainer.world_size)

    def _finish_evaluation(self, command: str | None) -> dict[str, float]:
        values, _ = self.evaluator.compute(self.generator_iteration)
        logged = self.evaluator.logged_values(values)
        # Every rank holds the same synchronised values (sync_dist only averages equal numbers);
        # the logged "step" makes the generator iteration the loggers' step axis.
        for name, value in {**logged, "step": float(self.generator_iteration)}.items():
            self.log(name, value, sync_dist=True)
        for name, value in values.items():
            if self.trainer.state.fn != "fit":
                self.log(name, value, sync_dist=True)
        rank_zero_info(
            f"[giugan] generator iteration {self.generator_iteration}: "
            + ", ".join(f"{k}={v:.4f}" for k, v in values.items())
        )
        if command is not None:
            folder = self.trainer.log_dir or self.trainer.default_root_dir  # a broadcast: every rank
            if self.trainer.is_global_zero:
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
        rank_zero_info(f"[giugan] wrote {path}")

    def validation_step(self, batch: int, batch_idx: int) -> None:
        self.evaluator.add_samples(int(batch), self.device)

    def test_step(self, batch: int, batch_idx: int) -> None:
        self.evaluator.add_samples(int(batch), self.device)

    def on_validation_epoch_start(self) -> None:
        self._start_evaluation()

    def on_test_epoch_start(self) -> None:
        self._start_evaluation()

    def on_validation_epoch_end(self) -> None:
        # ``giugan validate`` writes its own record; the evaluations inside ``fit`` go to the log.
        self._finish_evaluation(command="validate" if self.trainer.state.fn == "validate" else None)

    def on_test_epoch_end(self) -> None:
        self._finish_evaluation(command="test")

