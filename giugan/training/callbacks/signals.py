"""SIGTERM and SIGINT end a run at a generator-iteration boundary with a checkpoint and exit 143/130.

:class:`GracefulStop` handles both signals itself: its handler only remembers which signal came
(no collective and no exception inside a signal handler). At the end of every generator iteration
all ranks agree on a stop with one small all-reduce (the largest signal number any rank received),
so a signal delivered to one rank (the launching process, a ``kill`` of one pid) or to all of them
at slightly different moments (Ctrl-C in a terminal, SLURM, torchrun forwarding it) stops every
rank after the same iteration. Lightning's stop-after-batch path then raises on every rank, and
``last.ckpt`` is written (atomically, see ``AtomicCheckpointIO``; rank 0 writes, all ranks enter the
save's barrier). Further signals while that checkpoint is written are ignored with a message, so a
second Ctrl-C can neither abort the save nor leave a half file. The command line then exits with
``128 + signal`` (143 for SIGTERM, 130 for SIGINT) on every rank, so ``fit && test`` pipelines and
schedulers see that the run did not finish.

Lightning's own SIGTERM handler is replaced once training (or the loop of ``validate``, ``test``,
``predict``) starts: it broadcasts from inside the handler, which deadlocks when the signal lands
while the ranks are in another collective. (Between Lightning's installing it and the loop's start,
the start-up barrier included, it is still chained in front of ours.)

``giugan validate``, ``test`` and ``predict`` exit with the same statuses; they write no
checkpoint, and an evaluation's record (``eval.json``) is written whole or not at all: a signal
before it is written means no record. They stop at the end of the current batch: one process at
once; several agree (the same small all-reduce as in training) after every batch that all ranks
have (the ranks' shards may differ by one batch; the common count is taken with one all-reduce when
the loop starts) and once more at the end of the evaluation loop, before the scores are computed
(:func:`agree_on_stop`). A signal that lands after that point stops its rank once the command's
collectives are done, and a rank 0 that got one does not write the record. The handlers in place
before the command are restored afterwards.

SLURM preemption: with Lightning's SLURM environment (``auto_requeue``, the default under
``srun``), the requeue signal (SIGUSR1, ``#SBATCH --signal=SIGUSR1@90``) makes Lightning save
``hpc_ckpt_<n>.ckpt`` in the run's root and requeue the job; the requeued job restores it by
itself. That path is Lightning's and untouched here.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from giugan import compat

#: Exit status of a run stopped by each signal (shell convention: 128 + signal number).
EXIT_STATUS = {signal.SIGTERM: 143, signal.SIGINT: 130}


#: The stop of the last run in this process that a signal ended (read by the command line).
LAST_STOP: list[RunStopped] = []


class RunStopped(Exception):
    """A command stopped by a signal (the CLI exits 128 + signal): a fit after writing its
    checkpoint, an evaluation without its record, a prediction after its last whole batch."""

    def __init__(
        self, signum: int, iteration: int, checkpoint: str | None, command: str = "fit",
        record: str | None = None, written: str | None = None,
    ) -> None:
        self.signum, self.iteration, self.checkpoint = signum, iteration, checkpoint
        self.command = command
        name = signal.Signals(signum).name
        if command == "fit":
            where = f"{checkpoint} was written" if checkpoint else "no checkpoint could be written"
            message = (
                f"Stopped by {name} after generator iteration {iteration}; {where}. Resume with the "
                f"same command and --ckpt_path last (the run's config.yaml is in its directory)."
            )
        elif command == "predict":
            message = (
                f"`giugan predict` stopped by {name}: the images written so far are whole files, the "
                f"others were not generated. Run the same command again to write them all."
            )
        elif written:
            message = (
                f"`giugan {command}` received {name} after writing {written} (complete: the "
                f"evaluation of generator iteration {iteration} had finished)."
            )
        else:
            message = (
                f"`giugan {command}` stopped by {name} during the evaluation of generator iteration "
                f"{iteration}; {record or 'its record'} was not written (a partial evaluation is "
                f"never recorded). Run the same command again."
            )
        super().__init__(message)


class GracefulStop(Callback):
    """Finish the current generator iteration, write ``last.ckpt``, stop (see module docstring)."""

    def __init__(self, keep_handlers_after_stop: bool = False) -> None:
        """``keep_handlers_after_stop``: keep ignoring signals after the stop until
        :meth:`restore_handlers` (the command line does, once it has reported the stop);
        otherwise, once the checkpoint is written, a further signal acts as it normally would."""
        self.received: int | None = None
        self.saving = False
        self.done = False
        self.keep_handlers_after_stop = keep_handlers_after_stop
        self._previous: dict[int, Any] = {}
        self._stage = "fit"
        self._common_batches = 0

    # ----------------------------------------------------------------- handlers
    def _handle(self, signum: int, frame: Any) -> None:
        if self.done and not self.keep_handlers_after_stop:
            self.restore_handlers()
            signal.raise_signal(signum)
            return
        fit = self._stage == "fit"
        if self.received is not None:
            if fit:
                message = "still writing the checkpoint" if self.saving else "stopping after this iteration"
            else:
                message = "stopping"
            print(f"\ngiugan: {signal.Signals(signum).name} again ignored: {message}.", file=sys.stderr)
            return
        self.received = signum
        doing = {
            "fit": "finishing this generator iteration, then writing last.ckpt and stopping.",
            "predict": "stopping after this batch of images.",
        }.get(self._stage, "stopping the evaluation; its record will not be written.")
        print(f"\ngiugan: {signal.Signals(signum).name} received: {doing}", file=sys.stderr)
        if self._trainer.world_size == 1:
            # One process: no agreement needed; Lightning's loops stop after the current batch.
            compat.request_stop_after_batch(self._trainer)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self._trainer = trainer
        self._stage = str(getattr(stage, "value", stage))
        self.received = None
        self.done = False
        for signum in EXIT_STATUS:
            self._previous.setdefault(signum, signal.getsignal(signum))
            signal.signal(signum, self._handle)
        # Lightning installs its SIGTERM handler after this hook, chained in front of ours; its
        # notifier broadcasts inside the handler (a deadlock under DDP), so it is made a no-op
        # until `_take_over` leaves ours alone.
        compat.silence_lightning_sigterm_notifier(trainer)

    def _take_over(self) -> None:
        # Lightning installed its SIGTERM handler after `setup` (chaining ours behind it); its
        # in-handler broadcast must not run under DDP, so ours is the only one from here on.
        if self._previous and threading.current_thread() is threading.main_thread():
            for signum in EXIT_STATUS:
                signal.signal(signum, self._handle)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._take_over()

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "validate":
            self._take_over()

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._take_over()

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._take_over()

    def agree(self, trainer: Trainer) -> int | None:
        """The signal any rank received (the largest number), the same on every rank.

        Under DDP one small all-reduce: every rank must call it at the same point of the same
        loop. The agreed signal becomes this rank's (so every rank stops the same way)."""
        if trainer.world_size > 1 and torch.distributed.is_initialized():
            received = torch.tensor([self.received or 0], device=trainer.strategy.root_device)
            torch.distributed.all_reduce(received, op=torch.distributed.ReduceOp.MAX)
            agreed = int(received.item())
            if agreed:
                self.received = self.received or agreed
        return self.received

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        """Every rank, after every generator iteration: stop together if any rank got a signal."""
        if trainer.world_size == 1 or not torch.distributed.is_initialized():
            return
        if self.agree(trainer):
            compat.request_stop_after_batch(trainer)

    # ----------------------------------------------------------------- validate, test, predict
    def _stop_now(self) -> None:
        """End an evaluation or prediction command that a signal stopped (see ``on_exception``)."""
        if self.received is not None and not self.done:
            from lightning.pytorch.utilities.exceptions import SIGTERMException

            raise SIGTERMException()

    def _count_common_batches(self, trainer: Trainer, batches: Any) -> None:
        """Every rank, at the start of the loop: how many batches every rank has (the ranks' shards
        may differ by a batch), so that the agreements below are made by all ranks or by none."""
        self._common_batches = 0
        if trainer.world_size == 1 or not torch.distributed.is_initialized():
            return
        count = sum(batches) if batches and all(math.isfinite(n) for n in batches) else 0
        common = torch.tensor([int(count)], device=trainer.strategy.root_device)
        torch.distributed.all_reduce(common, op=torch.distributed.ReduceOp.MIN)
        self._common_batches = int(common.item())

    def _batch_end(self, trainer: Trainer, batch_idx: int) -> None:
        """After a batch of ``validate``, ``test`` or ``predict``: stop if a signal came (one
        process), or if any rank got one (several: agreed at a batch that every rank has)."""
        alone = trainer.world_size == 1 or not torch.distributed.is_initialized()
        if alone or (batch_idx < self._common_batches and self.agree(trainer)):
            self._stop_now()

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "validate":
            self._count_common_batches(trainer, trainer.num_val_batches)

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._count_common_batches(trainer, trainer.num_test_batches)

    def on_predict_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._count_common_batches(trainer, trainer.num_predict_batches)

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                                batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        if trainer.state.fn == "validate":  # in a fit the evaluation finishes (see the docstring)
            self._batch_end(trainer, batch_idx)

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                          batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._batch_end(trainer, batch_idx)

    def on_predict_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                             batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._batch_end(trainer, batch_idx)

    # A signal after the last agreement: its rank stops once the command's collectives are done
    # (the evaluation's record is not written by a rank that got one, see evaluation_hooks).
    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "validate":
            self._stop_now()

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._stop_now()

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._stop_now()

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not (self.done and self.keep_handlers_after_stop):
            self.restore_handlers()

    def restore_handlers(self) -> None:
        """Put back the handlers that were in place before the command."""
        for signum, previous in self._previous.items():
            if previous is not None:
                signal.signal(signum, previous)
        self._previous = {}

    # ----------------------------------------------------------------- the stop
    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if self.received is None or not compat.is_stop_after_batch(exception):
            return
        iteration = int(getattr(pl_module, "generator_iteration", 0))
        if self._stage != "fit":
            # Every rank ends with 128 + signal; the launching process must live to report its own.
            compat.stop_watching_child_processes()
            written = getattr(pl_module, "written_report", None)
            self._stopped(RunStopped(self.received, iteration, None, self._stage, self._record_name(), written))
            return
        callback = trainer.checkpoint_callback
        folder = getattr(callback, "dirpath", None)
        path = os.path.join(folder, "last.ckpt") if folder else None
        # The periodic save of this very iteration wrote it already: written once. (The same
        # answer on every rank, as it must be: the save below is collective.)
        path_written_already = getattr(callback, "last_saved_iteration", None) == iteration
        self.saving = True
        # Every rank ends with 128 + signal; the launching process must live to report its own.
        compat.stop_watching_child_processes()
        try:
            if path is not None and not path_written_already:
                trainer.save_checkpoint(path, weights_only=False)
        finally:
            self.saving = False
        self._stopped(RunStopped(self.received, iteration, path))

    def _record_name(self) -> str | None:
        if self._stage in ("test", "validate"):
            from giugan.training.run_directory import report_filename

            return report_filename(self._stage)
        return None

    def _stopped(self, stopped: RunStopped) -> None:
        self.stopped = stopped
        self.stopped.callback = self
        LAST_STOP[:] = [self.stopped]
        self.done = True


def graceful_stop(trainer: Trainer) -> GracefulStop | None:
    """The trainer's :class:`GracefulStop` (None when it has none, e.g. a trainer built in Python)."""
    return next((c for c in trainer.callbacks if isinstance(c, GracefulStop)), None)


def stop_received(trainer: Trainer) -> int | None:
    """The signal this process received during the current command (None: none)."""
    callback = graceful_stop(trainer)
    return callback.received if callback is not None else None


def agree_on_stop(trainer: Trainer) -> int | None:
    """The signal any rank received, the same on every rank (see :meth:`GracefulStop.agree`);
    every rank must call it at the same point."""
    callback = graceful_stop(trainer)
    return callback.agree(trainer) if callback is not None else None
