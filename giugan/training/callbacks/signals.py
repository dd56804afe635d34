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

Lightning's own SIGTERM handler is replaced once training starts: it broadcasts from inside the
handler, which deadlocks when the signal lands while the ranks are in another collective.

SLURM preemption: with Lightning's SLURM environment (``auto_requeue``, the default under
``srun``), the requeue signal (SIGUSR1, ``#SBATCH --signal=SIGUSR1@90``) makes Lightning save
``hpc_ckpt_<n>.ckpt`` in the run's root and requeue the job; the requeued job restores it by
itself. That path is Lightning's and untouched here.
"""

from __future__ import annotations

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
    """A run stopped by a signal after writing its checkpoint (the CLI exits 128 + signal)."""

    def __init__(self, signum: int, iteration: int, checkpoint: str | None) -> None:
        self.signum, self.iteration, self.checkpoint = signum, iteration, checkpoint
        name = signal.Signals(signum).name
        where = f"{checkpoint} was written" if checkpoint else "no checkpoint could be written"
        super().__init__(
            f"Stopped by {name} after generator iteration {iteration}; {where}. Resume with the "
            f"same command and --ckpt_path last (the run's config.yaml is in its directory)."
        )


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

    # ----------------------------------------------------------------- handlers
    def _handle(self, signum: int, frame: Any) -> None:
        if self.done and not self.keep_handlers_after_stop:
            self.restore_handlers()
            signal.raise_signal(signum)
            return
        if self.received is not None:
            message = "still writing the checkpoint" if self.saving else "stopping after this iteration"
            print(f"\ngiugan: {signal.Signals(signum).name} again ignored: {message}.", file=sys.stderr)
            return
        self.received = signum
        print(
            f"\ngiugan: {signal.Signals(signum).name} received: finishing this generator iteration, "
            f"then writing last.ckpt and stopping.",
            file=sys.stderr,
        )
        if self._trainer.world_size == 1:
            compat.request_stop_after_batch(self._trainer)  # one process: no agreement needed

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit" or threading.current_thread() is not threading.main_thread():
            return
        self._trainer = trainer
        self.received = None
        for signum in EXIT_STATUS:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Lightning installed its SIGTERM handler after `setup` (chaining ours behind it); its
        # in-handler broadcast must not run under DDP, so ours is the only one from here on.
        if self._previous and threading.current_thread() is threading.main_thread():
            for signum in EXIT_STATUS:
                signal.signal(signum, self._handle)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        """Every rank, after every generator iteration: stop together if any rank got a signal."""
        if trainer.world_size == 1 or not torch.distributed.is_initialized():
            return
        received = torch.tensor([self.received or 0], device=trainer.strategy.root_device)
        torch.distributed.all_reduce(received, op=torch.distributed.ReduceOp.MAX)
        agreed = int(received.item())
        if agreed:
            self.received = self.received or agreed
            compat.request_stop_after_batch(trainer)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not (self.done and self.keep_handlers_after_stop):
            self.restore_handlers()

    def restore_handlers(self) -> None:
        """Put back the handlers that were in place before the fit."""
        for signum, previous in self._previous.items():
            if previous is not None:
                signal.signal(signum, previous)
        self._previous = {}

    # ----------------------------------------------------------------- the stop
    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if self.received is None or not compat.is_stop_after_batch(exception):
            return
        callback = trainer.checkpoint_callback
        folder = getattr(callback, "dirpath", None)
        path = os.path.join(folder, "last.ckpt") if folder else None
        iteration = int(getattr(pl_module, "generator_iteration", 0))
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
        self.stopped = RunStopped(self.received, iteration, path)
        self.stopped.callback = self
        LAST_STOP[:] = [self.stopped]
        self.done = True
