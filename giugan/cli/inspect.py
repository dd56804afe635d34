"""``giugan inspect CHECKPOINT``: the GIU-GANs figures of a trained model, as PNG files.

Writes into ``--output`` (default ``<run dir>/inspect/``):

* ``maps_real.png`` and ``maps_fake.png``: GIU-GANs Figures 1 and 2, the first principal
  component (K = 1) of a discriminator layer's features per image, as grey-scale maps, for real
  images and for samples (the first ``--num-images`` samples of the sheet below);
* ``images_real.png``: the real images those maps were computed from, at the model's size;
* ``samples_64.png``: GIU-GANs Figures 8 and 11, 64 samples in an 8x8 grid.

Real images come from ``--images DIR`` (a folder of image files, resized and centre-cropped to
the model's size), from ``--config FILE``'s data module (its reference split, in order), or, by
default, from the run's saved ``config.yaml`` beside ``checkpoints/``. Samples come from the
generator used for evaluation (the EMA copy when the run keeps one) with latents drawn from
``--seed``. Lightning is imported only after the arguments are parsed, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import copy
import pickle
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "inspect_checkpoint", "main"]

DEFAULT_NUM_IMAGES = 16
SHEET_SIZE = 64


def build_parser() -> argparse.ArgumentParser:
    """The ``giugan inspect`` argument parser (every option has its help text)."""
    parser = argparse.ArgumentParser(
        prog="giugan inspect",
        description="Draw GIU-GANs Figures 1/2 (first-principal-component maps of a discriminator "
        "layer, for real images and for samples) and Figures 8/11 (a 64-sample sheet) from a "
        "`giugan fit` checkpoint.",
    )
    parser.add_argument("checkpoint", type=Path,
                        help="a checkpoint written by `giugan fit`, e.g. "
                             "runs/quickstart/checkpoints/last.ckpt")
    parser.add_argument("--layer", default=None,
                        help="discriminator layer whose features are mapped, a module name such "
                             "as blocks.0 (output of D block 1) or inserts.3 (a module after "
                             "block 3); default blocks.1, the output of D block 2")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--images", type=Path, default=None,
                        help="folder of real images (jpg, png, ...; sorted by name, the first "
                             "--num-images used), resized and centre-cropped to the model's size")
    source.add_argument("--config", type=Path, default=None,
                        help="config file whose data module gives the real images (its reference "
                             "split, in order); default: the run's config.yaml beside checkpoints/")
    parser.add_argument("--num-images", type=int, default=DEFAULT_NUM_IMAGES,
                        help=f"real images and samples to map (default {DEFAULT_NUM_IMAGES})")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the samples' latent vectors (default 0)")
    parser.add_argument("--output", type=Path, default=None,
                        help="folder for the PNG files (default <run dir>/inspect/)")
    parser.add_argument("--device", default="cpu",
                        help="torch device to run the networks on (default cpu; e.g. cuda)")
    return parser


def main(argv: list[str]) -> int:
    """``giugan inspect ...``: parse, draw, print the files; bad input exits with status 2."""
    args = build_parser().parse_args(argv)
    from giugan.cli.errors import run_reporting_errors

    def command() -> int:
        written = inspect_checkpoint(
            args.checkpoint, output=args.output, layer=args.layer, images=args.images,
            config=args.config, num_images=args.num_images, seed=args.seed, device=args.device,
        )
        for path in written.values():
            print(path)
        return 0

    return run_reporting_errors(command)


def inspect_checkpoint(
    checkpoint: Path,
    output: Path | None = None,
    layer: str | None = None,
    images: Path | None = None,
    config: Path | None = None,
    num_images: int = DEFAULT_NUM_IMAGES,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Path]:
    """Write the maps and the sample sheet of ``checkpoint``; return ``{name: path}``.

    Raises:
        FileNotFoundError: the checkpoint, the image folder or the config is missing.
        ValueError: a bad ``--layer`` (the message lists the valid ones), ``--num-images`` < 1,
            an image folder without images, a data module of another image size, or no source
            of real images.
    """
    import torch

    from giugan.inspection.figures import (
        check_layer,
        default_layer,
        discriminator_maps,
        fixed_latents,
        save_maps,
        save_sample_sheet,
    )

    if num_images < 1:
        raise ValueError(f"--num-images is {num_images}; give at least 1 image to map.")
    module = load_module(checkpoint, device)
    discriminator = module.discriminator
    layer = check_layer(discriminator, layer if layer is not None else default_layer(discriminator))
    size = int(discriminator.image_size)
    output = Path(output) if output is not None else run_directory(checkpoint) / "inspect"

    real = real_images(checkpoint, images, config, size, num_images)
    latents = fixed_latents(max(SHEET_SIZE, num_images), module.z_dim, seed)
    fake = torch.cat([module.generate(chunk).float().cpu() for chunk in latents.split(SHEET_SIZE)])
    return {
        "maps_real": save_maps(discriminator_maps(discriminator, real, layer), output / "maps_real.png"),
        "maps_fake": save_maps(
            discriminator_maps(discriminator, fake[:num_images], layer), output / "maps_fake.png"
        ),
        "images_real": save_sample_sheet(real, output / "images_real.png"),
        "samples_64": save_sample_sheet(fake[:SHEET_SIZE], output / "samples_64.png"),
    }


def load_module(checkpoint: Path, device: str) -> Any:
    """The :class:`~giugan.training.module.GANModule` of a ``giugan fit`` checkpoint, in eval mode.

    Networks come from the config saved in the checkpoint; its metrics are not built (they are not
    needed, and building them may need Inception weights).
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"inspect: checkpoint {checkpoint} does not exist. Give a file written by "
            f"`giugan fit`, e.g. runs/<name>/checkpoints/last.ckpt or best.ckpt."
        )
    from giugan.training.module import GANModule
    from giugan.training.start_checks import read_checkpoint_section

    read_checkpoint_section(str(checkpoint), given_as="inspect: checkpoint")  # any unreadable file
    try:
        module = GANModule.load_from_checkpoint(checkpoint, map_location="cpu", metrics=None)
    except (KeyError, TypeError, EOFError, pickle.UnpicklingError) as error:
        raise ValueError(
            f"inspect: {checkpoint} is not a checkpoint of `giugan fit` (loading it failed "
            f"with {type(error).__name__}: {error}); give one from runs/<name>/checkpoints/."
        ) from error
    return module.to(device).eval()


def run_directory(checkpoint: Path) -> Path:
    """The run directory of a checkpoint: the folder holding ``checkpoints/`` (else its own)."""
    folder = Path(checkpoint).resolve().parent
    return folder.parent if folder.name == "checkpoints" else folder


def real_images(
    checkpoint: Path, images: Path | None, config: Path | None, size: int, count: int
) -> Any:
    """Up to ``count`` real images in [-1, 1], ``(N, 3, size, size)``, from the chosen source."""
    if images is not None:
        return folder_images(images, size, count)
    if config is None:
        config = run_directory(checkpoint) / "config.yaml"
        if not config.is_file():
            raise ValueError(
                f"inspect: no real images: there is no {config} beside the checkpoint's "
                f"checkpoints/ folder to read the data from. Give --images <folder of images> or "
                f"--config <the run's config file>."
            )
    return config_images(Path(config), size, count)


def folder_images(folder: Path, size: int, count: int) -> Any:
    """The first ``count`` images (sorted by name) of ``folder``, resized to ``size``."""
    import torch

    from giugan.data.files import DEFAULT_EXTENSIONS, decode_image, list_image_files
    from giugan.data.transforms import ImageTransform

    if not Path(folder).is_dir():
        raise FileNotFoundError(
            f"inspect: --images {folder} is not a folder. Give a folder of image files "
            f"(e.g. a few CelebA or CIFAR-10 JPGs)."
        )
    paths = list_image_files(Path(folder), DEFAULT_EXTENSIONS, recursive=False)[:count]
    if not paths:
        raise ValueError(
            f"inspect: --images {folder} holds no image files (looked for "
            f"{', '.join(DEFAULT_EXTENSIONS)}, not in sub-folders); give a folder with images."
        )
    transform = ImageTransform(size)
    return torch.stack([transform(decode_image(path)) for path in paths])


def config_images(config: Path, size: int, count: int) -> Any:
    """The first ``count`` reference images of ``config``'s data module (no flips, in order)."""
    datamodule = data_module_from_config(config)
    if datamodule.image_size != size:
        raise ValueError(
            f"inspect: the data of {config} has {datamodule.image_size}x"
            f"{datamodule.image_size} images but the checkpoint's discriminator takes {size}x{size}; "
            f"give the config of the run that wrote the checkpoint, or --images <folder>."
        )
    datamodule.prepare_data()
    datamodule.setup("validate")
    from giugan.inspection.figures import first_images

    return first_images(datamodule.reference_dataloader(), count)


def data_module_from_config(config: Path) -> Any:
    """Instantiate the ``data`` section of ``config`` (``__base__`` chains followed)."""
    import yaml
    from jsonargparse import ArgumentParser
    from lightning.pytorch import LightningDataModule

    from giugan.cli.composition import expand_config_bases

    if not Path(config).is_file():
        raise FileNotFoundError(
            f"inspect: --config {config} does not exist; give the run's config.yaml or a "
            f"config under configs/."
        )
    values = expand_config_bases(["--config", str(config)])[1::2]
    section: dict[str, Any] = {}
    for value in values:
        # each value is a plain config's path or a composed file's YAML text
        text = value if "\n" in value else Path(value).read_text()
        data = yaml.safe_load(text) or {}
        section = merged_data_section(section, data.get("data") or {})
    if "class_path" not in section:
        raise ValueError(
            f"inspect: {config} has no `data: {{class_path: ..., init_args: ...}}` "
            f"section, so it names no real images; give a training config or --images <folder>."
        )
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LightningDataModule, "data", required=True)
    return parser.instantiate_classes(parser.parse_object({"data": section})).data


def merged_data_section(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` over ``old`` as repeated ``--config`` files merge: same class, init_args merged."""
    if "class_path" in new and new["class_path"] != old.get("class_path"):
        return copy.deepcopy(new)
    merged = copy.deepcopy(old)
    merged.setdefault("init_args", {}).update(copy.deepcopy(new.get("init_args") or {}))
    return merged
