"""Parameter/MAC counting (2020 thop rules) and ``giugan profile`` (docs/counting.md).

Every number here is an exact integer: the counts of docs/operators.md and docs/architectures.md,
the paper rows of docs/counting.md
(through the JSON output of ``main``), and the counting rules' edge cases.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from giugan.profiling.counting import (
    count,
    count_module_macs,
    count_pair,
    counted_type,
    trainable_parameters,
)
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
from giugan.profiling.profile import (
    IGAN_TABLE2,
    PAPER_ROWS,
    ProfileCache,
    main,
    table_ids,
    values_match,
)

REPO = Path(__file__).resolve().parents[1]

# Batch-1 counting is tiny work: one intra-op thread is faster on a shared machine.
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def cache() -> ProfileCache:
    """One cache for the module: each preset is built and counted once."""
    return ProfileCache()


def _run_main(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def all_rows() -> dict[tuple[str, str, str], dict]:
    """``main(["--all", "--format", "json"])`` keyed by (table, dataset, row)."""
    code, text = _run_main(["--all", "--format", "json"])
    assert code == 0
    rows = json.loads(text)
    keyed = {(r["table"], r["dataset"], r["row"]): r for r in rows}
    assert len(keyed) == len(rows)  # (table, dataset, row) identifies a row
    return keyed


# --------------------------------------------------------------------------------------------
# Module parameter counts (docs/operators.md)
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
    """docs/operators.md, "GIU": one GIU's thop MACs (SE pool + 2 Linear + reduce conv + BN + span conv)."""
    x = torch.zeros(1, channels, size, size)
    assert count_module_macs(GIU(channels), x) == expected


@pytest.mark.parametrize("channels", [64, 128])
def test_self_attention_macs_count_only_the_three_convs(channels: int) -> None:
    """docs/counting.md: ``H*W*(C+1)*(C/8 + C/8 + C)``; bmm and softmax count 0."""
    x = torch.zeros(1, channels, 8, 8)
    expected = 64 * (channels + 1) * (channels // 8 * 2 + channels)
    assert count_module_macs(SelfAttention(channels), x) == expected


# --------------------------------------------------------------------------------------------
# Network targets (docs/architectures.md) (params and MACs, G + D, batch 1)
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
    # RBN: +3C params per replaced BN; MACs +2C per RBN (docs/counting.md; test_rbn_net_mac_change).
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


# --------------------------------------------------------------------------------------------
# Paper rows through `main(["--all", "--format", "json"])`
# --------------------------------------------------------------------------------------------

# (table, dataset, row): (params match, FLOPs match) with the exact integers we print.
C, A = "CIFAR-10", "CelebA"
GIU_32 = (1_916_676, 97_211_009)
EXPECTED_ROWS: dict[tuple[str, str, str], tuple[int, int, bool, bool]] = {
    ("1", C, "Middle D and G"): (1_865_444, 97_215_361, True, False),
    ("1", C, "Shallow D and Deep G"): (1_852_500, 97_245_953, False, False),
    ("1", C, "Deep D and Shallow G"): (*GIU_32, True, False),
    ("1", C, "All the D and G"): (1_938_612, 98_956_289, True, False),
    ("1", C, "Only G"): (1_882_340, 96_784_513, True, False),
    ("1", C, "Only D"): (1_882_340, 96_784_513, True, False),
    **{(t, C, f"GIU-GANs-V{v}"): (*GIU_32, True, False) for t in "23" for v in range(1, 6)},
    ("4", C, "K=3, Group_Channels=16"): (*GIU_32, True, False),
    ("4", C, "K=5, Group_Channels=16"): (1_949_956, 97_743_489, True, False),
    ("4", C, "K=7, Group_Channels=16"): (1_999_876, 98_542_209, False, False),
    ("4", C, "K=3, Group_Channels=8"): (1_935_396, 97_510_529, True, False),
    ("4", C, "K=3, Group_Channels=32"): (1_907_316, 97_061_249, True, False),
    ("5", C, "DCGANs"): (4_341_248, 309_239_808, True, True),
    ("5", C, "WGAN-GP"): (1_847_044, 96_386_049, True, True),
    ("5", C, "LSGANs"): (1_149_284, 117_249_536, True, True),
    ("5", C, "SNGANs"): (1_847_044, 96_357_377, True, True),
    ("5", C, "SAGANs"): (1_975_768, 101_646_337, True, True),
    ("5", C, "GIU-GANs"): (*GIU_32, True, False),
    ("6", A, "WGAN-GP"): (6_571_780, 536_580_097, True, True),
    ("6", A, "WGAN-GP(+2)"): (12_473_092, 687_722_497, True, True),
    ("6", A, "WGAN-GP(+3)"): (12_657_860, 763_482_113, True, False),
    ("6", A, "LSGANs"): (3_632_996, 468_998_144, False, False),
    ("6", A, "SNGANs"): (6_571_780, 536_457_217, True, False),
    ("6", A, "SAGANs"): (7_008_184, 557_582_337, False, True),
    ("6", A, "GIU-GANs"): (6_914_692, 543_196_801, True, False),
    ("7", C, "baseline"): (1_847_044, 96_357_377, True, True),
    ("7", C, "GIU-GANs without GIU module"): (1_848_004, 96_358_017, True, True),
    ("7", C, "GIU-GANs"): (*GIU_32, True, False),
    ("8", C, "GIU-GANs without RBN"): (1_915_716, 97_210_369, True, False),
    ("8", C, "GIU-GANs"): (*GIU_32, True, False),
    ("8", A, "GIU-GANs without RBN"): (6_912_964, 543_195_649, True, False),
    ("8", A, "GIU-GANs"): (6_914_692, 543_196_801, True, False),
}


def test_every_paper_row_is_listed_once(all_rows: dict) -> None:
    giu_rows = {key for key in all_rows if key[0] != "igan2"}
    assert giu_rows == set(EXPECTED_ROWS)
    counts = {t: sum(1 for key in giu_rows if key[0] == t) for t in "12345678"}
    assert counts == {"1": 6, "2": 5, "3": 5, "4": 5, "5": 6, "6": 7, "7": 3, "8": 4}


@pytest.mark.parametrize("key", sorted(EXPECTED_ROWS))
def test_paper_row_counts_and_match(all_rows: dict, key: tuple[str, str, str]) -> None:
    params, macs, params_match, flops_match = EXPECTED_ROWS[key]
    row = all_rows[key]
    assert {"table", "row", "preset", "params", "macs", "paper_params", "paper_flops", "match",
            "note", "rule"} <= set(row)
    assert (row["params"], row["macs"]) == (params, macs)
    assert row["match"] == {"params": params_match, "flops": flops_match}
    assert isinstance(row["params"], int) and isinstance(row["macs"], int)
    if not (params_match and flops_match):
        assert row["note"], "every non-matching row says why"


def test_rows_store_the_printed_strings(all_rows: dict) -> None:
    assert all_rows[("1", C, "Middle D and G")]["paper_flops"] == "97.24m"  # as printed
    k3 = all_rows[("4", C, "K=3, Group_Channels=16")]
    # Table 4's header swaps the columns; values are stored by meaning.
    assert (k3["paper_params"], k3["paper_flops"]) == ("1.92M", "97.23M")
    assert "header" in k3["note"] and "by meaning" in k3["note"]
    dcgan = all_rows[("5", C, "DCGANs")]
    assert (dcgan["paper_params"], dcgan["paper_flops"]) == ("4.34M", "309.24M")
    assert all_rows[("6", A, "WGAN-GP(+3)")]["paper_flops"] == "764.48M"


def test_presets_named_in_the_brief(all_rows: dict) -> None:
    expected = {
        ("1", C, "Deep D and Shallow G"): "giu_gan_32",
        ("1", C, "Only G"): "giu_gan_only_g_32",
        ("2", C, "GIU-GANs-V1"): "giu_gan_32",
        ("3", C, "GIU-GANs-V5"): "giu_gan_32",
        ("5", C, "SNGANs"): "sngan_32",
        ("6", A, "WGAN-GP(+3)"): "wgan_gp_plus3_64",
        ("7", C, "GIU-GANs without GIU module"): "giu_gan_no_giu_32",
        ("8", C, "GIU-GANs without RBN"): "giu_gan_no_rbn_32",
        ("8", A, "GIU-GANs"): "giu_gan_64",
    }
    for key, preset in expected.items():
        assert all_rows[key]["preset"] == preset


def test_wgan_gp_rows_use_the_relu_rule_and_say_so(all_rows: dict) -> None:
    for key, row in all_rows.items():
        is_wgan = key[0] in "56" and key[2].startswith("WGAN-GP")
        assert (row["rule"] == "thop-2020+relu") == is_wgan, key
        if is_wgan:
            assert "older thop rule" in row["note"]
        elif key[0] != "igan2":
            assert row["rule"] == "thop-2020"


def test_known_non_matches_explain_themselves(all_rows: dict) -> None:
    assert "probably wrong" in all_rows[("1", C, "Shallow D and Deep G")]["note"]
    assert "1.00M" in all_rows[("6", A, "WGAN-GP(+3)")]["note"]
    assert "unresolved" in all_rows[("6", A, "LSGANs")]["note"].lower()
    assert "1.99M" in all_rows[("4", C, "K=7, Group_Channels=16")]["note"]
    assert "7.01M" in all_rows[("6", A, "SAGANs")]["note"]
    for key, row in all_rows.items():
        shallow = key[2] == "Shallow D and Deep G"
        giu = row["preset"].startswith("giu_gan") and not shallow
        if key[0] != "igan2" and giu and not row["match"]["flops"]:
            assert "0.0" in row["note"] and "GIU row" in row["note"], key


def test_params_match_is_judged_on_thop_parameter_total(all_rows: dict) -> None:
    """Middle / gc8 round one step high with RBN's 5C; thop-2020's own total (leaf modules only,
    the paper's counter) leaves RBN out and reproduces the printed values."""
    for key in [("1", C, "Middle D and G"), ("4", C, "K=3, Group_Channels=8")]:
        row = all_rows[key]
        assert row["match"]["params"]
        assert not values_match(row["params"], row["paper_params"])
        assert row["thop_params"] == row["params"] - 5 * (256 + 64)
        assert values_match(row["thop_params"], row["paper_params"])
        assert values_match(row["params"] - 960, row["paper_params"])  # without RBN


def test_values_match_rounds_half_up_to_the_printed_precision() -> None:
    assert values_match(1_915_000, "1.92M")
    assert not values_match(1_914_999, "1.92M")
    assert values_match(97_235_000, "97.24m")
    assert values_match(7_004_999, "7.00M") and not values_match(7_008_184, "7.00M")
    with pytest.raises(ValueError, match="millions"):
        values_match(1, "1.92")


def test_paper_row_table_is_data() -> None:
    assert table_ids() == ["1", "2", "3", "4", "5", "6", "7", "8", "igan2"]
    assert len(PAPER_ROWS) == 41
    from giugan.nets import preset_names

    assert {row.preset for row in PAPER_ROWS} <= set(preset_names())
    assert {case.preset for case in IGAN_TABLE2} <= set(preset_names())


# --------------------------------------------------------------------------------------------
# iGAN report Table 2
# --------------------------------------------------------------------------------------------


def test_igan_table2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--table", "igan2", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["row"] for r in rows] == [f"case {i}" for i in range(1, 8)]
    assert [(r["kernel_size"], r["groups"], r["reduction_ratio"]) for r in rows] == [
        (3, 4, 2), (7, 4, 8), (7, 4, 2), (3, 4, 8), (3, 1, 2), (1, 4, 2), (5, 4, 2)]
    assert [r["paper_params"] for r in rows] == ["800", "520", "2080", "200", "2336", "644", "1312"]
    assert [r["formula_params"] for r in rows] == [800, 520, 2_080, 200, 2_336, 544, 1_312]
    assert [r["module_params"] for r in rows] == [3_300, 2_292, 8_580, 852, 2_409, 2_244, 5_412]
    assert [r["match"]["params"] for r in rows] == [True] * 5 + [False, True]
    assert "644" in rows[5]["note"] and "544" in rows[5]["note"] and "typo" in rows[5]["note"].lower()
    assert rows[0]["preset"] == "igan_64"


def test_igan_table2_is_in_all(all_rows: dict) -> None:
    assert sum(1 for key in all_rows if key[0] == "igan2") == 7


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def test_preset_json_gives_generator_and_discriminator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--preset", "sngan_32", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["generator"]["params"] == 1_184_067
    assert record["discriminator"]["params"] == 662_977
    assert (record["params"], record["macs"]) == (1_847_044, 96_357_377)
    assert record["generator"]["macs"] + record["discriminator"]["macs"] == record["macs"]
    assert "Table 5 SNGANs (CIFAR-10)" in record["rows"]
    assert main(["--preset", "wgan_gp_32", "--relu-ops", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["macs"] == 96_386_049


def test_text_and_markdown_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--table", "5"]) == 0
    text = capsys.readouterr().out
    assert "GIU-GANs, Table 5" in text
    assert "309.24M (309,239,808)" in text and "yes/yes" in text
    assert main(["--table", "6", "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "| 6 | CelebA | WGAN-GP(+2) | wgan_gp_plus2_64 | 12.47M | 12.47M (12,473,092) |" in markdown
    assert main(["--preset", "giu_gan_64"]) == 0
    assert "6.91M (6,914,692)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [["--table", "9"], ["--table", "igan3"], ["--preset", "no_such_gan"], ["--bogus"],
     ["--table", "1", "--all"], ["--format", "csv"], ["--table", "5", "--relu-ops"]],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip()


def test_unknown_table_and_preset_messages(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--table", "9"]) == 2
    assert "igan2" in capsys.readouterr().err
    assert main(["--preset", "giu_gan_3"]) == 2
    assert "giu_gan_32" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--table" in capsys.readouterr().out


def test_python_dash_m_profile_markdown() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "giugan", "profile", "--table", "5", "--format", "markdown"],
        capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "| 5 | CIFAR-10 | DCGANs | dcgan_32 | 4.34M | 4.34M (4,341,248) | 309.24M |" in result.stdout
