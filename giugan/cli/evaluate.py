"""``giugan eval``: score a folder or ``.npz`` of images against a reference, as training does.

::

    giugan eval samples/ --reference other/ --output results/      # folder or .npz reference
    giugan eval images.npz --config configs/cifar10/giu_gan.yaml --output results/

The images are scored by the same :class:`~giugan.metrics.GenerativeMetrics` a training run
builds (from the config's ``model.metrics`` when ``--config`` is given; ``--metrics.*`` options
override it), with the same extractor, resize, quantisation and reference-statistics cache, and the
result is written as the same ``eval.json`` (see docs/metrics.md). The reference is either a data
module's reference split (the config's ``data`` section, exactly what training measures against)
or another folder or ``.npz`` of images. Images are read as they are: 8-bit RGB, all of one size,
no resize (the sample images and the reference must have the same size).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import Tensor

from giugan.cli.composition import expand_config_bases
from giugan.data.files import DEFAULT_EXTENSIONS, decode_image, list_image_files
from giugan.data.transforms import to_rgb
from giugan.metrics import GenerativeMetrics, WeightsUnavailable, compute_reference_statistics
from giugan.training.evaluation import Evaluator

DESCRIPTION = (
    "Score a folder of images or an .npz (array `images`, uint8 N x H x W x 3, as `giugan predict "
    "--predictions.npz true` writes) against a reference under the protocol training uses, and "
    "write eval.json. The reference is a data module's reference split (--config with a `data` "
    "section) or another folder/.npz (--reference)."
)


def _merge(base: Any, override: Any) -> Any:
    """jsonargparse's rule for repeated ``--config``: mappings merged key by key, else replaced.

    ``init_args`` are kept only while the ``class_path`` stays the same.
    """
    if not isinstance(base, dict) or not isinstance(override, dict):
        return override
    merged = dict(base)
    if "class_path" in override and override["class_path"] != base.get("class_path"):
        merged.pop("init_args", None)
    for key, value in override.items():
        merged[key] = _merge(merged[key], value) if key in merged else value
    return merged


def _config_sections(configs: list[str]) -> tuple[dict | None, dict | None]:
    """``(data section, metrics init_args)`` of the merged training config(s)."""
    merged: dict[str, Any] = {}
    for value in expand_config_bases([arg for config in configs for arg in ("--config", config)]):
        if value == "--config":
            continue
        path = Path(value)
        if not path.is_file() and "\n" not in value:
            raise FileNotFoundError(
                f"The config file '{value}' does not exist. Give --config the path of "
                "a training config (e.g. configs/cifar10/giu_gan.yaml or runs/<name>/config.yaml)."
            )
        text = path.read_text() if path.is_file() else value
        loaded = yaml.safe_load(text) or {}
        if not isinstance(loaded, dict):
            raise ValueError(
                f"The config '{value[:80]}' is not a mapping of keys to values; "
                "give a training config with `model:` and `data:` sections."
            )
        merged = _merge(merged, loaded)
    data = merged.get("data")
    metrics = (merged.get("model") or {}).get("metrics")
    if isinstance(metrics, dict) and "class_path" in metrics:
        metrics = metrics.get("init_args") or {}
    return data, metrics


def build_parser() -> Any:
    """The ``giugan eval`` parser (jsonargparse; ``--metrics.*`` are GenerativeMetrics' options)."""
    from jsonargparse import ArgumentParser
    from lightning.pytorch import LightningDataModule

    parser = ArgumentParser(prog="giugan eval", description=DESCRIPTION, exit_on_error=False)
    parser.add_argument(
        "samples", type=str, help="Folder of images (any depth) or .npz file to score."
    )
    parser.add_argument(
        "--reference",
        type=str | None,
        default=None,
        help="Folder of images or .npz to score against (instead of a config's data section).",
    )
    parser.add_argument(
        "--config",
        type=str,
        action="append",
        default=[],
        help="Training config (repeatable, `__base__` rows allowed): its `model.metrics` sets the "
        "metric options and its `data` section the reference split.",
    )
    parser.add_argument(
        "--output", type=str, required=True, help="Folder to write eval.json into."
    )
    parser.add_argument(
        "--batch_size", type=int, default=250, help="Images per extractor batch (no effect on scores)."
    )
    parser.add_argument(
        "--device",
        type=str,
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="Device of the extractor and the metric states (default: cuda when available).",
    )
    parser.add_class_arguments(GenerativeMetrics, "metrics", help="The metric protocol.")
    parser.add_subclass_arguments(
        LightningDataModule,
        "data",
        required=False,
        help="Data module whose reference split is the reference (usually from --config).",
    )
    return parser


def read_images(path: str, what: str) -> Tensor:
    """uint8 ``(N, 3, H, W)`` images of a folder (sorted, RGB as the data modules decode) or .npz."""
    source = Path(path).expanduser()
    if not source.exists():
        raise FileNotFoundError(
            f"The {what} '{source}' does not exist. Give a folder of images or an "
            ".npz file with an `images` array (uint8, N x H x W x 3)."
        )
    if source.is_dir():
        files = list_image_files(source, DEFAULT_EXTENSIONS, recursive=True)
        if not files:
            raise FileNotFoundError(
                f"No image files under the {what} folder '{source}' (searched "
                f"recursively for {', '.join(DEFAULT_EXTENSIONS)}). Extract any archive first."
            )
        arrays = [np.asarray(to_rgb(decode_image(file))) for file in files]
        sizes = {array.shape for array in arrays}
        if len(sizes) > 1:
            odd = next(f for f, a in zip(files, arrays) if a.shape != arrays[0].shape)
            raise ValueError(
                f"The images of the {what} folder '{source}' differ in size "
                f"({files[0].name} is {arrays[0].shape[1]}x{arrays[0].shape[0]}, {odd.name} is "
                f"{arrays[files.index(odd)].shape[1]}x{arrays[files.index(odd)].shape[0]}). "
                "Scores need one size: resize the images first."
            )
        pixels = np.stack(arrays)
    elif source.suffix == ".npz":
        with np.load(source) as archive:
            if "images" not in archive:
                raise ValueError(
                    f"The {what} '{source}' has no array `images` (it has "
                    f"{', '.join(archive.files) or 'none'}). Write one of uint8 N x H x W x 3, as "
                    "`giugan predict --predictions.npz true` does."
                )
            pixels = archive["images"]
        if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise ValueError(
                f"The `images` array of '{source}' is {pixels.dtype} of shape "
                f"{pixels.shape}; it must be uint8 N x H x W x 3 (values 0..255, RGB last). "
                "Quantise float images with giugan.metrics.quantize_images first."
            )
    else:
        raise ValueError(
            f"The {what} '{source}' is neither a folder nor an .npz file. Give a "
            "folder of images or an .npz with an `images` array."
        )
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).contiguous()


def images_reference_id(images: Tensor) -> str:
    """Cache name of a set of reference images: a hash of their pixels and their size."""
    digest = hashlib.sha256(images.numpy().tobytes()).hexdigest()[:16]
    return f"images-{digest}-{images.shape[2]}x{images.shape[3]}"


def _reference(config: Any, init: Any, samples: Tensor) -> tuple[Any, str, int, str]:
    """``(batches of real images, reference id, count, source description)``."""
    if config.reference is not None and init.data is not None:
        raise ValueError(
            "Both --reference and --data name the reference. Give one: drop "
            "--reference to use the data module's reference split, or drop --data to use the "
            "--reference images (with --config, --reference replaces the config's data section)."
        )
    size = tuple(samples.shape[2:])
    if config.reference is not None:
        real = read_images(config.reference, "reference")
        if tuple(real.shape[2:]) != size:
            raise ValueError(
                f"The samples are {size[1]}x{size[0]} but the reference images "
                f"'{config.reference}' are {real.shape[3]}x{real.shape[2]}. Score images of the "
                "reference's size."
            )
        batches = real.split(config.batch_size)
        return batches, images_reference_id(real), int(real.shape[0]), str(config.reference)
    datamodule = init.data
    if datamodule is None:
        raise ValueError(
            "No reference. Give --reference FOLDER_OR_NPZ, or --config with a "
            "training config whose `data` section names the reference split."
        )
    if not hasattr(datamodule, "reference_id"):
        raise ValueError(
            f"The data module {type(datamodule).__name__} has no reference split "
            "(`reference_id`); use a giugan data module (giugan.data.*)."
        )
    if (datamodule.image_size, datamodule.image_size) != size:
        raise ValueError(
            f"The samples are {size[1]}x{size[0]} but the reference split of "
            f"{type(datamodule).__name__} is {datamodule.image_size}x{datamodule.image_size} "
            "(data.init_args.image_size). Score images of the reference's size."
        )
    datamodule.prepare_data()
    datamodule.setup("validate")
    source = f"{type(datamodule).__module__}.{type(datamodule).__name__} reference split"
    return (
        datamodule.val_dataloader(),
        datamodule.reference_id,
        datamodule.num_reference_images,
        source,
    )


def _no_generator(latents: Tensor) -> Tensor:  # pragma: no cover - eval generates nothing
    raise RuntimeError("giugan eval scores given images; it has no generator.")


def main(argv: list[str]) -> int:
    """``giugan eval SAMPLES (--reference R | --config C) --output DIR [--metrics.* ...]``."""
    parser = build_parser()
    prefix: list[str] = []
    configs = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--config"]
    configs += [arg.split("=", 1)[1] for arg in argv if arg.startswith("--config=")]
    if configs and not any(arg in ("-h", "--help") for arg in argv):
        data, metrics_options = _config_sections(configs)
        if metrics_options is None:
            raise ValueError(
                "The config has no model.metrics section; add one or give the "
                "options as --metrics.extractor etc."
            )
        prefix = ["--metrics", yaml.safe_dump(metrics_options)]
        if data is not None and not any(a.split("=")[0] == "--reference" for a in argv):
            prefix += ["--data", yaml.safe_dump(data)]
    config = parser.parse_args(prefix + list(argv))
    samples = read_images(config.samples, "samples")
    try:  # the extractor is built here, or on first use (the first `available`)
        init = parser.instantiate_classes(config)
        metrics: GenerativeMetrics = init.metrics.to(torch.device(config.device))
        available = metrics.available
    except WeightsUnavailable as err:  # a RuntimeError: shown as one paragraph here
        raise FileNotFoundError(err.message(prefix="--metrics.")) from err
    if not available:
        raise ValueError(f"The metrics are unavailable. {metrics.unavailable_reason}")
    if metrics.needs_real or config.reference is not None or init.data is not None:
        real, reference_id, num_real, source = _reference(config, init, samples)
        compute_reference_statistics(metrics, real, reference_id, num_real)
    else:  # only the Inception Score: no real images needed
        reference_id, num_real, source = None, 0, None
    metrics.reset_fake()
    for batch in samples.split(config.batch_size):
        metrics.update_fake(batch.to(metrics.device))
    values = metrics.compute()
    metrics.num_fake = int(samples.shape[0])  # the protocol records the images scored
    context = {
        "samples": str(config.samples),
        "protocol": {
            "reference": reference_id,
            "reference_source": source,
            "num_real": num_real,
            "generator": f"images read from {config.samples} (giugan eval)",
            "world_size": 1,
        },
    }
    evaluator = Evaluator(metrics, _no_generator, z_dim=0, seed=0)
    path = evaluator.write_report(config.output, values, context)
    print(", ".join(f"{name}={value:.6g}" for name, value in values.items()))
    print(f"wrote {path}", file=sys.stderr)
    return 0


__all__ = ["build_parser", "images_reference_id", "main", "read_images"]
