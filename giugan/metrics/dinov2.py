"""The DINOv2 ViT feature extractor of FD-DINOv2, built offline from timm's implementation.

Stein et al. (NeurIPS 2023, "Exposing flaws of generative model evaluation metrics and their
unfair treatment of diffusion models", section 4) recommend the Fréchet distance in the features of
DINOv2 ViT-L/14 (the normalised class token, 1024-d). torch-fidelity 0.4 ships that extractor
(``torch_fidelity.feature_extractor_dinov2``), but builds the network through ``torch.hub``, which
fetches code from GitHub at run time and has no local-weights option: an offline machine or a
cluster node cannot use it. :class:`DINOv2Extractor` is the same measurement with the network of
timm (``vit_large_patch14_dinov2``, a packaged implementation that needs no network to construct):

* the same preprocessing as torch-fidelity's extractor: uint8 images in float32, the TF-1.x
  bilinear resize to 224x224 (``interpolate_bilinear_2d_like_tensorflow1x``), then ImageNet
  normalisation on the 0..255 scale;
* the same network: the published checkpoint (``dinov2_vitl14_pretrain.pth``, the file torch.hub
  caches) loaded into timm's ViT, with the 37x37 position embedding of the 518-pixel checkpoint
  interpolated to 224 pixels (16x16) exactly as the DINOv2 code does at run time (bicubic, scale
  factor ``(16 + 0.1) / 37``, no antialiasing: :func:`dinov2_position_embedding`).

Weights: ``metrics.init_args.dinov2_weights_path`` (a file), else the torch hub cache (where
``torch.hub`` and torch-fidelity put it), else a download from the DINOv2 release;
:class:`DINOv2WeightsUnavailable` says what to do when none works.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from giugan.messages import first_line
from giugan.metrics.extractors import (
    WeightsUnavailable,
    check_images,
    find_weights_file,
    sha256_of_file,
)

#: The side torch-fidelity's DINOv2 extractor resizes every image to.
DINOV2_IMAGE_SIZE = 224
#: timm architecture -> (DINOv2 release name, feature width). ViT-L/14 is the protocol of Stein
#: et al.; the smaller ones are torch-fidelity's other choices (numbers not comparable with it).
DINOV2_ARCHITECTURES: dict[str, tuple[str, int]] = {
    "vit_large_patch14_dinov2": ("dinov2_vitl14", 1024),
    "vit_base_patch14_dinov2": ("dinov2_vitb14", 768),
    "vit_small_patch14_dinov2": ("dinov2_vits14", 384),
}
#: The config key naming a local DINOv2 weights file (stated in error messages).
DINOV2_WEIGHTS_KEY = "metrics.init_args.dinov2_weights_path"
#: The resize and normalisation, as recorded in protocols and reference keys.
DINOV2_RESIZE = (
    "bilinear, antialias=False, 224x224 (torch-fidelity interpolate_bilinear_2d_like_tensorflow1x), "
    "ImageNet mean/std normalisation"
)
_MEAN = (255 * 0.485, 255 * 0.456, 255 * 0.406)
_STD = (255 * 0.229, 255 * 0.224, 255 * 0.225)


def dinov2_weights_filename(architecture: str) -> str:
    """The published checkpoint's file name, e.g. ``dinov2_vitl14_pretrain.pth``."""
    return f"{DINOV2_ARCHITECTURES[architecture][0]}_pretrain.pth"


def dinov2_weights_url(architecture: str) -> str:
    """Where the DINOv2 release (and ``torch.hub``) downloads the checkpoint from."""
    release = DINOV2_ARCHITECTURES[architecture][0]
    return f"https://dl.fbaipublicfiles.com/dinov2/{release}/{release}_pretrain.pth"


class DINOv2WeightsUnavailable(WeightsUnavailable):
    """The DINOv2 checkpoint is not on this machine and cannot be downloaded."""

    def __init__(self, reason: str, architecture: str = "vit_large_patch14_dinov2") -> None:
        self.architecture = architecture
        super().__init__(reason)

    def message(self, prefix: str = "--model.metrics.init_args.") -> str:
        option = f"{prefix}dinov2_weights_path"
        filename = dinov2_weights_filename(self.architecture)
        return (
            f"The DINOv2 weights needed for FD-DINOv2 are unavailable: {self.reason}. giugan "
            f"measures FD-DINOv2 with the published DINOv2 checkpoint '{filename}', at "
            f"{dinov2_weights_url(self.architecture)}. Download it on a machine with internet "
            "access, copy it to this machine and point to it with the config key "
            f"`{DINOV2_WEIGHTS_KEY}` (e.g. `{option} /path/to/{filename}`), or put it in the torch "
            f"hub cache ({_hub_cache_path(self.architecture)}) where it is found automatically. "
            "To train without FD-DINOv2 set `metrics.init_args.fd_dinov2: false` (or "
            "`metrics.init_args.on_missing_weights: warn` to run without metrics)."
        )


def _hub_cache_path(architecture: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / dinov2_weights_filename(architecture)


def resolve_dinov2_weights(architecture: str, weights_path: str | Path | None = None) -> Path:
    """The checkpoint file: ``weights_path``, the torch hub cache, or a download into it.

    Raises:
        DINOv2WeightsUnavailable: a given path is not a file, or nothing is cached and the
            download failed.
    """
    return find_weights_file(
        weights_path, f"`{DINOV2_WEIGHTS_KEY}`", _hub_cache_path(architecture),
        dinov2_weights_url(architecture), lambda reason: DINOv2WeightsUnavailable(reason, architecture),
    )  # fmt: skip


def dinov2_position_embedding(position_embedding: Tensor, grid: int) -> Tensor:
    """The class and patch position embeddings ``(1, 1 + M*M, D)`` interpolated to ``grid``.

    As the DINOv2 code's ``interpolate_pos_encoding`` does for every forward at another size:
    bicubic, without antialiasing, with the scale factor ``(grid + 0.1) / M`` (its
    ``interpolate_offset``), in float32.
    """
    count = position_embedding.shape[1] - 1
    side = math.isqrt(count)
    if side * side != count:
        raise ValueError(
            f"A DINOv2 position embedding holds a class token and a square grid of patches; "
            f"got {count} patch positions."
        )
    if side == grid:
        return position_embedding
    dim = position_embedding.shape[-1]
    original = position_embedding.float()
    patches = original[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    scale = float(grid + 0.1) / side
    patches = F.interpolate(patches, mode="bicubic", antialias=False, scale_factor=(scale, scale))
    patches = patches.permute(0, 2, 3, 1).reshape(1, grid * grid, dim)
    return torch.cat((original[:, :1], patches), dim=1).to(position_embedding.dtype)


def dinov2_network(architecture: str) -> nn.Module:
    """timm's DINOv2 ViT for 224-pixel inputs, randomly initialised, head removed (no network)."""
    import timm

    if architecture not in DINOV2_ARCHITECTURES:
        raise ValueError(
            f"Unknown DINOv2 architecture {architecture!r} (`metrics.init_args.dinov2_model`); "
            f"choose one of {', '.join(DINOV2_ARCHITECTURES)} (ViT-L/14 is the FD-DINOv2 protocol)."
        )
    return timm.create_model(
        architecture, pretrained=False, num_classes=0, img_size=DINOV2_IMAGE_SIZE
    )


def load_dinov2_weights(network: nn.Module, path: Path) -> None:
    """Load a DINOv2 checkpoint (the release's layout, or timm's) into ``network``, strictly."""
    from timm.models.vision_transformer import checkpoint_filter_fn

    hint = (
        f"Expected a DINOv2 state dict such as '{dinov2_weights_filename('vit_large_patch14_dinov2')}' "
        f"from {dinov2_weights_url('vit_large_patch14_dinov2')}, of the architecture chosen by "
        "`metrics.init_args.dinov2_model`."
    )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "pos_embed" not in state:
            raise ValueError(f"it holds a {type(state).__name__} without a 'pos_embed' entry")
        grid = network.patch_embed.grid_size[0]
        state = dict(state, pos_embed=dinov2_position_embedding(state["pos_embed"], grid))
        network.load_state_dict(checkpoint_filter_fn(state, network), strict=True)
    except Exception as err:  # unreadable file, wrong keys or shapes
        raise ValueError(
            f"The DINOv2 weights file '{path}' does not load into timm's "
            f"{getattr(network, 'default_cfg', {}).get('architecture', 'ViT')} ({type(err).__name__}: "
            f"{first_line(err, 300)}). {hint}"
        ) from err


class DINOv2Extractor(nn.Module):
    """DINOv2 ViT features of uint8 images, preprocessed as torch-fidelity's DINOv2 extractor.

    Output: a one-tuple ``(features (B, D),)``: the final-normalised class token (1024-d for
    ViT-L/14), in float32.

    Args:
        network: timm's DINOv2 ViT at 224 pixels with its head removed (:func:`dinov2_network`).
        architecture: its name in :data:`DINOV2_ARCHITECTURES`.
        weights_path: the file its weights came from (``None``: not from a file).
    """

    name = "dinov2"
    resize = DINOV2_RESIZE

    def __init__(self, network: nn.Module, architecture: str, weights_path: Path | None = None) -> None:
        super().__init__()
        self.network = network.eval().requires_grad_(False)
        self.architecture = architecture
        self.num_features = int(network.num_features)
        self.outputs = {"features": self.num_features}
        self.weights_path = None if weights_path is None else str(weights_path)
        self.weights_sha256 = None if weights_path is None else sha256_of_file(weights_path)
        self.identity = (
            f"{architecture}/sha256:{self.weights_sha256}/{DINOV2_IMAGE_SIZE}px/class-token"
        )

    def train(self, mode: bool = True) -> DINOv2Extractor:
        """Stay in evaluation mode."""
        return super().train(False)

    def preprocess(self, images: Tensor) -> Tensor:
        """uint8 ``(B, 3, H, W)`` -> the normalised float32 ``(B, 3, 224, 224)`` network input."""
        from torch_fidelity.interpolate_compat_tensorflow import (
            interpolate_bilinear_2d_like_tensorflow1x,
        )

        check_images(images)
        x = interpolate_bilinear_2d_like_tensorflow1x(
            images.float(), size=(DINOV2_IMAGE_SIZE, DINOV2_IMAGE_SIZE), align_corners=False
        )
        mean = torch.tensor(_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(_STD, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def forward(self, images: Tensor) -> tuple[Tensor]:
        """``(features (B, D),)`` for uint8 images."""
        return (self.network(self.preprocess(images)).float(),)

    def protocol(self) -> dict[str, object]:
        """The extractor's entries of a metrics protocol."""
        return {
            "dinov2_model": self.architecture,
            "dinov2_implementation": "timm VisionTransformer, DINOv2 release weights",
            "dinov2_weights_file": self.weights_path,
            "dinov2_weights_sha256": self.weights_sha256,
            "dinov2_resize": self.resize,
            "dinov2_feature_dim": self.num_features,
        }


def build_dinov2_extractor(architecture: str, weights_path: str | Path | None = None) -> DINOv2Extractor:
    """The DINOv2 extractor with the checkpoint found by :func:`resolve_dinov2_weights`."""
    network = dinov2_network(architecture)
    path = resolve_dinov2_weights(architecture, weights_path)
    load_dinov2_weights(network, path)
    return DINOv2Extractor(network, architecture, path)


__all__ = [
    "DINOV2_ARCHITECTURES",
    "DINOV2_IMAGE_SIZE",
    "DINOV2_RESIZE",
    "DINOv2Extractor",
    "DINOv2WeightsUnavailable",
    "build_dinov2_extractor",
    "dinov2_network",
    "dinov2_position_embedding",
    "dinov2_weights_filename",
    "dinov2_weights_url",
    "load_dinov2_weights",
    "resolve_dinov2_weights",
]
