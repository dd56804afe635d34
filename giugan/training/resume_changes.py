"""Settings changed on resume: applied and said once, or refused in one paragraph.

A resume (``--ckpt_path``) restores the optimisers' state, param groups included, so without
this a new learning rate on the command line would be silently overridden by the checkpoint's
while ``config-resume-<iteration>.yaml`` recorded the new one. Here every setting that may differ
between the checkpoint and the resuming command is compared before anything is written:

* applied (and printed once, at the start of training): the optimisers' numeric settings
  (``lr``, ``betas``, ``eps``, ``weight_decay``; set in the restored param groups and the LR
  schedulers' ``base_lrs``), the LR schedule, the loss (``model.loss``: its class and its
  ``init_args``, e.g. ``gp_weight``/``gp_mode``), ``eval_every``, ``generator_iterations`` and
  ``trainer.precision``;
* refused: another optimiser class or flag (``amsgrad``...), ``n_critic``, ``batch_size``,
  ``model.seed``, and the metrics' settings (the scores of one run must stay comparable).

The README's Reliability section has the table and the reasons.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import torch
from lightning.pytorch import Callback

from giugan.legacy_settings import migrate_model_settings

#: Model settings applied on resume (the module is built with the new value; nothing restored
#: overrides it): key -> why it may change.
APPLIED_MODEL_SETTINGS = ("eval_every", "generator_iterations", "lr_schedule", "lr_decay_rate",
                          "lr_decay_every")
#: Settings refused on resume: key -> why.
REFUSED_SETTINGS = {
    "model.n_critic": "it changes what one generator iteration consumes, and the saved data "
                      "position counts the old batches",
    "data.init_args.batch_size": "it changes what one generator iteration consumes, and the saved "
                                 "data position counts the old batches",
    "model.seed": "one run draws its noise and data order from one seed",
}
#: Metrics settings that only say where files are (may change, e.g. on another machine).
METRICS_FILE_SETTINGS = ("cache_dir", "weights_path", "on_missing_weights", "weights_sha256")
#: Where a checkpoint records the settings that are not in its hyperparameters.
RECORD_KEY = "giugan_settings"


@dataclass
class Change:
    """One setting whose value differs between the checkpoint and the resuming command."""

    key: str
    before: Any
    after: Any
    why: str = ""

    def __str__(self) -> str:
        return f"{self.key} {_show(self.before)} -> {_show(self.after)}"


@dataclass
class ResumeChanges:
    """What a resume changes: ``applied`` (said once) and ``refused`` (the start is refused)."""

    applied: list[Change] = field(default_factory=list)
    refused: list[Change] = field(default_factory=list)
    #: Per optimiser index (0 = G, 1 = D): param-group settings to set after the restore.
    optimizer_settings: dict[int, dict[str, Any]] = field(default_factory=dict)


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def _numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (list, tuple)):
        return all(_numeric(v) for v in value)
    return isinstance(value, (int, float))


def _optimizer_changes(index: int, name: str, saved_group: dict[str, Any], new: Any, saved_class: Any,
                       changes: ResumeChanges) -> None:
    if not isinstance(new, dict) or "init_args" not in new:
        return  # built in Python: no config to compare
    key = f"model.{name}"
    if saved_class is not None and saved_class != new.get("class_path"):
        changes.refused.append(Change(f"{key}.class_path", saved_class, new.get("class_path"),
                                      "the restored optimiser state belongs to the old class"))
        return
    settings: dict[str, Any] = {}
    for setting, value in (new.get("init_args") or {}).items():
        restored = saved_group.get("initial_lr", saved_group.get("lr")) if setting == "lr" else saved_group.get(setting)
        if setting not in saved_group or _same(restored, value):
            continue
        change = Change(f"{key}.init_args.{setting}", restored, value)
        if _numeric(value) and _numeric(restored):
            settings[setting] = tuple(value) if isinstance(value, list) else value
            changes.applied.append(change)
        else:
            change.why = "the restored optimiser state was built without it"
            changes.refused.append(change)
    if settings:
        changes.optimizer_settings[index] = settings


def _loss_changes(before: Any, after: Any, changes: ResumeChanges) -> None:
    """The loss holds no state: another class or penalty applies from the resume on."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return  # built in Python: no config to compare
    if before.get("class_path") != after.get("class_path"):
        changes.applied.append(Change("model.loss.class_path", before.get("class_path"), after.get("class_path")))
    old, new = before.get("init_args") or {}, after.get("init_args") or {}
    for setting in sorted(set(old) & set(new)):
        if not _same(old[setting], new[setting]):
            changes.applied.append(Change(f"model.loss.init_args.{setting}", old[setting], new[setting]))


def _metrics_init_args(metrics: Any) -> dict[str, Any] | None:
    if isinstance(metrics, dict):
        return {k: v for k, v in (metrics.get("init_args") or {}).items() if k not in METRICS_FILE_SETTINGS}
    return None


def compare(checkpoint: dict[str, Any], model_hparams: dict[str, Any], data_hparams: dict[str, Any],
            precision: str) -> ResumeChanges:
    """The changes from ``checkpoint`` (a loaded ``.ckpt``) to the resuming command's settings."""
    changes = ResumeChanges()
    saved, _ = migrate_model_settings(checkpoint.get("hyper_parameters") or {})
    _loss_changes(saved.get("loss"), model_hparams.get("loss"), changes)
    saved_data = checkpoint.get("datamodule_hyper_parameters") or {}
    for setting in APPLIED_MODEL_SETTINGS:
        if setting in saved and setting in model_hparams and not _same(saved[setting], model_hparams[setting]):
            changes.applied.append(Change(f"model.{setting}", saved[setting], model_hparams[setting]))
    pairs = {"model.n_critic": (saved.get("n_critic"), model_hparams.get("n_critic")),
             "model.seed": (saved.get("seed"), model_hparams.get("seed")),
             "data.init_args.batch_size": (saved_data.get("batch_size"), data_hparams.get("batch_size"))}
    for key, (before, after) in pairs.items():
        if before is not None and after is not None and not _same(before, after):
            changes.refused.append(Change(key, before, after, REFUSED_SETTINGS[key]))
    before_metrics, after_metrics = _metrics_init_args(saved.get("metrics")), _metrics_init_args(model_hparams.get("metrics"))
    if before_metrics is not None and after_metrics is not None:
        for setting in sorted(set(before_metrics) | set(after_metrics)):
            if not _same(before_metrics.get(setting), after_metrics.get(setting)):
                changes.refused.append(Change(
                    f"model.metrics.init_args.{setting}", before_metrics.get(setting), after_metrics.get(setting),
                    "the run's scores (and its best checkpoint) must stay comparable with each other"))
    elif (before_metrics is None) != (after_metrics is None) and "metrics" in saved:
        changes.refused.append(Change("model.metrics", saved.get("metrics") and "configured",
                                      model_hparams.get("metrics") and "configured",
                                      "the run's scores must stay comparable with each other"))
    states = checkpoint.get("optimizer_states") or []
    for index, name in enumerate(("optimizer_g", "optimizer_d")):
        if index < len(states) and states[index].get("param_groups"):
            saved_class = (saved.get(name) or {}).get("class_path") if isinstance(saved.get(name), dict) else None
            _optimizer_changes(index, name, states[index]["param_groups"][0], model_hparams.get(name),
                               saved_class, changes)
    recorded = (checkpoint.get(RECORD_KEY) or {}).get("trainer.precision")
    if recorded is not None and recorded != precision:
        changes.applied.append(Change("trainer.precision", recorded, precision))
    return changes


def refusal(path: str, refused: list[Change]) -> str:
    """The one paragraph of a refused resume."""
    listed = "; ".join(f"{change} ({change.why})" for change in refused)
    return (
        f"--ckpt_path {path}: this resume changes settings that cannot change within a run: "
        f"{listed}. Nothing was written. Resume with the run's values (drop those overrides; the "
        f"run's settings are in its config.yaml and config-resume-*.yaml), or start a new run "
        f"with another --run_name. The README's Reliability section lists what a resume may change."
    )


def read_changes(path: str, model: Any, datamodule: Any, trainer: Any) -> ResumeChanges:
    """Compare the checkpoint at ``path`` with the configured run; raise if any change is refused."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    changes = compare(checkpoint, dict(model.hparams), dict(getattr(datamodule, "hparams", {}) or {}),
                      str(trainer.precision))
    if changes.refused:
        raise ValueError(refusal(path, changes.refused))
    return changes


class ApplyResumeChanges(Callback):
    """Set changed optimiser settings after Lightning restored the optimisers; say what changed.

    It also records ``trainer.precision`` in every checkpoint (``checkpoint["giugan_settings"]``),
    the one compared setting that the module's hyperparameters do not hold.
    """

    def __init__(self) -> None:
        self.changes: ResumeChanges | None = None

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        checkpoint[RECORD_KEY] = {"trainer.precision": str(trainer.precision)}

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        changes, self.changes = self.changes, None
        if changes is None or not changes.applied:
            return
        schedule_changed = any(c.key.startswith("model.lr_") for c in changes.applied)
        for index, optimizer in enumerate(trainer.optimizers):
            settings = changes.optimizer_settings.get(index, {})
            for group in optimizer.param_groups:
                for setting, value in settings.items():
                    group["initial_lr" if setting == "lr" else setting] = value
            if settings or schedule_changed:
                _reschedule(trainer, index, optimizer)
        if trainer.is_global_zero:
            iteration = int(getattr(pl_module, "generator_iteration", 0))
            print(
                f"[giugan] resuming at generator iteration {iteration} with changed settings, in "
                f"force from here on (config-resume-{iteration:08d}.yaml records them): "
                + ", ".join(str(c) for c in changes.applied),
                file=sys.stderr, flush=True,
            )


def _reschedule(trainer: Any, index: int, optimizer: Any) -> None:
    """The scheduler of ``optimizer`` takes the new base rates; the rates in force follow now."""
    configs = [c for c in trainer.lr_scheduler_configs if c.scheduler.optimizer is optimizer]
    if not configs:
        for group in optimizer.param_groups:
            group["lr"] = group.get("initial_lr", group["lr"])
        return
    scheduler = configs[0].scheduler
    scheduler.base_lrs = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
    lambdas = getattr(scheduler, "lr_lambdas", None)
    for position, group in enumerate(optimizer.param_groups):
        factor = lambdas[position](scheduler.last_epoch) if lambdas else 1.0
        group["lr"] = scheduler.base_lrs[position] * factor
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
