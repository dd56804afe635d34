"""giugan: GIU-GANs, iGAN and their baselines, with exact networks and a pinned metric protocol."""

__version__ = "0.1.0"
