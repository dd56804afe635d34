"""Networks built from the operators (no Lightning, no losses): docs/architectures.md."""

from giugan.nets.backbone import Discriminator, Generator
from giugan.nets.blocks import ConvBlock
from giugan.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from giugan.nets.lsgan import LSGANDiscriminator, LSGANGenerator
from giugan.nets.presets import PRESETS, Preset, build_preset, preset_names

__all__ = [
    "PRESETS",
    "ConvBlock",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "Discriminator",
    "Generator",
    "LSGANDiscriminator",
    "LSGANGenerator",
    "Preset",
    "build_preset",
    "preset_names",
]
