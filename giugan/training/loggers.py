"""giugan's loggers: a CSV log that survives resumes and a W&B logger on the generator-iteration axis.

CSV: a CSV logger that appends to the run's ``metrics.csv`` instead of deleting it.

Lightning's ``CSVLogger`` removes an existing ``metrics.csv`` when it starts, so resuming a run
with ``--ckpt_path last`` into the same run directory would erase the curves of everything before
the resume. This subclass keeps the file (and its header), and :meth:`CSVLogger.truncate_after`
drops rows a killed attempt wrote after the checkpoint it is resumed from, so the history has each
generator iteration once.
"""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Mapping
from typing import Any, Literal

from lightning.pytorch.loggers import CSVLogger as _LightningCSVLogger
from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from giugan.training.run_directory import undo_on_refusal


class _AppendingExperimentWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
                self.metrics_keys = list(next(csv.reader(handle), []))

    def truncate_after(self, step: int) -> int:
        """Remove rows whose ``step`` exceeds ``step``; return how many were removed."""
        self.save()
        if not self._fs.isfile(self.metrics_file_path):
            return 0
        with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
            reader = csv.DictReader(handle)
            fieldnames = list(reader.fieldnames or [])
            rows = list(reader)
        kept = [r for r in rows if not r.get("step") or float(r["step"]) <= step]
        if len(kept) == len(rows):
            return 0
        tmp = self.metrics_file_path + ".tmp"
        with self._fs.open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(kept)
        self._fs.mv(tmp, self.metrics_file_path)  # a rename: the old file stays whole until then
        return len(rows) - len(kept)


class CSVLogger(_LightningCSVLogger):
    """Lightning's ``CSVLogger`` that appends on resume (same arguments)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is not None:
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = _AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment

    @rank_zero_only
    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` by an attempt that was killed (called on resume)."""
        self.experiment.truncate_after(step)

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        """Lightning's; a start refused after it puts ``hparams.yaml`` back as it was (Lightning
        writes the file when the logger finalises, also after a refusal)."""
        path = os.path.join(self.log_dir, "hparams.yaml")
        before = _read_bytes(path)
        super().log_hyperparams(params)
        undo_on_refusal(lambda: _put_back(path, before))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log a row; every row carries ``generator_iteration`` (from ``step`` when the row lacks it).

        Evaluation values reach the loggers through ``self.log`` with the generator iteration as
        Lightning's ``step``; training rows name it themselves. Either way the column is filled,
        so a notebook can plot every series against the same column.
        """
        if step is not None and STEP_METRIC not in metrics:
            metrics = {**metrics, STEP_METRIC: int(step)}
        super().log_metrics(metrics, step)



class RunFolderOnly(_LightningCSVLogger):
    """A logger that writes nothing and only names the run's folder (``trainer.log_dir``).

    ``giugan test|validate|predict`` use it in place of the training run's loggers, so their
    results go to the run's folder (``eval.json``, ``predictions/``, checkpoints resolved as in
    the run) but never into its ``metrics.csv`` or ``hparams.yaml``. A CSV logger by type, so
    Lightning reads the folder from :attr:`log_dir` as for the run's own CSV log.
    """

    def __init__(self, folder: str) -> None:
        folder = os.path.normpath(folder)
        super().__init__(save_dir=os.path.dirname(folder), name=os.path.basename(folder), version="")

    @property
    def experiment(self) -> None:
        """None: Lightning's CSV writer would delete the run's ``metrics.csv`` when created."""
        return None

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        return

    def log_hyperparams(self, params: Any = None, *args: Any, **kwargs: Any) -> None:
        return

    def save(self) -> None:
        return

    def finalize(self, status: str) -> None:
        return


#: The W&B step metric of every series giugan logs (losses, evaluation scores, sample grids).
STEP_METRIC = "generator_iteration"
#: Name of the file in the run directory that keeps the W&B run id, so a resume continues the run.
RUN_ID_FILE = "wandb_id"


def wandb_api_key_configured() -> bool:
    """Whether W&B credentials exist here (``WANDB_API_KEY`` or a ``~/.netrc`` entry for the host)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    import netrc
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolved_wandb_mode(offline: bool | None) -> str:
    """``WANDB_MODE`` when set; otherwise ``offline`` if asked or without credentials, else online."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode
    if offline is None:
        return "online" if wandb_api_key_configured() else "offline"
    return "offline" if offline else "online"


def _read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _put_back(path: str, content: bytes | None) -> None:
    """Restore ``path`` to ``content`` (None: the file did not exist)."""
    if content is None:
        if os.path.isfile(path):
            os.remove(path)
    elif _read_bytes(path) != content:
        with open(path, "wb") as handle:
            handle.write(content)


class WandbLogger(_LightningWandbLogger):
    """Lightning's ``WandbLogger`` with the generator iteration as the step axis of every series.

    Compared with Lightning's logger (whose x-axis is ``trainer/global_step``, which counts every
    optimiser step under manual optimisation):

    * every ``log_metrics`` row carries ``generator_iteration`` (the step giugan logs with), which
      is W&B's step metric for all keys; each score that may decide the best is summarised by its
      best value (``eval/fid`` its minimum, ``eval/is_mean`` its maximum, ...: the metrics
      registry's ``summaries``);
    * mode: ``WANDB_MODE`` when set (``disabled`` included); otherwise online when credentials are
      configured and offline when not (``offline`` forces one or the other);
    * checkpoints become W&B model artifacts (aliases ``latest`` and ``best``) when online, unless
      ``log_model`` says otherwise (``log_model: true`` offline keeps them for ``wandb sync``);
    * the run id is kept in ``<save_dir>/wandb_id``, so a resumed fit continues the same W&B run
      (``continue_run`` is cleared by ``giugan fit`` for a fresh start);
    * ``group``, ``tags`` and ``job_type`` go to ``wandb.init`` (``giugan`` fills them from the
      config when left unset: see ``giugan.cli.lightning``).

    Args:
        name: the run's display name (giugan: the run name).
        save_dir: the run directory; wandb writes ``<save_dir>/wandb/`` and the id file here.
        project: the W&B project.
        offline: None = decide from ``WANDB_MODE`` and the credentials (see above).
        log_model: None = ``True`` when the run is online, else ``False``. ``True`` on an offline
            run keeps the checkpoint artifacts in the offline run; ``wandb sync`` uploads them.
        group: W&B run group (giugan: the results table of the row).
        tags: W&B run tags (giugan: dataset, group, preset, row).
        job_type: W&B job type (giugan: the command, e.g. ``fit`` or ``test``).
        notes: W&B run notes.
        prefix: prefix of every logged key (as Lightning's).
        checkpoint_name: name of the model artifact (as Lightning's).
    """

    def __init__(
        self,
        name: str | None = None,
        save_dir: str = ".",
        project: str | None = None,
        offline: bool | None = None,
        log_model: Literal["all"] | bool | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        job_type: str | None = None,
        notes: str | None = None,
        prefix: str = "",
        checkpoint_name: str | None = None,
    ) -> None:
        mode = resolved_wandb_mode(offline)
        if log_model is None:
            log_model = mode == "online"
        super().__init__(
            name=name, save_dir=save_dir, project=project, offline=False,
            log_model=log_model if mode != "disabled" else False, prefix=prefix,
            checkpoint_name=checkpoint_name, mode=mode,
        )
        # Lightning passes anonymous=None, which wandb >= 0.19 warns about on every start.
        self._wandb_init.pop("anonymous", None)
        # Every attempt's run record says `resume` (offline too): `wandb sync` then replays the
        # offline folders of one id in start-time order and appends each resumed attempt after the
        # run's last step instead of starting the run again (Lightning's default; kept on purpose).
        self._wandb_init["resume"] = "allow"
        self.describe(group=group, tags=tags, job_type=job_type, notes=notes)
        self.continue_run = True
        #: Where the run id is kept (None: not kept, e.g. for an evaluation job).
        self.run_id_file: str | None = os.path.join(str(save_dir or "."), RUN_ID_FILE)
        #: Files saved as run files when the run ends, if they exist then (e.g. ``eval.json``).
        self.files_at_end: list[str] = []

    def evaluation_job(self, job_type: str) -> WandbLogger:
        """A W&B run for ``giugan test|validate`` in this run's group: its own step axis and files."""
        job = WandbLogger(
            name=f"{self.run_name}-{job_type}", save_dir=str(self._save_dir or "."), project=self._project,
            log_model=False, group=self._wandb_init.get("group"), tags=self._wandb_init.get("tags"),
            job_type=job_type,
        )
        job.run_id_file = None
        return job

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """The module's hyperparameters, unless the run's config was given whole (``giugan``: the
        ``model`` section is in it); Lightning's bookkeeping keys (``_instantiator``, ...) never."""
        if self._wandb_init.get("config"):
            return
        if isinstance(params, Mapping):
            params = {k: v for k, v in params.items() if not str(k).startswith("_")}
        super().log_hyperparams(params, *args, **kwargs)

    def describe(self, **fields: Any) -> None:
        """Set W&B run fields (``group``, ``tags``, ``job_type``, ``config``, ...) not set already."""
        for key, value in fields.items():
            if value is not None and self._wandb_init.get(key) is None:
                self._wandb_init[key] = list(value) if key == "tags" else value

    def _run_id(self) -> str:
        """The saved id when continuing a run, else a new one (written to :attr:`run_id_file`)."""
        if self._wandb_init.get("id"):
            return str(self._wandb_init["id"])
        path = self.run_id_file
        if path and self.continue_run and os.path.isfile(path):
            with open(path) as handle:
                saved = handle.read().strip()
            if saved:
                return saved
        import secrets
        import string

        run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
        if path is None:
            return run_id
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as handle:
            handle.write(run_id + "\n")
        return run_id

    @property
    def run_name(self) -> str | None:
        """The W&B run's display name (Lightning's ``name`` property is the project)."""
        return self._wandb_init.get("name")

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is not None:
            return self._experiment
        if getattr(self, "_attach_id", None) is not None:  # a spawned rank re-attaching
            return super().experiment
        import wandb

        save_dir = str(self._save_dir or ".")
        if self._wandb_init.get("mode") != "disabled":
            self._take_back_on_refusal(save_dir)
            self._wandb_init["id"] = self._id = self._run_id()
        os.makedirs(save_dir, exist_ok=True)
        # Not Lightning's experiment: it defines trainer/global_step as every series' x-axis.
        self._experiment = wandb.run if wandb.run is not None else wandb.init(**self._wandb_init)
        define = getattr(self._experiment, "define_metric", None)
        if callable(define):
            define(STEP_METRIC)
            define("*", step_metric=STEP_METRIC, step_sync=True)
            from giugan.metrics.registry import summaries  # the metrics only once W&B starts

            for key, summary in summaries().items():
                define(key, step_metric=STEP_METRIC, summary=summary)
        return self._experiment

    def _take_back_on_refusal(self, save_dir: str) -> None:
        """If the start is refused after the W&B run is created (e.g. an empty image folder), remove
        what creating it wrote: the offline run folder, ``wandb/`` and the id file when they are
        new, the ``wandb/`` links as they were. Nothing is left for ``wandb sync`` to upload."""
        from giugan.training.run_directory import undo_on_refusal

        wandb_dir = os.path.join(save_dir, "wandb")
        id_file = self.run_id_file
        had_id_file = bool(id_file) and os.path.exists(str(id_file))
        had_save_dir, had_wandb_dir = os.path.isdir(save_dir), os.path.isdir(wandb_dir)
        before: dict[str, str | None] = {}
        if had_wandb_dir:
            for entry in os.scandir(wandb_dir):
                before[entry.name] = os.readlink(entry.path) if entry.is_symlink() else None

        def take_back() -> None:
            import shutil

            experiment, self._experiment = self._experiment, None
            if experiment is not None and hasattr(experiment, "finish"):
                experiment.finish(exit_code=1)
            if id_file and not had_id_file and os.path.exists(id_file):
                os.remove(id_file)
            if not had_wandb_dir:
                shutil.rmtree(wandb_dir, ignore_errors=True)
            elif os.path.isdir(wandb_dir):
                for entry in os.scandir(wandb_dir):
                    if entry.name not in before:
                        if entry.is_dir(follow_symlinks=False):
                            shutil.rmtree(entry.path, ignore_errors=True)
                        else:
                            os.remove(entry.path)
                    elif before[entry.name] is not None and os.readlink(entry.path) != before[entry.name]:
                        os.remove(entry.path)
                        os.symlink(str(before[entry.name]), entry.path)
            if not had_save_dir:
                with contextlib.suppress(OSError):
                    os.rmdir(save_dir)  # only when nothing else is in it

        undo_on_refusal(take_back)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log ``metrics`` at generator iteration ``step`` (the step giugan always passes)."""
        row = dict(metrics)
        if self._prefix:
            row = {f"{self._prefix}{self.LOGGER_JOIN_CHAR}{k}": v for k, v in row.items()}
        if step is not None:
            row[STEP_METRIC] = int(step)
        self.experiment.log(row)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Upload the checkpoints (online) and :attr:`files_at_end`, then finish the W&B run."""
        super().finalize(status)
        if self._experiment is not None and hasattr(self._experiment, "finish"):
            for path in self.files_at_end:
                self.save_run_file(path)
            self._experiment.finish(exit_code=0 if status == "success" else 1)
            self._experiment = None

    @rank_zero_only
    def save_run_file(self, path: str) -> None:
        """Copy ``path`` (e.g. the run's ``config.yaml``) into the W&B run files as ``giugan/<name>``.

        The ``giugan/`` folder keeps the names apart from wandb's own (its ``config.yaml``).
        """
        import shutil

        experiment = self.experiment
        run_dir = getattr(experiment, "dir", None)
        if not run_dir or not os.path.isfile(path):
            return
        target = os.path.join(run_dir, "giugan", os.path.basename(path))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(path, target)
        experiment.save(target, base_path=run_dir, policy="now")
