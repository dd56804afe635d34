"""DCGAN and LSGAN baselines of GIU-GANs Table 5 (docs/architectures.md, "Other baselines")."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrize import is_parametrized

from giugan.nets import DCGANDiscriminator, DCGANGenerator, LSGANDiscriminator, LSGANGenerator

pytestmark = pytest.mark.usefixtures("single_thread")


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def convs(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


# ---------------------------------------------------------------------------------------- DCGAN


def test_dcgan_32_parameter_counts() -> None:
    g, d = DCGANGenerator(32), DCGANDiscriminator(32)
    assert count_params(g) == 3_677_952
    assert count_params(d) == 663_296
    assert count_params(g) + count_params(d) == 4_341_248


def test_dcgan_has_no_conv_biases_and_no_spectral_norm() -> None:
    g, d = DCGANGenerator(32), DCGANDiscriminator(32)
    for net in (g, d):
        assert all(conv.bias is None for conv in convs(net))
        assert not any(is_parametrized(m) for m in net.modules())


def test_dcgan_32_layout() -> None:
    g, d = DCGANGenerator(32), DCGANDiscriminator(32)
    g_convs = [(c.in_channels, c.out_channels) for c in convs(g)]
    assert g_convs == [(128, 512), (512, 256), (256, 128), (128, 3)]
    d_convs = [(c.in_channels, c.out_channels) for c in convs(d)]
    assert d_convs == [(3, 64), (64, 128), (128, 256), (256, 1)]
    d_bns = [m.num_features for m in d.modules() if isinstance(m, nn.BatchNorm2d)]
    assert d_bns == [128, 256]  # no BN after D's first conv
    slopes = {m.negative_slope for m in d.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.2}


def test_dcgan_forward_shapes_and_range() -> None:
    g, d = DCGANGenerator(32), DCGANDiscriminator(32)
    images = g(torch.randn(2, 128))
    assert images.shape == (2, 3, 32, 32)
    assert images.abs().max() <= 1
    logits = d(images)
    assert logits.shape == (2,)


def test_dcgan_output_sigmoid_gives_probabilities_of_the_same_logits() -> None:
    d_logit = DCGANDiscriminator(32).eval()
    d_prob = DCGANDiscriminator(32, output_sigmoid=True).eval()
    d_prob.load_state_dict(d_logit.state_dict())
    x = torch.randn(3, 3, 32, 32)
    probs = d_prob(x)
    assert torch.all((probs > 0) & (probs < 1))
    torch.testing.assert_close(probs, torch.sigmoid(d_logit(x)))


def test_dcgan_64_builds_the_example_stack() -> None:
    g, d = DCGANGenerator(64), DCGANDiscriminator(64)
    assert g(torch.randn(1, 128)).shape == (1, 3, 64, 64)
    assert d(torch.randn(2, 3, 64, 64)).shape == (2,)
    assert [c.out_channels for c in convs(g)] == [512, 256, 128, 64, 3]


@pytest.mark.parametrize(
    ("factory", "needles"),
    [
        (lambda: DCGANGenerator(48), ["image_size=48"]),
        (lambda: DCGANDiscriminator(16), ["image_size=16"]),
        (lambda: DCGANGenerator(32, z_dim=0), ["z_dim=0"]),
        (lambda: DCGANDiscriminator(32, conv_dim=-8), ["conv_dim=-8"]),
    ],
)
def test_dcgan_bad_arguments(factory, needles) -> None:
    with pytest.raises(ValueError) as info:
        factory()
    for needle in needles:
        assert needle in str(info.value)


# ---------------------------------------------------------------------------------------- LSGAN


def test_lsgan_32_parameter_count() -> None:
    g, d = LSGANGenerator(32), LSGANDiscriminator(32)
    assert count_params(g) + count_params(d) == 1_149_284
    assert g.z_dim == 100  # latent_dim of PyTorch-GAN's lsgan.py


def test_lsgan_32_layout() -> None:
    g, d = LSGANGenerator(32), LSGANDiscriminator(32)
    assert (g.project.in_features, g.project.out_features) == (100, 128 * 8 * 8)
    assert g.project.bias is not None
    upsamples = [m for m in g.modules() if isinstance(m, nn.Upsample)]
    assert len(upsamples) == 2 and all(u.mode == "nearest" for u in upsamples)
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs(g)] == [
        (128, 128, (3, 3)), (128, 64, (3, 3)), (64, 3, (3, 3))
    ]
    assert [(c.out_channels, c.stride) for c in convs(d)] == [
        (16, (2, 2)), (32, (2, 2)), (64, (2, 2)), (128, (2, 2))
    ]
    assert all(c.bias is not None for c in convs(g) + convs(d))
    assert (d.score.in_features, d.score.out_features) == (512, 1)
    # BatchNorm2d(C, 0.8) of the original sets eps = 0.8 (kept for fidelity); none in D block 1.
    g_bns = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    d_bns = [m for m in d.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [b.num_features for b in g_bns] == [128, 64]
    assert [b.num_features for b in d_bns] == [32, 64, 128]
    assert all(b.eps == pytest.approx(0.8) for b in g_bns + d_bns)
    assert len([m for m in d.modules() if isinstance(m, nn.Dropout2d)]) == 4
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())  # MSE on raw scores


def test_lsgan_forward_shapes_and_eval_determinism() -> None:
    g, d = LSGANGenerator(32), LSGANDiscriminator(32)
    images = g(torch.randn(2, 100))
    assert images.shape == (2, 3, 32, 32) and images.abs().max() <= 1
    assert d(images).shape == (2,)
    d.eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(d(x), d(x))  # dropout off in eval mode


def test_lsgan_64_matches_spec_recipe_count() -> None:
    g, d = LSGANGenerator(64), LSGANDiscriminator(64)
    assert count_params(g) + count_params(d) == 3_632_996
    assert g(torch.randn(1, 100)).shape == (1, 3, 64, 64)


@pytest.mark.parametrize(
    ("factory", "needles"),
    [
        (lambda: LSGANGenerator(48), ["image_size=48"]),
        (lambda: LSGANDiscriminator(20), ["image_size=20"]),
        (lambda: LSGANGenerator(32, z_dim=0), ["z_dim=0"]),
    ],
)
def test_lsgan_bad_arguments(factory, needles) -> None:
    with pytest.raises(ValueError) as info:
        factory()
    for needle in needles:
        assert needle in str(info.value)
