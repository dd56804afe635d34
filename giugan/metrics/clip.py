"""The CLIP image encoder of FD-CLIP: torch-fidelity's extractor, its weights found offline.

Kynkäänniemi et al. (ICLR 2023, "The Role of ImageNet Classes in Fréchet Inception Distance")
show that FID partly measures how well generated images match ImageNet class statistics, and
recommend the same Fréchet distance in the image embeddings of CLIP ViT-B/32, whose features
are not ImageNet-class features. torch-fidelity 0.4 ships that encoder in its feature-extractor
registry (``clip-vit-b-32`` and the other OpenAI CLIP releases), built from its own copy of the
CLIP code, so it needs no network to construct: :class:`CLIPExtractor` uses it as it is (its
preprocessing: uint8 images in float32, the TF-1.x bilinear resize to the network's input
size, CLIP's mean/std normalisation on the 0..255 scale; its output: the projected image
embedding, 512-d for ViT-B/32).

Weights: ``metrics.init_args.clip_weights_path`` (the OpenAI release file, a TorchScript
archive such as ``ViT-B-32.pt``), else the torch hub cache under the name torch-fidelity gives
it, else a download from the release (checked against its sha256);
:class:`CLIPWeightsUnavailable` says what to do when none works.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from giugan.messages import first_line
from giugan.metrics.extractors import (
    WeightsUnavailable,
    check_images,
    find_weights_file,
    sha256_of_file,
)

#: The CLIP encoders of torch-fidelity's registry (its ``MODEL_URLS``); ViT-B/32 is the
#: choice of Kynkäänniemi et al. (numbers of the others are comparable only with themselves).
CLIP_MODELS: tuple[str, ...] = (
    "clip-vit-b-32", "clip-vit-b-16", "clip-vit-l-14", "clip-vit-l-14-336px",
    "clip-rn50", "clip-rn101", "clip-rn50x4", "clip-rn50x16", "clip-rn50x64",
)  # fmt: skip
#: The config key naming a local CLIP weights file (stated in error messages).
CLIP_WEIGHTS_KEY = "metrics.init_args.clip_weights_path"
#: The resize and normalisation, as recorded in protocols (the side is the network's).
CLIP_RESIZE = (
    "bilinear, antialias=False, to the network's input size (torch-fidelity "
    "interpolate_bilinear_2d_like_tensorflow1x), CLIP mean/std normalisation"
)


def _release(model: str) -> tuple[str, str, str]:
    """``(url, sha256, release file name)`` of a CLIP encoder, from torch-fidelity's table."""
    from torch_fidelity.feature_extractor_clip import MODEL_METADATA, MODEL_URLS

    return MODEL_URLS[model], MODEL_METADATA[model]["hash"], f"{MODEL_METADATA[model]['filename']}.pt"


def clip_weights_url(model: str) -> str:
    """Where torch-fidelity downloads the encoder's OpenAI release file from."""
    return _release(model)[0]


def _hub_cache_path(model: str) -> Path:
    """Where torch-fidelity's download puts the file (``<name>-<sha256>.pt`` in the hub cache)."""
    _, sha256, _ = _release(model)
    return Path(torch.hub.get_dir()) / "checkpoints" / f"{model}-{sha256}.pt"


class CLIPWeightsUnavailable(WeightsUnavailable):
    """The CLIP release file is not on this machine and cannot be downloaded."""

    def __init__(self, reason: str, model: str = "clip-vit-b-32") -> None:
        self.model = model
        super().__init__(reason)

    def message(self, prefix: str = "--model.metrics.init_args.") -> str:
        url, _, filename = _release(self.model)
        return (
            f"The CLIP weights needed for FD-CLIP are unavailable: {self.reason}. giugan measures "
            f"FD-CLIP with OpenAI's CLIP release '{filename}' ({self.model}), at {url}. Download "
            "it on a machine with internet access, copy it to this machine and point to it with "
            f"the config key `{CLIP_WEIGHTS_KEY}` (e.g. `{prefix}clip_weights_path "
            f"/path/to/{filename}`), or put it in the torch hub cache as "
            f"'{_hub_cache_path(self.model)}' where it is found automatically. To train without "
            "FD-CLIP set `metrics.init_args.fd_clip: false` (or "
            "`metrics.init_args.on_missing_weights: warn` to run without metrics)."
        )


def resolve_clip_weights(model: str, weights_path: str | Path | None = None) -> Path:
    """The release file: ``weights_path``, the torch hub cache, or a download into it.

    Raises:
        CLIPWeightsUnavailable: a given path is not a file, or nothing is cached and the
            download failed.
    """
    check_clip_model(model)
    url, sha256, _ = _release(model)
    return find_weights_file(
        weights_path, f"`{CLIP_WEIGHTS_KEY}`", _hub_cache_path(model), url,
        lambda reason: CLIPWeightsUnavailable(reason, model), hash_prefix=sha256,
    )  # fmt: skip


def check_clip_model(model: str) -> None:
    """Refuse a name torch-fidelity's registry has no CLIP encoder for."""
    if model not in CLIP_MODELS:
        raise ValueError(
            f"Unknown CLIP encoder {model!r} (`metrics.init_args.clip_model`); choose one of "
            f"{', '.join(CLIP_MODELS)} (clip-vit-b-32 is the FD-CLIP of Kynkäänniemi et al.)."
        )


def load_torch_fidelity_clip(model: str, path: Path) -> nn.Module:
    """torch-fidelity's CLIP extractor (from its registry) with the release file at ``path``."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    try:
        with warnings.catch_warnings():
            # torch marks torch.jit.load deprecated; the OpenAI releases are TorchScript archives.
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* is deprecated", category=FutureWarning)
            return FEATURE_EXTRACTORS_REGISTRY[model](model, ["clip"], feature_extractor_weights_path=str(path))
    except Exception as err:  # not a TorchScript archive, or not a CLIP model's weights
        url, _, filename = _release(model)
        raise ValueError(
            f"The CLIP weights file '{path}' does not load into torch-fidelity's {model} encoder "
            f"({type(err).__name__}: {first_line(err, 300)}). Expected OpenAI's CLIP release "
            f"'{filename}' from {url} (a TorchScript archive), of the encoder chosen by "
            "`metrics.init_args.clip_model`."
        ) from err


class CLIPExtractor(nn.Module):
    """CLIP image embeddings of uint8 images, by torch-fidelity's CLIP extractor.

    Output: a one-tuple ``(features (B, D),)``, the projected image embedding in float32.

    Args:
        extractor: torch-fidelity's ``FeatureExtractorCLIP`` (:func:`load_torch_fidelity_clip`).
        model: its name in :data:`CLIP_MODELS`.
        weights_path: the release file its weights came from.
    """

    name = "clip"
    resize = CLIP_RESIZE

    def __init__(self, extractor: nn.Module, model: str, weights_path: Path) -> None:
        super().__init__()
        self.extractor = extractor.eval().requires_grad_(False)
        self.model = model
        self.resolution = int(extractor.resolution)
        self.num_features = int(extractor.model.visual.output_dim)
        self.outputs = {"features": self.num_features}
        self.weights_path = str(weights_path)
        self.weights_sha256 = sha256_of_file(weights_path)
        self.identity = f"{model}/sha256:{self.weights_sha256}/{self.resolution}px/image-embedding"

    def train(self, mode: bool = True) -> CLIPExtractor:
        """Stay in evaluation mode."""
        return super().train(False)

    def forward(self, images: Tensor) -> tuple[Tensor]:
        """``(features (B, D),)`` for uint8 images."""
        check_images(images)
        (features,) = self.extractor(images)
        return (features.float(),)

    def protocol(self) -> dict[str, object]:
        """The extractor's entries of a metrics protocol."""
        return {
            "clip_model": self.model,
            "clip_implementation": "torch-fidelity FeatureExtractorCLIP, OpenAI CLIP release weights",
            "clip_weights_file": self.weights_path,
            "clip_weights_sha256": self.weights_sha256,
            "clip_resize": f"{self.resize}, {self.resolution}x{self.resolution}",
            "clip_feature_dim": self.num_features,
        }


def build_clip_extractor(model: str, weights_path: str | Path | None = None) -> CLIPExtractor:
    """The CLIP extractor with the release file found by :func:`resolve_clip_weights`."""
    path = resolve_clip_weights(model, weights_path)
    return CLIPExtractor(load_torch_fidelity_clip(model, path), model, path)


__all__ = [
    "CLIP_MODELS",
    "CLIP_RESIZE",
    "CLIPExtractor",
    "CLIPWeightsUnavailable",
    "build_clip_extractor",
    "check_clip_model",
    "clip_weights_url",
    "load_torch_fidelity_clip",
    "resolve_clip_weights",
]
