"""Pure-torch operators of the papers (no Lightning, no configs): docs/operators.md."""

from giugan.ops.attention import SelfAttention
from giugan.ops.giu import GIU
from giugan.ops.involution import (
    IGANInvolution2d,
    Involution2d,
    igan_report_parameter_count,
    involution_aggregate,
)
from giugan.ops.rbn import RepresentativeBatchNorm2d
from giugan.ops.se import SqueezeExcitation
from giugan.ops.spectral import maybe_spectral_norm

__all__ = [
    "GIU",
    "IGANInvolution2d",
    "Involution2d",
    "RepresentativeBatchNorm2d",
    "SelfAttention",
    "SqueezeExcitation",
    "igan_report_parameter_count",
    "involution_aggregate",
    "maybe_spectral_norm",
]
