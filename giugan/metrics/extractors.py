"""Feature extractors for FID, IS and KID.

Two extractors share one interface: ``extractor(images_uint8) -> (features, logits)`` with
``images_uint8`` of shape ``(B, 3, H, W)`` (dtype ``torch.uint8``, values 0..255), ``features`` of
shape ``(B, num_features)`` (FID/KID) and ``logits`` of shape ``(B, num_classes)`` (IS). Each also
carries the attributes that define a metric protocol: ``name``, ``num_features``, ``num_classes``,
``resize`` (how images reach the network's input size) and ``identity`` (a string that changes
whenever the features could change: weights hash, seed, dimensions).

* :class:`InceptionExtractor` — the TF-compatible InceptionV3 of torch-fidelity, through its
  public ``torch_fidelity.feature_extractor_inceptionv3.FeatureExtractorInceptionV3``, which
  resizes to 299x299 with the TF-1.x bilinear resize (no antialiasing) that the original TF FID
  code uses. One forward pass yields both the 2048-d pool features (feature ``"2048"``: FID, KID)
  and the 1008-d ``"logits_unbiased"`` (IS, as in torch-fidelity and torchmetrics'
  ``InceptionScore``). Weights come from a local file
  (argument or ``GIUGAN_INCEPTION_WEIGHTS``) or from torch-fidelity's release via the torch hub
  cache; when neither works, :class:`InceptionWeightsUnavailable` says what to do.
* :class:`StandInExtractor` — a tiny deterministic random conv net for tests and for the
  quickstart on machines without the Inception weights. **It is not Inception: its FID/IS/KID
  values are not comparable with any published number.**

Sharing one extractor between FID, IS and KID:
:func:`giugan.metrics.features.extract_features` runs it once per batch for every score (see
:class:`giugan.metrics.score.PrecomputedFeatures` for why).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from giugan.messages import first_line

#: Environment variable naming a local Inception weights file.
WEIGHTS_ENV_VAR = "GIUGAN_INCEPTION_WEIGHTS"
#: File name of torch-fidelity's TF-ported InceptionV3 weights (also its torch hub cache name).
INCEPTION_WEIGHTS_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
#: Where torch-fidelity (and torchmetrics' FID) download that file from.
INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    + INCEPTION_WEIGHTS_FILENAME
)
#: The resize of the TF-compatible protocol, as recorded in protocols and reference keys.
INCEPTION_RESIZE = (
    "bilinear, antialias=False, 299x299 (torch-fidelity interpolate_bilinear_2d_like_tensorflow1x)"
)
#: The clean-fid resize (Parmar et al. 2022, "On aliased resizing and surprising subtleties in GAN
#: evaluation"), as recorded in protocols and reference keys.
CLEAN_RESIZE = (
    "clean: PIL bicubic with antialias per channel in float32 to 299x299 (clean-fid), rounded "
    "to uint8"
)
#: ``resize`` option -> its protocol description.
RESIZES = {"tensorflow": INCEPTION_RESIZE, "clean": CLEAN_RESIZE}
#: The config key that points at a weights file (stated in error messages).
WEIGHTS_CONFIG_KEY = "metrics.init_args.weights_path"

ExtractorName = Literal["inception", "standin"]
ResizeName = Literal["tensorflow", "clean"]


class WeightsUnavailable(RuntimeError):
    """An extractor's weights file is missing and cannot be downloaded.

    ``reason`` is the cause alone, so that a command with other option names (``giugan eval``'s
    ``--metrics.*``) can say the same with its own (:meth:`message`).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(self.message())

    def message(self, prefix: str = "--model.metrics.init_args.") -> str:
        """The one paragraph: what is missing, where to get it, and the command's flag for the
        file (``prefix`` + the option name, e.g. ``--metrics.`` under ``giugan eval``)."""
        return self.reason


class InceptionWeightsUnavailable(WeightsUnavailable):
    """The Inception weights file is missing and cannot be downloaded."""

    def message(self, prefix: str = "--model.metrics.init_args.") -> str:
        return unavailable_message(self.reason, f"{prefix}weights_path")


class InvalidInceptionWeights(ValueError):
    """A weights file exists but is not the expected InceptionV3 state dict."""


def unavailable_message(reason: str, option: str = f"--model.{WEIGHTS_CONFIG_KEY}") -> str:
    """The paragraph for missing Inception weights; ``option`` is the command's own flag."""
    return (
        f"The Inception weights needed for FID/IS/KID are unavailable: {reason}. giugan measures "
        "with torch-fidelity's TF-compatible InceptionV3, whose weights file is "
        f"'{INCEPTION_WEIGHTS_FILENAME}', published at {INCEPTION_WEIGHTS_URL}. Download it on a "
        "machine with internet access, copy it to this machine and point to it with the config "
        f"key `{WEIGHTS_CONFIG_KEY}` (e.g. `{option} /path/to/"
        f"{INCEPTION_WEIGHTS_FILENAME}`) or the environment variable {WEIGHTS_ENV_VAR}, or put "
        f"it in the torch hub cache ({_hub_cache_path()}) where it is found automatically. To "
        "train without these metrics set `metrics.init_args.on_missing_weights: warn`; "
        "`metrics.init_args.extractor: standin` gives numbers that are NOT comparable with papers."
    )


def _hub_cache_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILENAME


def sha256_of_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def clean_resize(images: Tensor, size: int = 299) -> Tensor:
    """Resize uint8 images ``(B, 3, H, W)`` as clean-fid does, then round back to uint8.

    Each channel becomes a float32 PIL image (mode "F") resized with ``Image.BICUBIC``, which
    antialiases when downscaling (clean-fid's "clean" mode: Parmar et al. 2022). The result is
    clipped to [0, 255] and rounded to uint8 because torch-fidelity's network takes uint8 input
    (clean-fid feeds the floats on: the rounding moves a pixel by at most half a grey level).
    """
    import numpy as np
    from PIL import Image

    pixels = images.detach().cpu().numpy().astype(np.float32)
    resized = np.empty((*pixels.shape[:2], size, size), dtype=np.float32)
    for index, image in enumerate(pixels):
        for channel, plane in enumerate(image):
            picture = Image.fromarray(plane).resize((size, size), resample=Image.BICUBIC)
            resized[index, channel] = np.asarray(picture)
    rounded = np.rint(np.clip(resized, 0.0, 255.0)).astype(np.uint8)
    return torch.from_numpy(rounded).to(images.device)


def _download_weights(url: str, destination: Path, hash_prefix: str | None = None) -> None:
    """Download ``url`` to ``destination`` (torch hub writes a temporary file, then moves it; with
    ``hash_prefix``, only if the file's sha256 starts with it)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(destination), hash_prefix=hash_prefix, progress=False)


def find_weights_file(
    given: str | Path | None,
    given_by: str,
    cached: Path,
    url: str,
    unavailable: Callable[[str], WeightsUnavailable],
    hash_prefix: str | None = None,
) -> Path:
    """An extractor's weights file: ``given`` (named in messages as ``given_by``, e.g. its
    config key), else ``cached`` (the torch hub cache), else a download of ``url`` into it.

    Raises:
        WeightsUnavailable: made by ``unavailable(reason)`` when ``given`` is not a file, or
            nothing is cached and the download failed (no network, proxy, HTTP error, disk).
    """
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise unavailable(f"{given_by} points at '{path}', which is not an existing file")
        return path
    if cached.is_file():
        return cached
    try:
        _download_weights(url, cached, hash_prefix)
    except Exception as err:  # every failure means "unavailable"
        raise unavailable(
            f"no local file was given and downloading it to '{cached}' failed "
            f"({type(err).__name__}: {first_line(err)})"
        ) from err
    if not cached.is_file():
        raise unavailable(f"the download finished but '{cached}' does not exist")
    return cached


def resolve_inception_weights(weights_path: str | Path | None = None) -> Path:
    """Find the Inception weights file, downloading it into the torch hub cache if needed.

    Order: ``weights_path`` argument, then ``$GIUGAN_INCEPTION_WEIGHTS``, then the torch hub cache
    (where torch-fidelity/torchmetrics keep it), then a download from torch-fidelity's release.

    Raises:
        InceptionWeightsUnavailable: a given path does not exist, or nothing is cached and the
            download failed (no network); the message says where to get the file.
    """
    if weights_path is None and os.environ.get(WEIGHTS_ENV_VAR):
        weights_path = os.environ[WEIGHTS_ENV_VAR]
        source = f"environment variable {WEIGHTS_ENV_VAR}"
    else:
        source = f"`{WEIGHTS_CONFIG_KEY}`"
    return find_weights_file(
        weights_path, source, _hub_cache_path(), INCEPTION_WEIGHTS_URL, InceptionWeightsUnavailable
    )


class InceptionExtractor(nn.Module):
    """TF-compatible InceptionV3 (torch-fidelity weights) giving pool features and logits at once.

    Input: uint8 images ``(B, 3, H, W)``; they are resized to 299x299 with torch-fidelity's
    TF-1.x-compatible bilinear resize (no antialiasing; ``resize="tensorflow"``) or first with
    :func:`clean_resize` (``resize="clean"``, after which the TF resize of a 299x299 image is
    the identity), scaled by ``(x - 128) / 128`` and
    passed through the network in float32. Output: ``(features (B, 2048), logits (B, 1008))``
    where the logits are torch-fidelity's ``logits_unbiased`` used for the Inception Score.

    Args:
        weights_path: local weights file; ``None`` uses ``$GIUGAN_INCEPTION_WEIGHTS``, the torch
            hub cache, or a download (see :func:`resolve_inception_weights`).
        weights_sha256: if given, the file's sha256 must start with this hex string.
        resize: "tensorflow" (the TF FID code's bilinear resize; the published protocol) or
            "clean" (clean-fid's PIL bicubic with antialias).

    Raises:
        InceptionWeightsUnavailable: no file and no download.
        InvalidInceptionWeights: the file is unreadable, not a state dict, has the wrong
            keys/shapes, or does not match ``weights_sha256``.
    """

    name = "inception"
    num_features = 2048
    num_classes = 1008

    def __init__(
        self,
        weights_path: str | Path | None = None,
        weights_sha256: str | None = None,
        resize: ResizeName = "tensorflow",
    ) -> None:
        super().__init__()
        if resize not in RESIZES:
            raise ValueError(
                f"Unknown resize {resize!r} (`metrics.init_args.resize`); choose 'tensorflow' "
                "(bilinear without antialiasing, the TF FID code and published tables) or "
                "'clean' (PIL bicubic with antialiasing, as clean-fid)."
            )
        self.resize_mode = resize
        self.resize = RESIZES[resize]
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = resolve_inception_weights(weights_path)
        digest = sha256_of_file(path)
        if weights_sha256 is not None and not digest.startswith(weights_sha256.lower()):
            raise InvalidInceptionWeights(
                f"The Inception weights file '{path}' has sha256 {digest}, which does not start "
                f"with the expected '{weights_sha256}'. The file is corrupt or another model; "
                f"download '{INCEPTION_WEIGHTS_FILENAME}' again from {INCEPTION_WEIGHTS_URL} (or "
                "fix `weights_sha256`)."
            )
        hint = (
            f"Expected torch-fidelity's InceptionV3 state dict '{INCEPTION_WEIGHTS_FILENAME}' "
            f"from {INCEPTION_WEIGHTS_URL}; download it again and point "
            f"`{WEIGHTS_CONFIG_KEY}` or {WEIGHTS_ENV_VAR} at it."
        )
        try:  # safe load first: a garbage or malicious pickle fails here, with a clear message
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise InvalidInceptionWeights(
                f"The Inception weights file '{path}' (sha256 {digest[:16]}...) cannot be read as "
                f"a PyTorch state dict ({type(err).__name__}: {first_line(err)}). "
                + hint
            ) from err
        if not isinstance(state_dict, dict) or not all(
            isinstance(k, str) and isinstance(v, Tensor) for k, v in state_dict.items()
        ):
            raise InvalidInceptionWeights(
                f"The Inception weights file '{path}' holds a {type(state_dict).__name__}, not a "
                "state dict of named tensors. " + hint
            )
        del state_dict
        try:
            self.network = FeatureExtractorInceptionV3(
                name="inception-v3-compat",
                features_list=["2048", "logits_unbiased"],
                feature_extractor_weights_path=str(path),
            )
        except Exception as err:  # strict load_state_dict: missing/unexpected keys, wrong shapes
            raise InvalidInceptionWeights(
                f"The file '{path}' (sha256 {digest[:16]}...) is not a valid InceptionV3 state "
                f"dict for torch-fidelity's network: {first_line(err, 300)}. " + hint
            ) from err
        self.network.requires_grad_(False)
        self.weights_path = str(path)
        self.weights_sha256 = digest
        self.identity = f"inception-v3-compat/sha256:{digest}"
        self.outputs = {"features": self.num_features, "logits": self.num_classes}

    def train(self, mode: bool = True) -> InceptionExtractor:
        """Stay in evaluation mode (BatchNorm statistics are part of the protocol)."""
        return super().train(False)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(pool features (B, 2048), logits_unbiased (B, 1008))`` for uint8 images."""
        check_images(images)
        if self.resize_mode == "clean":
            images = clean_resize(images, 299)
        features, logits = self.network(images)
        return features.reshape(images.shape[0], -1), logits.reshape(images.shape[0], -1)


class StandInExtractor(nn.Module):
    """A tiny deterministic stand-in for Inception — NOT Inception, numbers not comparable.

    Two strided 3x3 convolutions with ReLU and a global average pool give ``num_features``
    features; a fixed linear map of the per-image standardised features gives ``num_classes``
    logits. All weights are drawn from a
    ``torch.Generator`` seeded with ``seed``, so the same seed gives the same features on every
    machine, with no download. Images of any size work (no resize; the pool is adaptive). Use it
    for tests and for the quickstart without the Inception weights; its FID/IS/KID only compare
    runs made with the same stand-in, never with published tables.
    """

    name = "standin"
    resize = "none (stand-in extractor: adaptive average pooling)"

    def __init__(self, num_features: int = 64, num_classes: int = 10, seed: int = 0) -> None:
        super().__init__()
        if num_features < 1 or num_classes < 2:
            raise ValueError(
                f"StandInExtractor needs num_features >= 1 and num_classes >= 2, got "
                f"num_features={num_features}, num_classes={num_classes}."
            )
        generator = torch.Generator().manual_seed(seed)
        hidden = 32

        def draw(*shape: int, fan_in: int) -> Tensor:
            return torch.randn(*shape, generator=generator) * (2.0 / fan_in) ** 0.5

        self.register_buffer("conv1_weight", draw(hidden, 3, 3, 3, fan_in=27))
        self.register_buffer("conv1_bias", draw(hidden, fan_in=27) * 0.1)
        self.register_buffer("conv2_weight", draw(num_features, hidden, 3, 3, fan_in=9 * hidden))
        self.register_buffer("conv2_bias", draw(num_features, fan_in=9 * hidden) * 0.1)
        self.register_buffer("classifier", draw(num_classes, num_features, fan_in=num_features))
        self.num_features = num_features
        self.num_classes = num_classes
        self.seed = seed
        self.weights_path: str | None = None
        self.weights_sha256: str | None = None
        self.identity = f"standin-seed{seed}-features{num_features}-classes{num_classes}"
        self.outputs = {"features": num_features, "logits": num_classes}

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(features (B, num_features), logits (B, num_classes))`` for uint8 images."""
        check_images(images)
        x = images.to(self.conv1_weight.dtype) / 127.5 - 1.0
        x = F.relu(F.conv2d(x, self.conv1_weight, self.conv1_bias, stride=2, padding=1))
        x = F.relu(F.conv2d(x, self.conv2_weight, self.conv2_bias, stride=2, padding=1))
        features = x.mean(dim=(2, 3))
        # Logits from the per-image standardised features, so that they depend on the pattern of
        # the features rather than their common level (otherwise every image gets the same
        # class distribution and the IS is ~1 for any input).
        pattern = F.layer_norm(features, (self.num_features,))
        return features, 4.0 * pattern @ self.classifier.t()


def check_images(images: Tensor) -> None:
    """Raise unless ``images`` is a uint8 ``(B, 3, H, W)`` batch."""
    if not isinstance(images, Tensor) or images.dtype != torch.uint8:
        raise TypeError(
            "Feature extractors take uint8 images in [0, 255]; got "
            + (f"dtype {images.dtype}" if isinstance(images, Tensor) else type(images).__name__)
            + ". Quantise generator output with giugan.metrics.quantize_images first."
        )
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(
            f"Feature extractors take images of shape (B, 3, H, W); got {tuple(images.shape)}."
        )


def build_standin(weights_path: str | Path | None = None, resize: ResizeName = "tensorflow") -> StandInExtractor:
    """The stand-in with the suite's Inception options checked: a weights path warns (it would be
    ignored) and ``resize="clean"`` is refused (the stand-in never resizes)."""
    if resize != "tensorflow":
        raise ValueError(
            f"`metrics.init_args.resize: {resize}` applies to the Inception extractor only: the "
            "stand-in takes images of any size without resizing. Remove the option or use "
            "`extractor: inception`."
        )
    if weights_path is not None:
        warnings.warn(
            f"weights_path='{weights_path}' is ignored: the stand-in extractor has no weights "
            "file (its weights are drawn from a fixed seed).",
            stacklevel=3,
        )
    return StandInExtractor()


__all__ = [
    "CLEAN_RESIZE",
    "INCEPTION_RESIZE",
    "INCEPTION_WEIGHTS_FILENAME",
    "INCEPTION_WEIGHTS_URL",
    "WEIGHTS_ENV_VAR",
    "ExtractorName",
    "InceptionExtractor",
    "InceptionWeightsUnavailable",
    "InvalidInceptionWeights",
    "StandInExtractor",
    "WeightsUnavailable",
    "build_standin",
    "check_images",
    "clean_resize",
    "resolve_inception_weights",
    "sha256_of_file",
]
