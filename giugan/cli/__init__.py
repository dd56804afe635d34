"""``giugan`` command line (``python -m giugan`` too).

* ``giugan fit --config configs/quickstart.yaml`` (add ``--config configs/trainer/gpu.yaml`` etc.)
* ``giugan fit --config configs/cifar10/giu_gan.yaml``: a table row; it names its base config
  with ``__base__`` (see giugan/cli/composition.py and docs/configs.md).
* ``giugan fit --config runs/<name>/config.yaml --ckpt_path last`` resumes a run.
* ``giugan test --config runs/<name>/config.yaml --ckpt_path runs/<name>/checkpoints/best.ckpt``
  writes ``eval.json``.
* ``giugan predict --ckpt_path runs/<name>/checkpoints/best.ckpt --predictions.num_images 1000``
  (the checkpoint's own config; no data, no Inception weights), with ``--predictions.truncation``
  and ``--predictions.interpolation_steps`` for the truncation trick and an interpolation sheet.
* ``giugan profile --all`` prints the papers' Params/FLOPs beside ours (no Lightning import).
* ``giugan stats --config ...`` precomputes the real-image reference statistics.
* ``giugan eval SAMPLES --reference OTHER --output DIR`` (or ``--config ...`` for a data module's
  reference split) scores a folder or ``.npz`` of images under the training protocol.
* ``giugan inspect runs/<name>/checkpoints/last.ckpt`` draws GIU-GANs Figures 1/2 (D-feature
  maps) and 8/11 (a 64-sample sheet) into ``runs/<name>/inspect/``.

Lightning is imported only for the commands that need it, so ``giugan profile`` starts fast.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("GiuganCLI", "checkpoint_folder", "stats_main", "TRAINER_DEFAULTS"):
        from giugan.cli import lightning as training_cli

        return getattr(training_cli, name)
    raise AttributeError(name)


#: ``giugan --help``: every command, one line each (printed without importing Lightning).
COMMANDS = {
    "fit": "train a model: giugan fit --config configs/quickstart.yaml (resume: --ckpt_path last)",
    "validate": "evaluate a checkpoint on the run's protocol, without writing into its training log",
    "test": "evaluate a checkpoint and write <run dir>/eval.json (FID/IS/KID and the protocol)",
    "predict": "generate images from a checkpoint alone: giugan predict --ckpt_path FILE",
    "profile": "the papers' Params/FLOPs beside giugan's counts: giugan profile --all",
    "stats": "precompute the real-image reference statistics of a config's data and metrics",
    "inspect": "PCA maps of a checkpoint's feature maps (GIU-GANs figures)",
    "eval": "score a folder or .npz of images with the pinned metrics protocol",
    "sweep": "run a table's rows x seeds (locally, as a SLURM array or a W&B sweep)",
    "report": "gather finished runs into the papers' tables (Markdown, CSV, LaTeX, plots)",
    "export": "the generator alone (safetensors + JSON), loadable without Lightning",
}

#: Commands that import Lightning only if they need it: ``giugan.cli.<module>.main(argv)``.
LIGHT_COMMANDS = {"profile": "giugan.profiling.profile", "inspect": "giugan.cli.inspect",
                  "sweep": "giugan.cli.sweep", "report": "giugan.cli.report",
                  "export": "giugan.cli.export"}


def usage() -> str:
    """The top-level help text."""
    width = max(len(name) for name in COMMANDS)
    lines = [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
    return (
        "usage: giugan <command> [options]    (python -m giugan works too)\n\ncommands:\n"
        + "\n".join(lines)
        + "\n\n`giugan <command> --help` lists a command's options; docs/ has the guides.\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``giugan <command>``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage(), end="", file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    from giugan.cli.errors import run_reporting_errors

    if args[0] in LIGHT_COMMANDS:
        import importlib

        module = importlib.import_module(LIGHT_COMMANDS[args[0]])
        return run_reporting_errors(lambda: module.main(args[1:]), in_process=argv is not None)

    def command() -> int:
        from giugan.cli.composition import composed_sys_argv
        from giugan.cli.lightning import GiuganCLI, stats_main

        if args and args[0] == "stats":
            return stats_main(args[1:])
        if args and args[0] == "eval":
            from giugan.cli.evaluate import main as evaluate_main

            return evaluate_main(args[1:])
        if checkpoint_only_prediction(args):
            return predict_from_checkpoint(args)
        refuse_evaluation_without_config(args)
        if argv is not None:
            GiuganCLI(args=args)  # expands composed configs (``__base__``) itself
            return 0
        # From the console, LightningCLI reads sys.argv itself (as DDP's re-launched ranks do
        # too); passing the same list as `args` would only add LightningCLI's warning about it.
        with composed_sys_argv():
            GiuganCLI()
        return 0

    return run_reporting_errors(command, in_process=argv is not None)


def checkpoint_only_prediction(args: list[str]) -> bool:
    """``giugan predict --ckpt_path FILE`` with no ``--config``."""
    words = [a.split("=", 1)[0] for a in args]
    return bool(args) and args[0] == "predict" and "--ckpt_path" in words and not {"--config", "-c"} & set(words)


def _option_value(args: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in ``args`` (None when absent)."""
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def refuse_evaluation_without_config(args: list[str]) -> None:
    """``giugan test|validate --ckpt_path X`` without ``--config``: name the run's config.yaml.

    Evaluation rebuilds the run's data module (its reference split) and metrics from the run's
    config; without it LightningCLI would only say that ``data`` is required.
    """
    words = [a.split("=", 1)[0] for a in args]
    if not args or args[0] not in ("test", "validate") or {"--config", "-c"} & set(words):
        return
    if any(w in ("-h", "--help", "--print_config") or w.startswith(("--data", "--model")) for w in words):
        return  # help, or the settings given one by one
    checkpoint = _option_value(args, "--ckpt_path")
    run_config = None
    if checkpoint and os.path.isfile(checkpoint):
        candidate = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(checkpoint))), "config.yaml")
        run_config = candidate if os.path.isfile(candidate) else None
    fix = (
        f"add --config {os.path.relpath(run_config)} (the config `giugan fit` saved beside the "
        f"run's checkpoints)" if run_config
        else "add --config runs/<name>/config.yaml, the config `giugan fit` saved for the run the "
        "checkpoint comes from"
    )
    raise ValueError(
        f"`giugan {args[0]}` rebuilds the run's data (its reference images) and metrics from the "
        f"run's config, and none was given: {fix}."
    )


def predict_from_checkpoint(args: list[str]) -> int:
    """Predict with the config saved in the checkpoint (no data, no metrics weights needed)."""
    import warnings

    from giugan.cli.lightning import GiuganCLI
    from giugan.cli.runs import config_from_checkpoint

    words = [a.split("=", 1)[0] for a in args]
    index = words.index("--ckpt_path")
    path = args[index].split("=", 1)[1] if "=" in args[index] else args[index + 1]
    import tempfile

    with tempfile.TemporaryDirectory(prefix="giugan-predict-") as folder:
        config = os.path.join(folder, "config.yaml")  # a file: long YAML strings are no path
        with open(config, "w") as handle:
            handle.write(config_from_checkpoint(path))
        with warnings.catch_warnings():
            # The arguments come from the console here too; LightningCLI's warning does not apply.
            warnings.filterwarnings("ignore", message=".*args parameter is intended to run")
            # Prediction restores weights only: training callbacks and folders do not matter.
            warnings.filterwarnings("ignore", message=".*callbacks used to create the checkpoint")
            warnings.filterwarnings("ignore", message="The dirpath has changed from")
            GiuganCLI(args=["predict", "--config", config, *args[1:]])
    return 0
