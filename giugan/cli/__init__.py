"""``giugan`` command line (``python -m giugan`` too).

* ``giugan fit --config configs/quickstart.yaml`` (add ``--config configs/trainer/gpu.yaml`` etc.)
* ``giugan fit --config configs/cifar10/giu_gan.yaml``: a table row; it names its base config
  with ``__base__`` (see giugan/cli/composition.py and docs/configs.md).
* ``giugan fit --config runs/<name>/config.yaml --ckpt_path last`` resumes a run.
* ``giugan test --config runs/<name>/config.yaml --ckpt_path runs/<name>/checkpoints/best.ckpt``
  writes ``eval.json``.
* ``giugan predict --config ... --ckpt_path ... --predictions.num_images 1000``.
* ``giugan profile --all`` prints the papers' Params/FLOPs beside ours (no Lightning import).
* ``giugan stats --config ...`` precomputes the real-image reference statistics.
* ``giugan eval SAMPLES --reference OTHER --output DIR`` (or ``--config ...`` for a data module's
  reference split) scores a folder or ``.npz`` of images under the training protocol.
* ``giugan inspect runs/<name>/checkpoints/last.ckpt`` draws GIU-GANs Figures 1/2 (D-feature
  maps) and 8/11 (a 64-sample sheet) into ``runs/<name>/inspect/``.

Lightning is imported only for the commands that need it, so ``giugan profile`` starts fast.
"""

from __future__ import annotations

import sys
from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("GiuganCLI", "checkpoint_folder", "stats_main", "TRAINER_DEFAULTS"):
        from giugan.cli import lightning as training_cli

        return getattr(training_cli, name)
    raise AttributeError(name)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``giugan <command>``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "profile":
        from giugan.profiling.profile import main as profile_main

        return profile_main(args[1:])
    if args and args[0] == "inspect":
        from giugan.cli.inspect import main as inspect_main

        return inspect_main(args[1:])
    from giugan.cli.errors import run_reporting_errors

    def command() -> int:
        from giugan.cli.composition import composed_sys_argv
        from giugan.cli.lightning import GiuganCLI, stats_main

        if args and args[0] == "stats":
            return stats_main(args[1:])
        if args and args[0] == "eval":
            from giugan.cli.evaluate import main as evaluate_main

            return evaluate_main(args[1:])
        if argv is not None:
            GiuganCLI(args=args)  # expands composed configs (``__base__``) itself
            return 0
        # From the console, LightningCLI reads sys.argv itself (as DDP's re-launched ranks do
        # too); passing the same list as `args` would only add LightningCLI's warning about it.
        with composed_sys_argv():
            GiuganCLI()
        return 0

    return run_reporting_errors(command, in_process=argv is not None)
