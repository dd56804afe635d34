"""SIGTERM and SIGINT end a run at a generator-iteration boundary with a checkpoint and exit 143/130.

Lightning already turns SIGTERM into a ``SIGTERMException`` raised after the current training
batch (one batch = one generator iteration), shared by all DDP ranks. :class:`GracefulStop`
routes SIGINT (Ctrl-C) through the same path instead of Python's immediate ``KeyboardInterrupt``,
remembers which signal came, and writes ``last.ckpt`` (atomically, see ``AtomicCheckpointIO``)
when the exception arrives. Further signals while that checkpoint is written are ignored with a
message, so a second Ctrl-C can neither abort the save nor leave a half file. The command line
then exits with ``128 + signal`` (143 for SIGTERM, 130 for SIGINT), so ``fit && test`` pipelines
and schedulers see that the run did not finish.

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
        previous = self._previous.get(signum)
        if signum == signal.SIGTERM and callable(previous):
            previous(signum, frame)  # Lightning's own: tells the DDP ranks, raises after the batch
        else:
            compat.request_stop_after_batch(self._trainer)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit" or threading.current_thread() is not threading.main_thread():
            return
        self._trainer = trainer
        self.received = None
        for signum in EXIT_STATUS:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)

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
        self.saving = True
        try:
            if path is not None:
                trainer.save_checkpoint(path, weights_only=False)
        finally:
            self.saving = False
        self.stopped = RunStopped(self.received, int(getattr(pl_module, "generator_iteration", 0)), path)
        self.stopped.callback = self
        LAST_STOP[:] = [self.stopped]
        self.done = True
