"""Parameter/MAC counting with the 2020 thop rules (``docs/counting.md``): exact integers.

Module and network counts (G + D, batch 1) and the counting rules' edge cases.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from giugan.nets import Discriminator, Generator, build_preset
from giugan.ops import (
    GIU,
    IGANInvolution2d,
    Involution2d,
    RepresentativeBatchNorm2d,
    SelfAttention,
    SqueezeExcitation,
    igan_report_parameter_count,
)
from giugan.profiling.counting import (
    count,
    count_module_macs,
    count_pair,
    counted_type,
    trainable_parameters,
)
from giugan.profiling.profile import ProfileCache

# Batch-1 counting is tiny work: one intra-op thread is faster on a shared machine.
pytestmark = pytest.mark.usefixtures("single_thread")


# --------------------------------------------------------------------------------------------
# Module parameter counts
# --------------------------------------------------------------------------------------------


def test_module_parameter_targets() -> None:
    assert trainable_parameters(Involution2d(256, 3, group_channels=16, reduction_ratio=4)) == 25_872
    assert trainable_parameters(IGANInvolution2d(64, 3, 4, 2)) == 3_300
    assert trainable_parameters(SqueezeExcitation(256, 16, bias=True)) == 8_464
    assert trainable_parameters(SqueezeExcitation(256, 16, bias=False)) == 8_192
    assert trainable_parameters(GIU(256)) == 34_336
    assert trainable_parameters(GIU(512)) == 136_256
    for channels in (3, 64, 256):
        assert trainable_parameters(RepresentativeBatchNorm2d(channels)) == 5 * channels
    for channels, expected in ((64, 5_201), (128, 20_641), (256, 82_241), (512, 328_321)):
        assert trainable_parameters(SelfAttention(channels)) == expected


def test_report_formula_helper_targets() -> None:
    cases = [(3, 4, 2), (7, 4, 8), (7, 4, 2), (3, 4, 8), (3, 1, 2), (1, 4, 2), (5, 4, 2)]
    values = [igan_report_parameter_count(64, k, g, r) for k, g, r in cases]
    assert values == [800, 520, 2_080, 200, 2_336, 544, 1_312]


@pytest.mark.parametrize(
    ("channels", "size", "expected"),
    [(256, 4, 426_496), (128, 8, 428_672), (64, 16, 443_968), (512, 4, 1_688_576),
     (256, 8, 1_680_640)],
)
def test_giu_module_macs(channels: int, size: int, expected: int) -> None:
    """One GIU's thop MACs (SE pool + 2 Linear + reduce conv + BN + span conv)."""
    x = torch.zeros(1, channels, size, size)
    assert count_module_macs(GIU(channels), x) == expected


@pytest.mark.parametrize("channels", [64, 128])
def test_self_attention_macs_count_only_the_three_convs(channels: int) -> None:
    """``H*W*(C+1)*(C/8 + C/8 + C)``; bmm and softmax count 0."""
    x = torch.zeros(1, channels, 8, 8)
    expected = 64 * (channels + 1) * (channels // 8 * 2 + channels)
    assert count_module_macs(SelfAttention(channels), x) == expected


# --------------------------------------------------------------------------------------------
# Network targets (params and MACs, G + D, batch 1)
# --------------------------------------------------------------------------------------------

# preset: (params, MACs with ReLU = 0, MACs with ReLU = 1 op/element or None)
NETWORK_TARGETS = {
    "sngan_32": (1_847_044, 96_357_377, 96_386_049),
    "wgan_gp_32": (1_847_044, 96_357_377, 96_386_049),
    "sngan_64": (6_571_780, 536_457_217, 536_580_097),
    "wgan_gp_64": (6_571_780, 536_457_217, 536_580_097),
    "dcgan_32": (4_341_248, 309_239_808, None),
    "lsgan_32": (1_149_284, 117_249_536, None),
    "sagan_32": (1_975_768, 101_646_337, None),
    "sagan_64": (7_008_184, 557_582_337, None),
    "giu_gan_no_rbn_32": (1_915_716, 97_210_369, None),
    "giu_gan_no_rbn_64": (6_912_964, 543_195_649, None),
    # RBN: +3C params per replaced BN; MACs +2C per RBN (see test_rbn_net_mac_change).
    "giu_gan_32": (1_916_676, 97_211_009, None),
    "giu_gan_64": (6_914_692, 543_196_801, None),
    "wgan_gp_plus2_64": (12_473_092, 687_575_041, 687_722_497),
    "igan_64": (6_578_380, None, None),
}


@pytest.mark.parametrize("preset", sorted(NETWORK_TARGETS))
def test_network_targets(cache: ProfileCache, preset: str) -> None:
    params, macs, relu_macs = NETWORK_TARGETS[preset]
    counts = cache.pair(preset)
    assert counts.params == params
    if macs is not None:
        assert counts.macs() == macs
    if relu_macs is not None:
        assert counts.macs(relu_ops=True) == relu_macs


@pytest.mark.parametrize(
    ("size", "g_params", "d_params"), [(32, 1_184_067, 662_977), (64, 3_807_043, 2_764_737)]
)
def test_backbone_generator_and_discriminator_separately(
    cache: ProfileCache, size: int, g_params: int, d_params: int
) -> None:
    counts = cache.pair(f"sngan_{size}")
    assert (counts.generator_params, counts.discriminator_params) == (g_params, d_params)
    assert counts.generator() + counts.discriminator() == counts.macs()


def test_wgan_gp_relu_rule_adds_one_op_per_hidden_generator_activation(cache: ProfileCache) -> None:
    """G's hidden activations: 256*4*4 + 128*8*8 + 64*16*16 = 28,672 at 32x32; D has no ReLU."""
    counts = cache.pair("wgan_gp_32")
    assert counts.generator_relu == 28_672
    assert counts.discriminator_relu == 0
    assert cache.pair("wgan_gp_64").generator_relu == 122_880


def test_count_is_a_pure_function_of_the_two_networks(cache: ProfileCache) -> None:
    generator, discriminator = build_preset("sagan_32")
    assert count(generator, discriminator) == (1_975_768, 101_646_337)
    assert count(generator, discriminator, relu_ops=True) == (1_975_768, 101_675_009)
    assert count(generator, discriminator) == (1_975_768, 101_646_337)  # repeatable


def test_rbn_net_mac_change(cache: ProfileCache) -> None:
    """RBN is not counted as BatchNorm (exact types) but its pool runs twice per call.

    Each RBN(C) on C x H x W: BN's 2*C*H*W disappears, 2 * (H*W + 1) * C of pooling appears,
    a net +2C: +2*(256 + 64) = +640 at 32x32 and +2*(512 + 64) = +1,152 at 64x64.
    """
    assert cache.pair("giu_gan_32").macs() - cache.pair("giu_gan_no_rbn_32").macs() == 640
    assert cache.pair("giu_gan_64").macs() - cache.pair("giu_gan_no_rbn_64").macs() == 1_152
    assert cache.pair("giu_gan_32").params - cache.pair("giu_gan_no_rbn_32").params == 960


# --------------------------------------------------------------------------------------------
# Rule edge cases
# --------------------------------------------------------------------------------------------


def test_spectral_norm_conv_is_counted_as_conv2d_exactly_once() -> None:
    plain = nn.Conv2d(3, 8, 3, padding=1)
    normed = spectral_norm(nn.Conv2d(3, 8, 3, padding=1))
    assert type(normed).__name__ == "ParametrizedConv2d"
    assert counted_type(normed) is nn.Conv2d
    x = torch.zeros(1, 3, 5, 5)
    expected = 8 * 5 * 5 * (3 * 9 + 1)
    assert count_module_macs(plain, x) == expected
    assert count_module_macs(nn.Sequential(normed), x) == expected
    # u and v are buffers: trainable parameters are the weight and the bias only.
    assert trainable_parameters(normed) == 8 * 3 * 9 + 8


class _LinearScaledWeight(nn.Module):
    """A parametrization that runs a registered-type module (Linear) inside its forward."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Linear(1, 1)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.scale(torch.ones(1, 1, device=weight.device)).squeeze()


def test_parametrization_submodules_are_not_counted() -> None:
    conv = nn.Conv2d(4, 4, 1, bias=False)
    parametrize.register_parametrization(conv, "weight", _LinearScaledWeight())
    x = torch.zeros(1, 4, 3, 3)
    assert count_module_macs(conv, x) == 4 * 9 * 4
    assert count_module_macs(nn.Sequential(conv, nn.Sequential(conv)), x) == 2 * 4 * 9 * 4


def test_rbn_is_counted_only_through_its_pooling() -> None:
    channels, size = 16, 4
    x = torch.zeros(1, channels, size, size)
    assert count_module_macs(RepresentativeBatchNorm2d(channels), x) == 2 * (size * size + 1) * channels
    assert count_module_macs(nn.BatchNorm2d(channels), x) == 2 * channels * size * size

    class MyNorm(nn.BatchNorm2d):
        pass

    assert count_module_macs(MyNorm(channels), x) == 0  # exact types only, like thop


def test_rules_for_each_registered_type() -> None:
    x = torch.zeros(1, 4, 8, 8)
    assert count_module_macs(nn.LeakyReLU(0.2), x) == 256
    assert count_module_macs(nn.ReLU(), x) == 0
    assert count_module_macs(nn.ReLU(), x, relu_ops=True) == 256
    assert count_module_macs(nn.AvgPool2d(2), x) == 4 * 4 * 4
    assert count_module_macs(nn.AdaptiveAvgPool2d(2), x) == (16 + 1) * 4 * 2 * 2
    assert count_module_macs(nn.AdaptiveAvgPool2d(1), x) == (64 + 1) * 4
    assert count_module_macs(nn.Linear(10, 3), torch.zeros(1, 10)) == 30
    # grouped conv: C_in/groups per output element, plus the bias.
    assert count_module_macs(nn.Conv2d(4, 8, 3, padding=1, groups=2), x) == 8 * 64 * (2 * 9 + 1)
    # transposed conv is output-based (thop-2020), no bias here.
    convt = nn.ConvTranspose2d(4, 2, 4, 2, 1, bias=False)
    assert count_module_macs(convt, x) == 2 * 16 * 16 * 4 * 16
    for free in (nn.Tanh(), nn.Sigmoid(), nn.Softmax(dim=1), nn.Upsample(scale_factor=2),
                 nn.Dropout(0.5), nn.Identity()):
        assert count_module_macs(free, x) == 0


def test_a_module_called_twice_counts_twice() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(5, 5)
            self.unused = nn.Linear(5, 100)  # never executed: counts 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(self.linear(x))

    assert count_module_macs(Twice(), torch.zeros(1, 5)) == 2 * 25


def test_training_flags_and_state_are_restored() -> None:
    generator = Generator(32, rbn_blocks="outer", inserts={1: GIU(256)})
    discriminator = Discriminator(32, inserts={3: GIU(256)})
    generator.train()
    discriminator.train()
    generator.blocks[1].eval()  # a mixed state must come back exactly
    nets = {"G": generator, "D": discriminator}
    flags = {(n, name): m.training for n, net in nets.items() for name, m in net.named_modules()}
    state = {(n, k): v.clone() for n, net in nets.items() for k, v in net.state_dict().items()}
    count(generator, discriminator)
    after = {(n, name): m.training for n, net in nets.items() for name, m in net.named_modules()}
    assert after == flags
    assert generator.training and not generator.blocks[1].training
    # eval mode + no_grad: no running-stat update, no power iteration, no hooks left behind.
    for (n, key), value in state.items():
        assert torch.equal(nets[n].state_dict()[key], value), (n, key)
    assert all(not m._forward_hooks for net in nets.values() for m in net.modules())


def test_generator_without_z_dim_needs_it_explicitly() -> None:
    generator = nn.Sequential(nn.Linear(8, 12), nn.Unflatten(1, (3, 2, 2)))
    discriminator = nn.Sequential(nn.Flatten(), nn.Linear(12, 1))
    with pytest.raises(TypeError, match="z_dim"):
        count(generator, discriminator)
    result = count_pair(generator, discriminator, z_dim=8)
    assert (result.params, result.macs()) == (8 * 12 + 12 + 12 + 1, 8 * 12 + 12)
