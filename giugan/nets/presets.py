"""Named (generator, discriminator) pairs, one per table row of both papers.

A preset is a function returning ``(G, D)`` built from the same classes a YAML config uses; it is
never a subclass. The placements follow docs/architectures.md ("slot i" = after block i):

* GIU-GAN 32: GIU(256) after G block 1 and after D block 3; RBN in G blocks 1 and 3.
* GIU-GAN 64: GIU(512), GIU(256) after G blocks 1, 2; GIU(256), GIU(512) after D blocks 3, 4.
* SAGAN: self-attention after the last two hidden blocks of G and D.
* iGAN: IGANInvolution2d(64) after G block 4 and D block 1 (iGAN report section 4.2).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from giugan.nets.backbone import Discriminator, Generator
from giugan.nets.blocks import ConvBlock
from giugan.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from giugan.nets.lsgan import LSGANDiscriminator, LSGANGenerator
from giugan.ops import GIU, IGANInvolution2d, SelfAttention

Pair = tuple[nn.Module, nn.Module]


@dataclass(frozen=True)
class Preset:
    """A named network pair and the paper row it reproduces."""

    name: str
    build: Callable[[], Pair]
    description: str


def _giu(channels: int, **kwargs: int) -> GIU:
    return GIU(channels, **kwargs)


def giu_gan(
    image_size: int,
    g_slots: dict[int, int],
    d_slots: dict[int, int],
    rbn: bool = True,
    spectral_norm: bool = True,
    **giu_kwargs: int,
) -> Pair:
    """Backbone with GIU modules in the given slots (slot -> channels) and RBN in G's outer blocks."""
    generator = Generator(
        image_size,
        spectral_norm=spectral_norm,
        rbn_blocks="outer" if rbn else None,
        inserts={slot: _giu(c, **giu_kwargs) for slot, c in g_slots.items()},
    )
    discriminator = Discriminator(
        image_size,
        spectral_norm=spectral_norm,
        inserts={slot: _giu(c, **giu_kwargs) for slot, c in d_slots.items()},
    )
    return generator, discriminator


def backbone(image_size: int, spectral_norm: bool = True, rbn: bool = False) -> Pair:
    """The plain backbone (SNGAN / WGAN-GP / ablation baseline rows)."""
    return (
        Generator(image_size, spectral_norm=spectral_norm, rbn_blocks="outer" if rbn else None),
        Discriminator(image_size, spectral_norm=spectral_norm),
    )


def sagan(image_size: int, g_slots: dict[int, int], d_slots: dict[int, int]) -> Pair:
    """Backbone with self-attention in the given slots (slot -> channels)."""
    return (
        Generator(image_size, inserts={s: SelfAttention(c) for s, c in g_slots.items()}),
        Discriminator(image_size, inserts={s: SelfAttention(c) for s, c in d_slots.items()}),
    )


def wgan_gp_deeper(g_slots: dict[int, int], d_slots: dict[int, int]) -> Pair:
    """WGAN-GP(+n) at 64x64: extra 3x3 conv blocks in the given slots (GIU-GANs Table 6)."""
    return (
        Generator(
            64,
            spectral_norm=False,
            inserts={s: ConvBlock(c, norm="batch", activation="relu") for s, c in g_slots.items()},
        ),
        Discriminator(
            64,
            spectral_norm=False,
            inserts={
                s: ConvBlock(c, norm="none", activation="leaky_relu") for s, c in d_slots.items()
            },
        ),
    )


def igan(kernel_size: int = 3, groups: int = 4, reduction_ratio: int = 2) -> Pair:
    """iGAN at 64x64: one involution after G block 4 and one after D block 1 (both 64 channels)."""

    def layer() -> IGANInvolution2d:
        return IGANInvolution2d(64, kernel_size, groups, reduction_ratio)

    return Generator(64, inserts={4: layer()}), Discriminator(64, inserts={1: layer()})


_PRESETS: list[Preset] = [
    # --- GIU-GANs, CIFAR-10 (32x32) ---------------------------------------------------------
    Preset("dcgan_32", lambda: (DCGANGenerator(32), DCGANDiscriminator(32)),
           "Radford DCGAN at 32x32, no biases, no SN (Table 5)"),
    Preset("lsgan_32", lambda: (LSGANGenerator(32), LSGANDiscriminator(32)),
           "PyTorch-GAN LSGAN at 32x32, latent 100 (Table 5)"),
    Preset("wgan_gp_32", lambda: backbone(32, spectral_norm=False),
           "backbone without SN, for the WGAN-GP loss (Table 5)"),
    Preset("sngan_32", lambda: backbone(32), "backbone with SN on G and D (Table 5)"),
    Preset("baseline_32", lambda: backbone(32),
           "WGAN-GP with SN on G and D, the ablation baseline (Table 7)"),
    Preset("sagan_32", lambda: sagan(32, {2: 128, 3: 64}, {2: 128, 3: 256}),
           "backbone + self-attention after the last two hidden blocks (Table 5)"),
    Preset("giu_gan_32", lambda: giu_gan(32, {1: 256}, {3: 256}),
           "GIU(256) after G block 1 and D block 3, RBN in G blocks 1 and 3 (Tables 1-8)"),
    Preset("giu_gan_no_giu_32", lambda: backbone(32, rbn=True),
           "GIU-GAN without its GIU modules: backbone + RBN (Table 7)"),
    Preset("giu_gan_no_rbn_32", lambda: giu_gan(32, {1: 256}, {3: 256}, rbn=False),
           "GIU-GAN with plain BN (Table 8)"),
    Preset("giu_gan_middle_32", lambda: giu_gan(32, {2: 128}, {2: 128}),
           "GIU(128) after G block 2 and D block 2 (Table 1 'Middle D and G')"),
    Preset("giu_gan_shallow_d_deep_g_32", lambda: giu_gan(32, {3: 64}, {1: 64}),
           "GIU(64) after G block 3 and D block 1 (Table 1 'Shallow D and Deep G')"),
    Preset("giu_gan_all_32", lambda: giu_gan(32, {1: 256, 2: 128, 3: 64}, {1: 64, 2: 128, 3: 256}),
           "GIU after every hidden block of G and D (Table 1 'All the D and G')"),
    Preset("giu_gan_only_g_32", lambda: giu_gan(32, {1: 256}, {}),
           "GIU(256) after G block 1 only (Table 1 'Only G')"),
    Preset("giu_gan_only_d_32", lambda: giu_gan(32, {}, {3: 256}),
           "GIU(256) after D block 3 only (Table 1 'Only D')"),
    Preset("giu_gan_k5_32", lambda: giu_gan(32, {1: 256}, {3: 256}, kernel_size=5),
           "GIU-GAN with K=5 (Table 4)"),
    Preset("giu_gan_k7_32", lambda: giu_gan(32, {1: 256}, {3: 256}, kernel_size=7),
           "GIU-GAN with K=7 (Table 4)"),
    Preset("giu_gan_gc8_32", lambda: giu_gan(32, {1: 256}, {3: 256}, group_channels=8),
           "GIU-GAN with group_channels=8 (Table 4)"),
    Preset("giu_gan_gc32_32", lambda: giu_gan(32, {1: 256}, {3: 256}, group_channels=32),
           "GIU-GAN with group_channels=32 (Table 4)"),
    # --- GIU-GANs, CelebA (64x64) -----------------------------------------------------------
    Preset("wgan_gp_64", lambda: backbone(64, spectral_norm=False),
           "backbone without SN, for the WGAN-GP loss (Table 6)"),
    Preset("wgan_gp_plus2_64", lambda: wgan_gp_deeper({1: 512, 2: 256}, {3: 256, 4: 512}),
           "WGAN-GP + 2 extra 3x3 conv blocks in G and in D (Table 6)"),
    Preset("wgan_gp_plus3_64",
           lambda: wgan_gp_deeper({1: 512, 2: 256, 3: 128}, {1: 64, 3: 256, 4: 512}),
           "WGAN-GP + 3 extra conv blocks in G and D; placement unresolved (Table 6)"),
    Preset("lsgan_64", lambda: (LSGANGenerator(64), LSGANDiscriminator(64)),
           "the 32x32 LSGAN recipe at 64x64; does not match the paper's row (Table 6)"),
    Preset("sngan_64", lambda: backbone(64), "backbone with SN on G and D (Table 6)"),
    Preset("sagan_64", lambda: sagan(64, {3: 128, 4: 64}, {3: 256, 4: 512}),
           "heykeetae SAGAN: attention after the last two hidden blocks (Table 6)"),
    Preset("giu_gan_64", lambda: giu_gan(64, {1: 512, 2: 256}, {3: 256, 4: 512}),
           "four GIU modules, RBN in G blocks 1 and 4 (Tables 6, 8)"),
    Preset("giu_gan_no_rbn_64", lambda: giu_gan(64, {1: 512, 2: 256}, {3: 256, 4: 512}, rbn=False),
           "GIU-GAN 64 with plain BN (Table 8)"),
    # --- iGAN report (CelebA 64x64) ---------------------------------------------------------
    Preset("igan_dcgan_64", lambda: backbone(64),
           "the report's 'DCGAN': the SN backbone (iGAN report section 4.2)"),
    Preset("igan_sagan_64", lambda: sagan(64, {4: 64}, {1: 64}),
           "SA(64) after G block 4 and D block 1 (iGAN report section 4.2)"),
    Preset("igan_64", lambda: igan(3, 4, 2), "iGAN, case 1: K3 G4 R2 (iGAN report Table 2)"),
    Preset("igan_case2_64", lambda: igan(7, 4, 8), "iGAN case 2: K7 G4 R8 (report Table 2)"),
    Preset("igan_case3_64", lambda: igan(7, 4, 2), "iGAN case 3: K7 G4 R2 (report Table 2)"),
    Preset("igan_case4_64", lambda: igan(3, 4, 8), "iGAN case 4: K3 G4 R8 (report Table 2)"),
    Preset("igan_case5_64", lambda: igan(3, 1, 2), "iGAN case 5: K3 G1 R2 (report Table 2)"),
    Preset("igan_case6_64", lambda: igan(1, 4, 2), "iGAN case 6: K1 G4 R2 (report Table 2)"),
    Preset("igan_case7_64", lambda: igan(5, 4, 2), "iGAN case 7: K5 G4 R2 (report Table 2)"),
]
PRESETS: dict[str, Preset] = {preset.name: preset for preset in _PRESETS}


def preset_names() -> list[str]:
    """All preset names, in table order."""
    return [preset.name for preset in _PRESETS]


def check_preset_name(name: str) -> str:
    """Return ``name`` if it is a known preset.

    Raises:
        ValueError: unknown name (the message lists close matches and all names).
    """
    if name not in PRESETS:
        close = difflib.get_close_matches(str(name), PRESETS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown preset {name!r}.{hint} Known presets: {', '.join(preset_names())}. "
            f"Run `giugan profile --all` to see which table row each one reproduces."
        )
    return name


def build_preset(name: str) -> Pair:
    """Build the ``(generator, discriminator)`` pair of preset ``name``.

    Raises:
        ValueError: unknown name (the message lists close matches and all names).
    """
    return PRESETS[check_preset_name(name)].build()
