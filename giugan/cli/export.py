"""``giugan export CHECKPOINT``: the generator alone, as safetensors + JSON (docs/export.md).

Writes into ``--output`` (default ``<run dir>/export/<checkpoint name>/``, e.g.
``runs/quickstart/export/last/``):

* ``generator.safetensors``: the weights of the generator the run sampled with (the EMA copy
  when the run kept one);
* ``generator.json``: its constructor (``class_path`` + ``init_args``, or a giugan preset),
  ``z_dim``, the sampling mode and where it came from;
* ``generator.torchscript.pt`` with ``--torchscript``.

``giugan.export.load_generator(folder)`` rebuilds it without Lightning. ``--wandb-artifact NAME``
also logs the folder as a W&B model artifact (offline runs keep it for ``wandb sync``). A refused
export (missing or unreadable checkpoint, an output folder that holds files, a bad artifact name)
changes no file.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

__all__ = ["build_parser", "default_output", "log_artifact", "main", "wandb_folder"]

_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def build_parser() -> argparse.ArgumentParser:
    """The ``giugan export`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="giugan export",
        description="Write the generator of a `giugan fit` checkpoint alone (the EMA generator when "
        "the run kept one) as generator.safetensors + generator.json, loadable with "
        "giugan.export.load_generator(folder) without Lightning. See docs/export.md.",
    )
    parser.add_argument("checkpoint", type=Path,
                        help="a checkpoint written by `giugan fit`, e.g. runs/quickstart/checkpoints/last.ckpt")
    parser.add_argument("--output", type=Path, default=None,
                        help="folder to write (default <run dir>/export/<checkpoint name>/); it must "
                             "not hold files unless --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing export folder (only once the new one is complete)")
    parser.add_argument("--torchscript", action="store_true",
                        help="also write generator.torchscript.pt (torch.jit.trace; any batch size)")
    parser.add_argument("--wandb-artifact", default=None, metavar="NAME",
                        help="also log the folder as a W&B artifact of type 'model' named NAME "
                             "(WANDB_MODE=offline keeps it in the offline run for `wandb sync`)")
    parser.add_argument("--wandb-project", default="giugan",
                        help="W&B project of the export run (default giugan)")
    return parser


def default_output(checkpoint: Path) -> Path:
    """``<run dir>/export/<stem>`` for ``<run dir>/checkpoints/<stem>.ckpt``, else ``<stem>-export`` beside it."""
    folder = checkpoint.resolve().parent
    if folder.name == "checkpoints":
        return folder.parent / "export" / checkpoint.stem
    return folder / f"{checkpoint.stem}-export"


def _refuse_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise ValueError(
            f"--output {output}: a file, not a folder. Give a folder for the export (it is created), "
            f"e.g. --output {output.with_suffix('')}-export."
        )
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise ValueError(
            f"--output {output}: the folder already holds files, and an export does not mix with "
            f"them. Add --overwrite to replace the folder (only once the new export is complete), "
            f"or give another --output folder."
        )


def _refuse_artifact_name(name: str | None) -> None:
    if name is not None and not _ARTIFACT_NAME.match(name):
        raise ValueError(
            f"--wandb-artifact {name!r}: W&B artifact names may hold only letters, digits, '-', '_' "
            f"and '.'; give e.g. --wandb-artifact cifar10-giu-gan-generator."
        )


def wandb_folder(output: Path) -> Path:
    """Where the export's W&B run writes ``wandb/``: the run directory for ``<run dir>/export/<name>``,
    else the folder holding ``output``."""
    parent = output.resolve().parent
    return parent.parent if parent.name == "export" else parent


def log_artifact(folder: Path, name: str, project: str, description: dict, alias: str, mode: str) -> str:
    """Log ``folder`` as W&B model artifact ``name`` from a run of job type ``export``; its run folder.

    The run goes under :func:`wandb_folder` (``runs/<name>/wandb/`` for the default ``--output``),
    so ``wandb sync runs/<name>/wandb/`` uploads it with the training run. ``mode`` is passed to
    wandb rather than left to it: a W&B session of this process (an earlier command) would
    otherwise impose its own.
    """
    import wandb

    run = wandb.init(project=project, name=f"{name}-export", job_type="export", mode=mode,
                     dir=str(wandb_folder(folder)), config={"export": description})
    try:
        artifact = wandb.Artifact(name, type="model", metadata=description)
        artifact.add_dir(str(folder))
        run.log_artifact(artifact, aliases=[alias])
        return str(Path(run.dir).parent)
    finally:
        run.finish()


def main(argv: list[str]) -> int:
    """Run ``giugan export``: refuse bad input before writing anything, then write (and log)."""
    args = build_parser().parse_args(argv)
    _refuse_artifact_name(args.wandb_artifact)
    output = args.output if args.output is not None else default_output(args.checkpoint)
    _refuse_output(output, args.overwrite)

    from giugan.export.checkpoint import read_checkpoint_generator
    from giugan.export.loading import read_description
    from giugan.export.writing import write_export

    source = read_checkpoint_generator(args.checkpoint)
    generator = write_export(source, output, args.checkpoint.name, args.torchscript, args.overwrite)
    files = sorted(path.name for path in output.iterdir())
    parameters = sum(p.numel() for p in generator.parameters())
    which = "EMA generator" if source.ema else "generator"
    print(f"giugan export: the {which} of {args.checkpoint} (generator iteration "
          f"{source.generator_iteration}, {parameters:,} parameters, z_dim {generator.z_dim}) -> "
          f"{output}/: {', '.join(files)}")
    print(f"load it with: from giugan.export import load_generator; generator = load_generator({str(output)!r})")
    if args.wandb_artifact:
        from giugan.training.loggers import resolved_wandb_mode

        mode = resolved_wandb_mode(None)  # as for `giugan fit`: offline without credentials
        if mode == "disabled":
            print("W&B: not logged (WANDB_MODE=disabled); unset it to log the artifact.")
            return 0
        run_folder = log_artifact(output, args.wandb_artifact, args.wandb_project,
                                  read_description(output), args.checkpoint.stem, mode)
        print(f"W&B: artifact {args.wandb_artifact}:{args.checkpoint.stem} (type model) logged by the run in "
              f"{run_folder}")
    return 0
