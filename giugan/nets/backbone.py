"""The spectral-norm "DCGAN-like" backbone of heykeetae/Self-Attention-GAN (docs/architectures.md).

One backbone underlies WGAN-GP, SNGAN, the ablation baseline, GIU-GAN, SAGAN and WGAN-GP(+2/+3)
of GIU-GANs and the DCGAN/SAGAN/iGAN of the iGAN report. Blocks are numbered from 1; "slot i"
means "after block i's activation". What goes into a slot is data (``inserts``), so a user's own
``nn.Module`` plugs into the same places from YAML.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from giugan.ops.rbn import RepresentativeBatchNorm2d
from giugan.ops.spectral import maybe_spectral_norm
from giugan.validation import NETWORK_IMAGE_SIZES, check_int

Norm = Literal["batch", "none"]


def _check_image_size(image_size: int, owner: str) -> int:
    """Return the number of hidden blocks for ``image_size`` (32 -> 3, 64 -> 4)."""
    if image_size not in NETWORK_IMAGE_SIZES:
        raise ValueError(
            f"{owner}: image_size={image_size!r} is not supported; the backbone doubles the "
            f"resolution per block from 4x4, so image_size must be one of {NETWORK_IMAGE_SIZES} "
            f"(the papers use 32 for CIFAR-10 and 64 for CelebA)."
        )
    return int(math.log2(image_size)) - 2


def _check_inserts(
    inserts: dict[int, nn.Module] | None, slot_channels: dict[int, int], owner: str
) -> nn.ModuleDict:
    """Validate slot indices (and declared channels) and wrap the inserts in a ModuleDict."""
    modules = nn.ModuleDict()
    for slot, module in sorted((inserts or {}).items(), key=lambda kv: int(kv[0])):
        index = int(slot)
        if index not in slot_channels:
            raise ValueError(
                f"{owner}: inserts has slot {slot!r}, but this network only has slots "
                f"{sorted(slot_channels)} (slot i = after block i)."
            )
        if not isinstance(module, nn.Module):
            raise ValueError(
                f"{owner}: the insert for slot {index} is {type(module).__name__}, not an "
                f"nn.Module; give a class_path/init_args mapping or a module instance."
            )
        declared = getattr(module, "channels", None)
        if isinstance(declared, int) and declared != slot_channels[index]:
            raise ValueError(
                f"{owner}: the insert for slot {index} ({type(module).__name__}) has "
                f"channels={declared}, but block {index} outputs {slot_channels[index]} channels; "
                f"set its channels to {slot_channels[index]}."
            )
        modules[str(index)] = module
    return modules


def _resolve_rbn_blocks(
    rbn_blocks: list[int] | Literal["outer"] | None, num_blocks: int, owner: str
) -> set[int]:
    """Blocks whose BN becomes RBN; ``"outer"``: the first and last hidden one (docs/operators.md)."""
    if rbn_blocks is None:
        return set()
    if rbn_blocks == "outer":
        return {1, num_blocks}
    if isinstance(rbn_blocks, str):
        raise ValueError(
            f"{owner}: rbn_blocks={rbn_blocks!r} is not allowed; use 'outer' (first and last "
            f"hidden block, the GIU-GANs default), a list of block indices, or null."
        )
    chosen = {int(b) for b in rbn_blocks}
    bad = sorted(b for b in chosen if not 1 <= b <= num_blocks)
    if bad:
        raise ValueError(
            f"{owner}: rbn_blocks contains {bad}, but the generator has blocks 1..{num_blocks}."
        )
    return chosen


class Generator(nn.Module):
    """Backbone generator: ``ConvT(z->C1, k4 s1 p0)`` then ``ConvT k4 s2 p1`` blocks, Tanh output.

    Args:
        image_size: 32 (3 hidden blocks, CIFAR-10) or 64 (4 hidden blocks, CelebA); 16 and 128
            also build.
        z_dim: latent size (papers: 128).
        conv_dim: width of the last hidden block; block i has ``conv_dim * 2**(n - i)`` channels.
        spectral_norm: spectral norm on every hidden ConvT (never on the output ConvT).
        norm: ``"batch"`` (BN after every hidden ConvT) or ``"none"``.
        rbn_blocks: which hidden blocks use Representative BN instead of BN: ``"outer"`` (first
            and last hidden block: GIU-GANs "near the input and output layers"), a list, or None.
        inserts: modules run after block i, keyed by i (e.g. ``{1: GIU(256)}``).
    """

    def __init__(
        self,
        image_size: int = 32,
        z_dim: int = 128,
        conv_dim: int = 64,
        spectral_norm: bool = True,
        norm: Norm = "batch",
        rbn_blocks: list[int] | Literal["outer"] | None = None,
        inserts: dict[int, nn.Module] | None = None,
    ) -> None:
        super().__init__()
        owner = "Generator"
        num_blocks = _check_image_size(image_size, owner)
        check_int("z_dim", z_dim, owner=owner)
        check_int("conv_dim", conv_dim, owner=owner)
        if norm not in ("batch", "none"):
            raise ValueError(f"{owner}: norm={norm!r} is not allowed; use 'batch' or 'none'.")
        rbn = _resolve_rbn_blocks(rbn_blocks, num_blocks, owner)
        if rbn and norm == "none":
            raise ValueError(f"{owner}: rbn_blocks={sorted(rbn)} needs norm='batch'.")
        self.image_size = image_size
        self.z_dim = z_dim
        self.num_blocks = num_blocks
        channels = [conv_dim * 2 ** (num_blocks - i) for i in range(1, num_blocks + 1)]
        self.blocks = nn.ModuleList()
        in_channels = z_dim
        for index, out_channels in enumerate(channels, start=1):
            stride, padding = (1, 0) if index == 1 else (2, 1)
            conv = nn.ConvTranspose2d(in_channels, out_channels, 4, stride, padding)
            layers: list[nn.Module] = [maybe_spectral_norm(conv, spectral_norm)]
            if norm == "batch":
                bn_class = RepresentativeBatchNorm2d if index in rbn else nn.BatchNorm2d
                layers.append(bn_class(out_channels))
            layers.append(nn.ReLU(inplace=True))
            self.blocks.append(nn.Sequential(*layers))
            in_channels = out_channels
        self.slot_channels = dict(enumerate(channels, start=1))
        self.inserts = _check_inserts(inserts, self.slot_channels, owner)
        self.output = nn.Sequential(nn.ConvTranspose2d(in_channels, 3, 4, 2, 1), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        """Map latents (B, z_dim) to images (B, 3, image_size, image_size) in [-1, 1]."""
        x = z.view(z.shape[0], self.z_dim, 1, 1)
        for index, block in enumerate(self.blocks, start=1):
            x = block(x)
            if str(index) in self.inserts:
                x = self.inserts[str(index)](x)
        return self.output(x)


class Discriminator(nn.Module):
    """Backbone critic: ``SN-Conv k4 s2 p1 + LeakyReLU(0.1)`` blocks, ``Conv k4 s1 p0`` to a score.

    No normalisation (so the gradient penalty is per-sample). Block i has ``conv_dim * 2**(i-1)``
    channels. Returns one unbounded score per image, shape (B,).
    """

    def __init__(
        self,
        image_size: int = 32,
        conv_dim: int = 64,
        spectral_norm: bool = True,
        inserts: dict[int, nn.Module] | None = None,
    ) -> None:
        super().__init__()
        owner = "Discriminator"
        num_blocks = _check_image_size(image_size, owner)
        check_int("conv_dim", conv_dim, owner=owner)
        self.image_size = image_size
        self.num_blocks = num_blocks
        channels = [conv_dim * 2 ** (i - 1) for i in range(1, num_blocks + 1)]
        self.blocks = nn.ModuleList()
        in_channels = 3
        for out_channels in channels:
            conv = nn.Conv2d(in_channels, out_channels, 4, 2, 1)
            self.blocks.append(
                nn.Sequential(maybe_spectral_norm(conv, spectral_norm), nn.LeakyReLU(0.1, inplace=True))
            )
            in_channels = out_channels
        self.slot_channels = dict(enumerate(channels, start=1))
        self.inserts = _check_inserts(inserts, self.slot_channels, owner)
        self.output = nn.Conv2d(in_channels, 1, 4, 1, 0)

    def forward(self, x: Tensor) -> Tensor:
        """Scores (B,) for images (B, 3, image_size, image_size)."""
        for index, block in enumerate(self.blocks, start=1):
            x = block(x)
            if str(index) in self.inserts:
                x = self.inserts[str(index)](x)
        return torch.flatten(self.output(x), 1).squeeze(1)
