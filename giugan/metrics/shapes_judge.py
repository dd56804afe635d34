"""The shapes judge: a small CNN that names the shape, colour and background of a shapes image.

The built-in shapes set (:mod:`giugan.data.shapes`) has 36 discrete modes (3 shapes x 6 colours
x 2 backgrounds). A classifier of those factors measures what a person would judge in generated
samples: are they recognisable shapes, and are all modes there in the right proportions? Like
the classifier-based mode counts on stacked MNIST (Srivastava et al. 2017, "VEEGAN", Table 2;
Lin et al. 2018, "PacGAN"), but for this set. The metric functions built on it are in
:mod:`giugan.metrics.shapes_scores`.

Every input is resized to :data:`JUDGE_IMAGE_SIZE` (32) pixels with antialiased bilinear
resampling (:func:`prepare_images`), so one network serves every supported image size; it was
trained on renders at 16, 32, 48 and 64 pixels passed through that same function. The packaged
weights are checked against :data:`SHAPES_JUDGE_SHA256` when loaded; they are reproduced by
``python scripts/train_shapes_judge.py``.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from giugan.messages import first_line
from giugan.metrics.extractors import sha256_of_file

__all__ = [
    "HEAD_SIZES",
    "JUDGE_IMAGE_SIZE",
    "SHAPES_JUDGE_SHA256",
    "SHAPES_JUDGE_WEIGHTS",
    "InvalidJudgeWeights",
    "JudgeExtractor",
    "JudgeOutputs",
    "ShapesJudge",
    "judge_images",
    "load_shapes_judge",
    "prepare_images",
]

#: Classes per head: shape (circle, square, triangle), colour (6), background (light, dark).
HEAD_SIZES: tuple[int, int, int] = (3, 6, 2)
#: The side every input is resized to.
JUDGE_IMAGE_SIZE = 32
#: The packaged weights and their sha256.
SHAPES_JUDGE_WEIGHTS = Path(__file__).with_name("weights") / "shapes_judge.pt"
SHAPES_JUDGE_SHA256 = "baa6c78ba5ef632a66a145f258ce30bfeec2998853faed885c5e3e5f64ffdad4"


class InvalidJudgeWeights(ValueError):
    """The shapes judge's weights file is missing, altered or not a judge's state dict."""


class ShapesJudge(nn.Module):
    """Four 3x3 conv-BN-ReLU blocks (16-32-64-64 channels), global average pooling, 64-d features.

    Args:
        width: Channels of the first block (the others are 2x, 4x, 4x).
        feature_dim: Size of the feature layer (the Fréchet distance is computed there).
    """

    def __init__(self, width: int = 16, feature_dim: int = 64) -> None:
        super().__init__()
        channels = (3, width, 2 * width, 4 * width, 4 * width)
        layers: list[nn.Module] = []
        for index, (inputs, outputs) in enumerate(itertools.pairwise(channels)):
            layers += [
                nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
                nn.BatchNorm2d(outputs),
                nn.ReLU(inplace=True),
            ]
            if index < len(channels) - 2:
                layers.append(nn.MaxPool2d(2))
        self.trunk = nn.Sequential(*layers)
        self.features = nn.Sequential(nn.Linear(channels[-1], feature_dim), nn.ReLU(inplace=True))
        self.heads = nn.ModuleList(nn.Linear(feature_dim, size) for size in HEAD_SIZES)

    def forward(self, images: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(B, 3, 32, 32)`` images in [-1, 1] -> (features ``(B, F)``, logits per head)."""
        features = self.features(self.trunk(images).mean(dim=(2, 3)))
        return features, [head(features) for head in self.heads]


class JudgeOutputs(NamedTuple):
    """The judge's verdict on a batch: features and per-head class probabilities."""

    features: Tensor  # (N, F) float32
    shape: Tensor  # (N, 3) probabilities
    colour: Tensor  # (N, 6)
    background: Tensor  # (N, 2)

    @property
    def probabilities(self) -> tuple[Tensor, Tensor, Tensor]:
        """The three heads' probabilities, in :data:`HEAD_SIZES` order."""
        return self.shape, self.colour, self.background


def prepare_images(images: Tensor) -> Tensor:
    """``uint8`` in [0, 255] or float in [-1, 1], ``(N, 3, H, W)`` -> float32 ``(N, 3, 32, 32)``.

    Float inputs are clamped to [-1, 1]; any other side is resized with antialiased bilinear
    resampling.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(
            f"The shapes judge expects an image batch of shape (N, 3, H, W); got "
            f"{tuple(images.shape)}. Stack RGB images along a first batch dimension."
        )
    if images.dtype == torch.uint8:
        images = images.float() / 127.5 - 1.0
    elif images.is_floating_point():
        images = images.float().clamp(-1.0, 1.0)
    else:
        raise ValueError(
            f"The shapes judge expects uint8 images in [0, 255] or float images in [-1, 1]; got "
            f"dtype {images.dtype}. Convert the batch to one of those."
        )
    if images.shape[-2:] != (JUDGE_IMAGE_SIZE, JUDGE_IMAGE_SIZE):
        images = F.interpolate(
            images,
            size=(JUDGE_IMAGE_SIZE, JUDGE_IMAGE_SIZE),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
    return images


def load_shapes_judge(path: str | Path | None = None, sha256: str | None = None) -> ShapesJudge:
    """The judge in eval mode, on CPU, from the packaged weights or a file of your own.

    Args:
        path: A state dict written by ``scripts/train_shapes_judge.py``; ``None`` for the
            packaged weights (then always checked against :data:`SHAPES_JUDGE_SHA256`).
        sha256: Expected sha256 of ``path`` (checked when given).

    Raises:
        InvalidJudgeWeights: the file is missing, its sha256 differs, or it does not load.
    """
    if path is None:
        path, sha256 = SHAPES_JUDGE_WEIGHTS, SHAPES_JUDGE_SHA256
    path = Path(path)
    if not path.is_file():
        raise InvalidJudgeWeights(
            f"The shapes judge's weights file '{path}' does not exist. Reinstall giugan (the file "
            "is package data) or train one with 'python scripts/train_shapes_judge.py --output "
            f"{path}'."
        )
    if sha256 is not None and (actual := sha256_of_file(path)) != sha256:
        raise InvalidJudgeWeights(
            f"The shapes judge's weights file '{path}' has sha256 {actual}, expected {sha256}: "
            "the file was altered or truncated, so its scores would not be comparable. Reinstall "
            "giugan, or retrain with 'python scripts/train_shapes_judge.py' and pass your file's "
            "own sha256."
        )
    judge = ShapesJudge()
    try:
        judge.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as err:  # re-raised with the file named
        raise InvalidJudgeWeights(
            f"The file '{path}' is not a shapes judge's state dict ({type(err).__name__}: "
            f"{first_line(err)}). Pass a file written by "
            "'python scripts/train_shapes_judge.py'."
        ) from err
    return judge.eval().requires_grad_(False)


@torch.no_grad()
def judge_images(
    images: Tensor, judge: ShapesJudge | None = None, batch_size: int = 500
) -> JudgeOutputs:
    """Run the judge (the packaged one when ``judge`` is ``None``) over ``images`` in batches."""
    judge = judge if judge is not None else _packaged_judge()
    device = next(judge.parameters()).device
    features, probabilities = [], [[] for _ in HEAD_SIZES]
    for start in range(0, images.shape[0], batch_size):
        batch = prepare_images(images[start : start + batch_size].to(device))
        batch_features, logits = judge(batch)
        features.append(batch_features.float().cpu())
        for collected, head_logits in zip(probabilities, logits):
            collected.append(head_logits.float().softmax(dim=1).cpu())
    if not features:
        raise ValueError("The shapes judge needs at least one image; got an empty batch.")
    return JudgeOutputs(torch.cat(features), *(torch.cat(p) for p in probabilities))


class JudgeExtractor(nn.Module):
    """The packaged judge as a feature extractor of the metric suite.

    Input: uint8 images ``(B, 3, H, W)``, resized by :func:`prepare_images`. Output: the four
    fields of :class:`JudgeOutputs` (64-d features, then the shape, colour and background
    probabilities), in float32.
    """

    name = "shapes_judge"
    resize = f"bilinear, antialias=True, {JUDGE_IMAGE_SIZE}x{JUDGE_IMAGE_SIZE}"

    def __init__(self) -> None:
        super().__init__()
        self.judge = load_shapes_judge()  # the packaged weights, sha256 checked
        feature_dim = self.judge.features[0].out_features
        self.outputs = dict(zip(JudgeOutputs._fields, (feature_dim, *HEAD_SIZES)))
        self.num_features = feature_dim
        self.weights_path = str(SHAPES_JUDGE_WEIGHTS)
        self.weights_sha256 = SHAPES_JUDGE_SHA256
        self.identity = f"shapes-judge/sha256:{SHAPES_JUDGE_SHA256}/{JUDGE_IMAGE_SIZE}px/features"

    def train(self, mode: bool = True) -> JudgeExtractor:
        """Stay in evaluation mode (BatchNorm statistics are part of the judge)."""
        return super().train(False)

    def forward(self, images: Tensor) -> JudgeOutputs:
        features, logits = self.judge(prepare_images(images))
        return JudgeOutputs(features.float(), *(head.float().softmax(dim=1) for head in logits))


_PACKAGED: list[ShapesJudge] = []


def _packaged_judge() -> ShapesJudge:
    if not _PACKAGED:
        _PACKAGED.append(load_shapes_judge())
    return _PACKAGED[0]
