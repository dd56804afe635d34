"""How ``giugan`` names and records a run: ``--run_name``, W&B fields, evaluation records apart.

* :func:`apply_run_name`: one name sets the CSV log's folder, the W&B run and the checkpoints;
* :func:`wandb_run_fields`: W&B group, tags, job type and the run config (:func:`wandb_run_config`);
* :func:`keep_records_apart`: ``validate``/``test``/``predict`` never write into the training log;
* :func:`config_from_checkpoint`: ``giugan predict --ckpt_path X`` without ``--config``.
"""

from __future__ import annotations

import os
from typing import Any

from giugan.cli.migration import migrate_config
from giugan.training.loggers import RunFolderOnly
from giugan.training.run_directory import report_filename


def keep_records_apart(trainer: Any, subcommand: str) -> None:
    """``validate``/``test``/``predict`` never write into the training run's CSV or W&B step axis.

    The loggers are replaced by :class:`RunFolderOnly` (the run directory stays the trainer's
    folder, so ``eval.json`` (``test``), ``eval-validate.json`` (``validate``), predictions and
    ``--ckpt_path best|last`` resolve as in the run) and, for a giugan W&B logger, an evaluation
    job in the run's group (``<run>-test``), which also keeps that record as a run file. ``predict`` logs nothing.
    """
    if not trainer.loggers:
        return
    run_dir = str(trainer.log_dir or trainer.default_root_dir)
    jobs: list[Any] = [RunFolderOnly(run_dir)]
    if subcommand != "predict":
        for logger in trainer.loggers:
            if callable(getattr(logger, "evaluation_job", None)):
                job = logger.evaluation_job(subcommand)
                job.files_at_end.append(os.path.join(run_dir, report_filename(subcommand)))
                jobs.append(job)
    trainer.loggers = jobs


def _logger_entries(config: Any) -> list[Any]:
    loggers = config.get("trainer", {}).get("logger") if hasattr(config, "get") else None
    if loggers is None or isinstance(loggers, bool):
        return []
    entries = loggers if isinstance(loggers, list) else [loggers]
    return [entry for entry in entries if getattr(entry, "class_path", None) and entry.get("init_args") is not None]


def apply_run_name(config: Any) -> None:
    """``--run_name NAME``: the CSV log's ``name``, W&B's ``name`` and ``save_dir`` (``<root>/NAME``).

    ``<root>`` is the CSV logger's ``save_dir`` (``runs`` without one); the checkpoints follow the
    first logger's folder unless ``checkpoint.dirpath`` is given.
    """
    name = config.get("run_name")
    if not name:
        return
    entries = _logger_entries(config)
    root = next(
        (str(e.init_args.get("save_dir") or "runs") for e in entries if e.class_path.endswith("CSVLogger")), "runs"
    )
    for entry in entries:
        entry.init_args["name"] = name
        if entry.class_path.endswith("WandbLogger"):
            entry.init_args["save_dir"] = os.path.join(root, name)


def wandb_run_config(config: Any, subcommand: str) -> dict[str, Any]:
    """The W&B run config: every setting of the command, so runs filter by any of them.

    Sections as in ``config.yaml``: ``model``, ``data`` (``class_path`` and ``init_args``),
    ``trainer`` (``precision``, ``devices``, ``strategy``, ``num_nodes``, ``accelerator``, ...;
    loggers and callbacks by class path), ``checkpoint``, ``samples``; and at the top ``seed``
    (``model.seed``, the one seed), ``data_class``, ``run_name``, ``ckpt_path`` and ``command``.
    Values are JSON (paths and other objects as text); no key starts with ``_``.
    """
    import json

    values = config.as_dict() if hasattr(config, "as_dict") else dict(config or {})
    for key in ("config", "predictions", "__path__"):
        values.pop(key, None)
    trainer = values.get("trainer") or {}
    if trainer.get("precision") is None:
        trainer["precision"] = "32-true"  # Lightning's default
    for key in ("logger", "callbacks", "plugins"):
        entries = trainer.get(key)
        if isinstance(entries, list | dict):
            entries = entries if isinstance(entries, list) else [entries]
            trainer[key] = [e.get("class_path", str(e)) if isinstance(e, dict) else str(e) for e in entries]
    model, data = values.get("model") or {}, values.get("data") or {}
    values.update(
        command=subcommand,
        seed=model.get("seed") if isinstance(model, dict) else None,
        data_class=data.get("class_path") if isinstance(data, dict) else None,
    )

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items() if not str(k).startswith("_")}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return clean(json.loads(json.dumps(values, default=str)))


def wandb_run_fields(config: Any, run_name: str, subcommand: str) -> dict[str, Any]:
    """W&B ``group``, ``tags``, ``job_type`` and ``config`` from the config, so a table's rows group
    by themselves.

    The group is the run name's table part: ``ablation_table4_k5`` -> ``ablation_table4``,
    ``cifar10_giu_gan`` -> ``cifar10`` (the rows of one results table); the tags are the dataset
    (data module), the group, the model preset and the row (run name); the job type is the command;
    the config is :func:`wandb_run_config`.
    """
    words = run_name.split("_")
    group = "_".join(words[:2]) if words[0] == "ablation" and len(words) > 2 else words[0]
    data_class = str(config.get("data", {}).get("class_path") or "") if hasattr(config, "get") else ""
    dataset = data_class.rsplit(".", 1)[-1].removesuffix("DataModule").lower() or None
    preset = config.get("model", {}).get("preset") if hasattr(config, "get") else None
    tags = list(dict.fromkeys(t for t in (dataset, group, preset, run_name) if t))
    fields: dict[str, Any] = {"group": group, "tags": tags, "job_type": subcommand}
    if hasattr(config, "get"):
        fields["config"] = wandb_run_config(config, subcommand)
    return fields


def config_from_checkpoint(path: str) -> str:
    """``giugan predict --ckpt_path X`` without ``--config``: the config saved in checkpoint X.

    The model is the checkpoint's hyperparameters (its resolved config) without metrics, so no
    extractor weights are needed; the data module is named but never read; nothing is logged and
    predictions go to ``<run dir>/predictions`` (the folder above ``checkpoints/``).
    """
    import torch
    import yaml

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        model = dict(checkpoint["hyper_parameters"])
    except (OSError, RuntimeError, KeyError, TypeError) as error:
        raise ValueError(
            f"--ckpt_path {path}: cannot read the model's config from it ({error}). `giugan predict` "
            f"without --config needs a checkpoint written by `giugan fit`; otherwise give the "
            f"run's config with --config runs/<name>/config.yaml."
        ) from None
    model.pop("_instantiator", None)
    model["metrics"] = None
    config: dict[str, Any] = {"model": model}
    data = dict(checkpoint.get("datamodule_hyper_parameters") or {})
    if "_class_path" in data:
        init_args = {k: v for k, v in data.items()
                     if not k.startswith("_") and k not in ("batches_per_iteration", "seed")}
        config["data"] = {"class_path": data["_class_path"], "init_args": init_args}
    run_dir = os.path.dirname(os.path.dirname(path)) or "."
    config["trainer"] = {"logger": False, "default_root_dir": run_dir}
    config, _ = migrate_config(config, f"--ckpt_path {path}")  # a checkpoint of before loss objects
    return yaml.safe_dump(config, sort_keys=False)
