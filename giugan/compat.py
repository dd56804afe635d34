"""Every use of a private Lightning, torchmetrics or torch-fidelity name, in one place.

The versions are pinned in ``pyproject.toml``; each seam below has a test in
``tests/test_compat.py`` (torchmetrics, torch-fidelity) or ``tests/training/test_compat_lightning.py``
(Lightning) that fails loudly when an upgrade moves or changes it, so a version bump
is reviewed here and nowhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the library is imported by its users; this module only names its types
    import torch
    from torchmetrics import Metric

# ---------------------------------------------------------------------------------- Lightning


def built_by_lightning_cli() -> bool:
    """True while LightningCLI instantiates a module from its parsed config.

    Seam: ``lightning.pytorch.core.mixins.hparams_mixin._given_hyperparameters`` (a ContextVar
    LightningCLI sets around model instantiation). Without it, the safe answer is False (the
    networks are then not saved as hyperparameters).
    """
    try:
        from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
    except ImportError:
        return False
    return _given_hyperparameters.get() is not None


def use_module_for_evaluation_data(trainer: Any, module: Any) -> None:
    """Make the validation and test loops take their batches from ``module``, not the data module.

    Lightning asks the data module for ``val_dataloader``/``test_dataloader`` whenever one is
    attached; giugan's evaluation batches are sample counts that the module defines, while the data
    module's ``val_dataloader`` is the real reference split (read once, for the cached
    statistics). Seam: the loops' ``_data_source.instance`` (``_DataLoaderSource``).
    """
    loops = (trainer.fit_loop.epoch_loop.val_loop, trainer.validate_loop, trainer.test_loop)
    for loop in loops:
        loop._data_source.instance = module


#: Private Lightning members that giugan's subclasses override or read, as ``(module path, class,
#: member)``. ``tests/training/test_compat_lightning.py`` checks that each still exists on the
#: pinned version; an upgrade that renames one fails there, not in the middle of a run.
LIGHTNING_PRIVATE_MEMBERS: tuple[tuple[str, str, str], ...] = (
    # GeneratorIterationCheckpoint: saves on its own generator-iteration schedule.
    ("lightning.pytorch.callbacks", "ModelCheckpoint", "_monitor_candidates"),
    ("lightning.pytorch.callbacks", "ModelCheckpoint", "_save_topk_checkpoint"),
    ("lightning.pytorch.callbacks", "ModelCheckpoint", "_save_last_checkpoint"),
    ("lightning.pytorch.callbacks", "ModelCheckpoint", "_should_skip_saving_checkpoint"),
    # GiuganCLI: keeps the command line authoritative over a checkpoint's hyperparameters and
    # hands `predict` its latent batches.
    ("lightning.pytorch.cli", "LightningCLI", "_parse_ckpt_path"),
    ("lightning.pytorch.cli", "LightningCLI", "_prepare_subcommand_kwargs"),
    # GracefulStop: Ctrl-C takes Lightning's SIGTERM path (stop after the batch).
    ("lightning.pytorch", "Trainer", "_signal_connector"),
    ("lightning.pytorch.trainer.connectors.signal_connector", "_SignalConnector", "received_sigterm"),
    ("lightning.pytorch.trainer.connectors.signal_connector", "_SignalConnector", "_sigterm_notifier_fn"),
    # giugan.training.distributed: every DDP spelling gets find_unused_parameters and a timeout.
    ("lightning.pytorch.strategies", "DDPStrategy", "_ddp_kwargs"),
    ("lightning.pytorch.strategies", "DDPStrategy", "_timeout"),
    # GracefulStop and LostRankWatch: Lightning's process observer neither kills a launching
    # process that stops with its ranks nor ends it without saying which rank was lost.
    ("lightning.fabric.strategies.launchers.subprocess_script", "_ChildProcessObserver", "_run"),
    ("lightning.fabric.strategies.launchers.subprocess_script", "_ChildProcessObserver", "_child_processes"),
    # giugan.training.loggers.CSVLogger: appends on resume instead of deleting metrics.csv.
    ("lightning.pytorch.loggers.csv_logs", "ExperimentWriter", "_check_log_dir_exists"),
    ("lightning.pytorch.loggers.csv_logs", "ExperimentWriter", "_fs"),
    ("lightning.pytorch.loggers", "CSVLogger", "_experiment"),
    ("lightning.pytorch.loggers", "CSVLogger", "_fs"),
    # giugan.training.loggers.WandbLogger: one W&B run per run folder, resumed by id, created
    # only once the start is accepted (the arguments of ``wandb.init`` it keeps, its run).
    ("lightning.pytorch.loggers", "WandbLogger", "_wandb_init"),
    ("lightning.pytorch.loggers", "WandbLogger", "_experiment"),
    ("lightning.pytorch.loggers", "WandbLogger", "_save_dir"),
    ("lightning.pytorch.loggers", "WandbLogger", "_project"),
    ("lightning.pytorch.loggers", "WandbLogger", "_prefix"),
    ("lightning.pytorch.loggers", "WandbLogger", "_id"),
    ("lightning.pytorch.loggers", "WandbLogger", "_attach_id"),
    # GiuganCLI and GeneratorDiscriminatorSummary: the summary depth and progress bar the user
    # configured, carried over to giugan's own versions of those callbacks.
    ("lightning.pytorch.callbacks", "ModelSummary", "_max_depth"),
    ("lightning.pytorch.callbacks", "TQDMProgressBar", "_leave"),
)

#: Private members of the other libraries, as ``(module path, class, member)`` (checked like
#: :data:`LIGHTNING_PRIVATE_MEMBERS` by :func:`missing_private_members`).
OTHER_PRIVATE_MEMBERS: tuple[tuple[str, str, str], ...] = (
    # giugan.cli.presentation: "known subclasses" lists shortened in `--help`.
    ("jsonargparse", "DefaultHelpFormatter", "_get_help_string"),
    # giugan.cli.suggestions: "did you mean" reads the parser's options (and its subcommands').
    ("jsonargparse", "ArgumentParser", "_actions"),
    # is_synced / forget_computed below.
    ("torchmetrics", "Metric", "_is_synced"),
    ("torchmetrics", "Metric", "_computed"),
)

#: Private keys Lightning writes into a module's saved hyperparameters (``hparams.yaml`` and
#: checkpoints) that giugan reads or drops (giugan.cli.runs: the config saved in a checkpoint),
#: as ``(module path whose source writes the key, key)``.
LIGHTNING_PRIVATE_HPARAM_KEYS: tuple[tuple[str, str], ...] = (
    ("lightning.pytorch.cli", "_instantiator"),
    ("lightning.pytorch.cli", "_class_path"),
)


def request_stop_after_batch(trainer: Any) -> None:
    """Make Lightning stop after the current training batch, as it does on SIGTERM.

    Seam: ``Trainer._signal_connector.received_sigterm``, which the fit loop checks after every
    batch and turns into a ``SIGTERMException`` (shared by the DDP ranks).
    """
    trainer._signal_connector.received_sigterm = True


def configure_ddp(strategy: Any, find_unused_parameters: bool, timeout: Any) -> None:
    """Set a ``DDPStrategy``'s ``DistributedDataParallel`` keyword and process-group timeout.

    Seams: ``DDPStrategy._ddp_kwargs`` (passed to ``DistributedDataParallel``) and
    ``DDPStrategy._timeout`` (passed to ``init_process_group``); both are read when the strategy
    sets up, so this must run before ``trainer.fit``.
    """
    strategy._ddp_kwargs["find_unused_parameters"] = find_unused_parameters
    strategy._timeout = timeout


def ddp_timeout(strategy: Any) -> Any:
    """The process-group timeout a ``DDPStrategy`` will use (``DDPStrategy._timeout``)."""
    return strategy._timeout


def _child_process_observers() -> list[Any]:
    import threading

    return [t for t in threading.enumerate() if t.name == "child-process-observer" and hasattr(t, "_run")]


def watch_child_processes(check: Any) -> list[Any]:
    """Replace the check of Lightning's child-process observer in this process; return the
    processes it watches (empty where no observer runs).

    ``check(processes)`` receives the ``subprocess.Popen`` of the ranks Lightning's launcher started
    (local ranks 1, 2, ...) every few seconds and returns True once there is nothing left to watch.
    Seams: the observer thread (``_ChildProcessObserver``), its ``_child_processes`` and ``_run``.
    """
    watched: list[Any] = []
    for observer in _child_process_observers():
        processes = observer._child_processes
        observer._run = lambda processes=processes: check(processes)
        watched.extend(processes)
    return watched


def stop_watching_child_processes() -> None:
    """Stop Lightning's child-process observer in this process (a no-op where none runs).

    Lightning's own launcher (``giugan fit --trainer.devices N``) starts a thread in the launching
    process that SIGKILLs it as soon as a rank it started exits with a non-zero status. After a stop
    that all ranks agreed on (each exits 143 or 130), that would kill the launching process before it
    reports its own exit status. Seam: the thread named ``child-process-observer``
    (``_ChildProcessObserver``), whose ``_run`` is made to report "finished".
    """
    for observer in _child_process_observers():
        observer._run = lambda: True


def forget_training_data_position(checkpoint: dict[str, Any], datamodule: Any) -> None:
    """Drop the training loader's saved position from a checkpoint that is being loaded.

    Seams: Lightning keeps the loaders' states under
    ``checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"]`` and the data module's
    ``state_dict()`` under its class's ``__qualname__``, and restores both after
    ``LightningModule.on_load_checkpoint``. A resume at another world size has another sampler
    (Lightning's ``DistributedSampler`` replaces giugan's resumable one under DDP), which cannot
    take that position; without it the loader starts a new pass over the data.
    """
    loops = checkpoint.get("loops") or {}
    state = (loops.get("fit_loop") or {}).get("state_dict") or {}
    state.pop("combined_loader", None)
    if datamodule is not None:
        checkpoint.pop(type(datamodule).__qualname__, None)


def silence_lightning_sigterm_notifier(trainer: Any) -> None:
    """Make Lightning's SIGTERM notifier a no-op for ``trainer`` (giugan's handler decides).

    Seam: ``_SignalConnector._sigterm_notifier_fn``, looked up on the instance when Lightning
    registers its handlers (after the callbacks' ``setup``). The notifier forwards the signal to
    the ranks its launcher started and broadcasts from inside the signal handler; under DDP a
    signal landing during another collective (the start-up barrier) then deadlocks.
    """
    connector = getattr(trainer, "_signal_connector", None)
    if connector is not None:
        connector._sigterm_notifier_fn = lambda signum, frame: None


def is_stop_after_batch(exception: BaseException) -> bool:
    """Whether ``exception`` is the one Lightning raises for a requested stop (``SIGTERMException``)."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    return isinstance(exception, SIGTERMException)


def compile_errors() -> tuple[type[BaseException], ...]:
    """The exceptions ``torch.compile`` raises when a graph cannot be compiled: torch's private
    ``torch._dynamo.exc.TorchDynamoException`` family and ``torch._inductor.exc.InductorError``
    (a failed C++ build or a broken kernel cache)."""
    import torch._dynamo.exc as dynamo_errors

    errors: list[type[BaseException]] = [dynamo_errors.TorchDynamoException]
    try:
        from torch._inductor.exc import InductorError
    except ImportError:
        InductorError = None
    if isinstance(InductorError, type):
        errors.append(InductorError)
    return tuple(errors)


def missing_lightning_private_members() -> list[str]:
    """The entries of :data:`LIGHTNING_PRIVATE_MEMBERS` the installed Lightning lacks."""
    return _missing_members(LIGHTNING_PRIVATE_MEMBERS)


def missing_private_members() -> list[str]:
    """Every entry of this module's tables that the installed libraries lack."""
    import importlib
    import inspect

    missing = _missing_members(LIGHTNING_PRIVATE_MEMBERS + OTHER_PRIVATE_MEMBERS)
    for module_name, key in LIGHTNING_PRIVATE_HPARAM_KEYS:
        if f'"{key}"' not in inspect.getsource(importlib.import_module(module_name)):
            missing.append(f"{module_name}: hyperparameter key {key}")
    return missing


def _missing_members(table: tuple[tuple[str, str, str], ...]) -> list[str]:
    import importlib

    missing = []
    for module_name, class_name, member in table:
        cls = getattr(importlib.import_module(module_name), class_name)
        if not hasattr(cls, member) and member not in _instance_attributes(cls):
            missing.append(f"{module_name}.{class_name}.{member}")
    return missing


def _instance_attributes(cls: type) -> set[str]:
    """Names assigned as ``self.<name>`` in the ``__init__`` of ``cls`` or a base class, and the
    private names its source reads or writes as strings (e.g. in ``__getstate__``)."""
    import inspect
    import re

    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        try:
            source = inspect.getsource(init) if init is not None else ""
        except (OSError, TypeError):
            continue
        names.update(re.findall(r"self\.(\w+)\s*[:=]", source))
        try:
            names.update(re.findall(r"[\"'](_\w+)[\"']", inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
    return names


# -------------------------------------------------------------------------------- torchmetrics


def is_synced(metric: Metric) -> bool:
    """Whether ``metric``'s states are currently the gathered (synchronised) ones.

    torchmetrics sets ``Metric._is_synced`` in ``sync()`` and clears it in ``unsync()``;
    ``unsync()`` raises when the states are not synced, so a ``finally`` block must ask first.
    """
    return bool(metric._is_synced)


def forget_computed(metric: Metric) -> None:
    """Drop the result ``metric.compute()`` cached, after its states were replaced by hand.

    torchmetrics caches the value of the wrapped ``compute()`` in ``Metric._computed`` and
    returns it until an ``update``/``reset`` clears it; assigning a state does not.
    """
    metric._computed = None


def compute_from_states(metric: Metric) -> Any:
    """Run the metric class's own ``compute`` on the states as they are now.

    torchmetrics replaces ``metric.compute`` on each instance by a wrapper that synchronises
    the states across processes, warns before any ``update`` and caches the result. The caller
    has synchronised already (see :func:`giugan.metrics.distributed.synchronised`), so this calls
    the unwrapped method of the class instead: no second sync, no cache, no warning.
    """
    return type(metric).compute(metric)


def set_fid_result_dtype(metric: Metric, dtype: torch.dtype) -> None:
    """Make ``FrechetInceptionDistance.compute`` return its float64 result in ``dtype``.

    torchmetrics computes FID in float64 and casts it to ``orig_dtype``, the dtype of the last
    features seen by ``update`` (float32 here); setting it keeps the float64 value.
    """
    metric.orig_dtype = dtype


# ------------------------------------------------------------------------------ torch-fidelity
# No private name is used: the Inception extractor is torch-fidelity's public
# ``torch_fidelity.feature_extractor_inceptionv3.FeatureExtractorInceptionV3`` (features
# "2048" and "logits_unbiased"); tests/test_compat.py pins the parts of it that the protocol
# relies on (feature names, the TF-1.x resize, float32 by default).


__all__ = ["compute_from_states", "forget_computed", "is_synced", "set_fid_result_dtype"]
