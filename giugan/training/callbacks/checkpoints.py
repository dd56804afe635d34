"""Checkpoints counted in generator iterations, written atomically.

``GeneratorIterationCheckpoint`` is a ``ModelCheckpoint`` (so ``--ckpt_path last`` finds its
``last.ckpt``) whose periodic trigger counts generator iterations instead of
``trainer.global_step``. ``AtomicCheckpointIO`` writes to a temporary file in the same folder,
fsyncs it and renames it over the target, so a ``kill -9`` or a full disk during a save leaves the
previous checkpoint intact. ``BestCheckpoint`` keeps ``best.ckpt``, the checkpoint of the best
evaluation in the run's record, by the first enabled score of the metrics registry's ``BEST_BY``
(lowest FID by default).

Every checkpoint written at or after an evaluation holds it (``checkpoint["giugan"]["evaluation"]``):
at an iteration that is evaluated, ``GeneratorIterationCheckpoint`` holds its periodic save back
until ``GANModule`` says the evaluation is in the record (``after_evaluation``; ``best.ckpt`` is
told first). A kill during that evaluation therefore resumes from the previous checkpoint and redoes
the iterations and the evaluation; a signal stop writes ``last.ckpt`` without it, and the resume
runs it first.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any
from weakref import proxy

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from giugan.metrics.registry import monitored_scores


def _new_file_mode() -> int:
    """The mode ``open()`` would give a new file under the current umask (0o644 for umask 022)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to ``<dir>/.<name>.<random>.tmp``, fsync, then ``os.replace`` onto the path."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(handle, "wb") as stream:
                torch.save(checkpoint, stream)
                # mkstemp creates 0o600 files; give the checkpoint the usual permissions so that
                # collaborators (a group on a shared cluster) can read it as with torch.save.
                os.fchmod(stream.fileno(), _new_file_mode())
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(tmp, path)
        except BaseException as error:
            if os.path.exists(tmp):
                os.remove(tmp)
            if isinstance(error, OSError):
                # With the errno and the file name, OSError is the matching subclass
                # (PermissionError, ...), and the command line explains its cause.
                raise OSError(
                    error.errno,
                    f"Could not write checkpoint {path}: {error.strerror or error}. Nothing was "
                    f"written under that name, and the checkpoints already in {folder} are "
                    f"unchanged. Free space or fix the folder's permissions, or set "
                    f"--checkpoint.dirpath to another disk, then resume with --ckpt_path last.",
                    path,
                ) from error
            raise


class GeneratorIterationCheckpoint(ModelCheckpoint):
    """Save ``iter-<iteration>.ckpt`` (keeping all, ``save_top_k=-1``) and ``last.ckpt``.

    Args:
        every_n_generator_iterations: period, in generator iterations, of the numbered checkpoints
            and of ``last.ckpt``.
        dirpath: folder of the checkpoints (default ``<run dir>/checkpoints``).
        filename: name pattern of the numbered checkpoints (``{generator_iteration}`` is filled in).
        save_top_k: how many numbered checkpoints to keep (-1 = all of them).
        save_last: also keep ``last.ckpt``, the one ``--ckpt_path last`` resumes from.
        verbose: print a line at every save.
    """

    def __init__(
        self,
        every_n_generator_iterations: int = 1000,
        dirpath: str | None = None,
        filename: str = "iter-{generator_iteration:08d}",
        save_top_k: int = -1,
        save_last: bool = True,
        verbose: bool = False,
    ) -> None:
        if every_n_generator_iterations < 1:
            raise ValueError(
                f"GeneratorIterationCheckpoint: every_n_generator_iterations="
                f"{every_n_generator_iterations} must be >= 1."
            )
        super().__init__(
            dirpath=dirpath,
            filename=filename,
            save_top_k=save_top_k,
            save_last=save_last,
            verbose=verbose,
            auto_insert_metric_name=False,
            every_n_epochs=0,
            # A resumed run redoes the iterations after its last.ckpt and overwrites (atomically)
            # the numbered files a killed run had already written, instead of adding "-v1" copies.
            enable_version_counter=False,
        )
        self.every_n_generator_iterations = every_n_generator_iterations
        #: The generator iteration of the latest ``last.ckpt`` this callback wrote (None: none yet).
        self.last_saved_iteration: int | None = None
        #: An iteration whose periodic save waits for its evaluation (see ``after_evaluation``).
        self.held_iteration: int | None = None

    def _save_last_checkpoint(self, trainer: Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        if self.save_last:
            self.last_saved_iteration = int(getattr(trainer.lightning_module, "generator_iteration", 0))

    def _monitor_candidates(self, trainer: Trainer) -> dict[str, torch.Tensor]:
        candidates = super()._monitor_candidates(trainer)
        module = trainer.lightning_module
        candidates["generator_iteration"] = torch.tensor(getattr(module, "generator_iteration", 0))
        return candidates

    def _save_periodic(self, trainer: Trainer, numbered: bool = True) -> None:
        candidates = self._monitor_candidates(trainer)
        if numbered:
            self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        iteration = getattr(pl_module, "generator_iteration", 0)
        if iteration % self.every_n_generator_iterations != 0 or self._should_skip_saving_checkpoint(trainer):
            return
        evaluation_follows = getattr(pl_module, "evaluation_follows", None)
        if callable(evaluation_follows) and evaluation_follows(iteration) and not trainer.received_sigterm:
            # Written after this iteration's evaluation, so that it holds it (after_evaluation).
            # (With a stop pending the evaluation is skipped: written now, it runs on resume.)
            self.held_iteration = iteration
            return
        self._save_periodic(trainer)

    def after_evaluation(self, trainer: Trainer, pl_module: LightningModule, resumed: bool = False) -> None:
        """The evaluation of this iteration is in the module's record: write what waited for it.

        ``resumed``: the evaluation that a stop interrupted or skipped, run at the start of a
        resume; ``last.ckpt`` (and the numbered checkpoint of a periodic iteration, which the stop
        did not write) then hold it, so a further stop does not redo it.
        """
        iteration = int(getattr(pl_module, "generator_iteration", 0))
        held, self.held_iteration = self.held_iteration == iteration, None
        if trainer.fast_dev_run or trainer.state.fn != "fit" or trainer.sanity_checking:
            return
        if resumed:
            self._save_periodic(trainer, numbered=iteration % self.every_n_generator_iterations == 0)
        elif held and not self._should_skip_saving_checkpoint(trainer):
            self._save_periodic(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Keep last.ckpt current at every epoch end (also the end of training); a save still held
        # for an evaluation that did not come is written now, whole.
        numbered = self.held_iteration == getattr(pl_module, "generator_iteration", None)
        self.held_iteration = None
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_periodic(trainer, numbered=numbered)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        return


#: The score ``best.ckpt`` follows, first enabled one wins: (metrics switch, logged key, mode),
#: derived from the metrics registry.
MONITORED_SCORES: tuple[tuple[str, str, str], ...] = monitored_scores()


class BestCheckpoint(ModelCheckpoint):
    """``best.ckpt``: the checkpoint of the best evaluation in the run's record.

    A Lightning ``ModelCheckpoint`` (``save_top_k=1``, so ``--ckpt_path best`` finds it) that
    monitors the first enabled score of :data:`MONITORED_SCORES` in its direction (by default
    the first of them, FID, lowest); ``GANModule`` adds it by itself when metrics are configured
    (:meth:`for_metrics`). With a ``GANModule`` the decision is
    the module's record (``Evaluator``: the best over every evaluation of the run, restored from the
    checkpoint on resume), not a comparison of its own: after each evaluation the module calls
    :meth:`after_evaluation`, which writes ``best.ckpt`` when that evaluation is the new best. Its
    own state (``best_model_score``, ``best_model_path``) follows the record, also after a resume.
    """

    #: Told first after an evaluation (before the periodic checkpoints of that iteration).
    saves_best = True

    @classmethod
    def for_metrics(cls, enabled: dict[str, bool] | None) -> BestCheckpoint | None:
        """The callback for a metric suite's ``enabled`` switches (``None``: a suite that does
        not say, monitored by the first score); ``None`` if no enabled score is monitored."""
        for switch, monitor, mode in MONITORED_SCORES:
            if enabled is None or enabled.get(switch, False):
                return cls(monitor=monitor, mode=mode)
        return None

    def __init__(
        self,
        monitor: str = MONITORED_SCORES[0][1],
        mode: str = MONITORED_SCORES[0][2],
        dirpath: str | None = None,
    ) -> None:
        super().__init__(
            dirpath=dirpath,
            filename="best",
            monitor=monitor,
            mode=mode,
            save_top_k=1,
            save_last=False,
            auto_insert_metric_name=False,
            enable_version_counter=False,
            save_on_train_epoch_end=False,
        )

    @staticmethod
    def _record(pl_module: LightningModule) -> Any:
        return getattr(pl_module, "evaluator", None)

    def _score(self, best: dict[str, float]) -> float | None:
        name = self.monitor.removeprefix("eval/") if self.monitor else None
        if name in best:
            return float(best[name])
        from giugan.training.evaluation import Evaluator

        criterion = Evaluator.criterion(best)
        return float(best[criterion]) if criterion is not None else None

    def _follow_record(self, best: dict[str, float]) -> str | None:
        """Set this callback's state from the record's best; the path of ``best.ckpt`` (None: no best)."""
        score = self._score(best) if best else None
        if score is None:
            self.best_k_models, self.kth_best_model_path, self.best_model_path = {}, "", ""
            self.best_model_score = self.current_score = None
            return None
        path = self.format_checkpoint_name({})
        value = torch.tensor(score)
        self.best_k_models = {path: value}
        self.kth_best_model_path = self.best_model_path = path
        self.kth_value = self.best_model_score = self.current_score = value
        return path

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # After a restore: the record in the checkpoint is the truth (its callback state may
        # predate the last evaluation in checkpoints of older versions).
        record = self._record(pl_module)
        if record is not None:
            self._follow_record(record.best)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._record(pl_module) is None:  # a module without giugan's record: Lightning's way
            super().on_validation_end(trainer, pl_module)

    def after_evaluation(self, trainer: Trainer, pl_module: LightningModule, resumed: bool = False) -> None:
        """Write ``best.ckpt`` if the evaluation just recorded is the best of the run's record."""
        record = self._record(pl_module)
        if record is None or trainer.fast_dev_run or trainer.state.fn != "fit" or trainer.sanity_checking:
            return
        iteration = int(getattr(pl_module, "generator_iteration", 0))
        if int(record.best.get("generator_iteration", -1)) != iteration:
            return
        path = self._follow_record(record.best)
        if path is None:
            return
        trainer.save_checkpoint(path, self.save_weights_only)
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))
