"""The SN "DCGAN-like" backbone of heykeetae/Self-Attention-GAN (docs/architectures.md)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrize import is_parametrized

from giugan.nets import Discriminator, Generator
from giugan.ops import GIU, RepresentativeBatchNorm2d, SelfAttention

pytestmark = pytest.mark.usefixtures("single_thread")


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class Recorder(nn.Module):
    """Identity that logs (tag, shape, input) into a shared list when called."""

    def __init__(self, tag: str, log: list, channels: int | None = None) -> None:
        super().__init__()
        self.tag, self.log = tag, log
        if channels is not None:
            self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append((self.tag, tuple(x.shape), x.detach().clone()))
        return x


class ChannelGate(nn.Module):
    """A user's own block: a learned per-channel scale (no knowledge of giugan)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.scale = nn.Parameter(torch.full((1, channels, 1, 1), 2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x


# ----------------------------------------------------------------------------- parameter counts


@pytest.mark.parametrize(
    ("image_size", "g_count", "d_count"),
    [(32, 1_184_067, 662_977), (64, 3_807_043, 2_764_737)],
)
def test_parameter_counts(image_size: int, g_count: int, d_count: int) -> None:
    g, d = Generator(image_size), Discriminator(image_size)
    assert count_params(g) == g_count
    assert count_params(d) == d_count
    assert g_count + d_count == {32: 1_847_044, 64: 6_571_780}[image_size]
    # Spectral norm must not change the count (u/v are buffers).
    assert count_params(Generator(image_size, spectral_norm=False)) == g_count
    assert count_params(Discriminator(image_size, spectral_norm=False)) == d_count


def test_per_layer_counts_at_32() -> None:
    """docs/architectures.md: 524,544 + 512 + 524,416 + 256 + 131,136 + 128 + 3,075 (G); D 3,136 + ... + 4,097."""
    g, d = Generator(32), Discriminator(32)
    g_layers = []
    for block in g.blocks:
        g_layers += [count_params(block[0]), count_params(block[1])]
    g_layers.append(count_params(g.output))
    assert g_layers == [524_544, 512, 524_416, 256, 131_136, 128, 3_075]
    d_layers = [count_params(block) for block in d.blocks] + [count_params(d.output)]
    assert d_layers == [3_136, 131_200, 524_544, 4_097]


@pytest.mark.parametrize("image_size", [32, 64])
def test_spectral_norm_vectors_are_buffers(image_size: int) -> None:
    for net in (Generator(image_size), Discriminator(image_size)):
        names = [name for name, _ in net.named_parameters()]
        assert not any(name.endswith(("_u", "_v")) for name in names)
        buffers = [name for name, _ in net.named_buffers()]
        sn_modules = [m for m in net.modules() if is_parametrized(m)]
        assert len([b for b in buffers if b.endswith("._u")]) == len(sn_modules) > 0
        assert len([b for b in buffers if b.endswith("._v")]) == len(sn_modules)


# ------------------------------------------------------------------------------------ structure


@pytest.mark.parametrize("image_size", [16, 32, 64])
def test_spectral_norm_on_hidden_convs_only(image_size: int) -> None:
    g, d = Generator(image_size), Discriminator(image_size)
    for block in list(g.blocks) + list(d.blocks):
        conv = block[0]
        assert is_parametrized(conv, "weight")
        assert conv.parametrizations.weight[0].n_power_iterations == 1
    assert not is_parametrized(g.output[0])
    assert not is_parametrized(d.output)
    sn_count = sum(is_parametrized(m) for m in list(g.modules()) + list(d.modules()))
    assert sn_count == 2 * g.num_blocks


def test_spectral_norm_false_has_none() -> None:
    for net in (Generator(32, spectral_norm=False), Discriminator(32, spectral_norm=False)):
        assert not any(is_parametrized(m) for m in net.modules())


@pytest.mark.parametrize(
    ("image_size", "g_channels", "d_channels"),
    [(32, [256, 128, 64], [64, 128, 256]), (64, [512, 256, 128, 64], [64, 128, 256, 512])],
)
def test_block_layout(image_size, g_channels, d_channels) -> None:
    g, d = Generator(image_size), Discriminator(image_size)
    assert g.num_blocks == d.num_blocks == len(g_channels)
    assert g.slot_channels == dict(enumerate(g_channels, start=1))
    assert d.slot_channels == dict(enumerate(d_channels, start=1))
    for index, block in enumerate(g.blocks, start=1):
        conv, norm, act = block
        assert isinstance(conv, nn.ConvTranspose2d) and conv.bias is not None
        assert conv.kernel_size == (4, 4)
        assert (conv.stride, conv.padding) == (((1, 1), (0, 0)) if index == 1 else ((2, 2), (1, 1)))
        assert type(norm) is nn.BatchNorm2d and isinstance(act, nn.ReLU)
    assert g.blocks[0][0].in_channels == 128  # z_dim
    out_conv, tanh = g.output
    assert (out_conv.in_channels, out_conv.out_channels) == (64, 3) and isinstance(tanh, nn.Tanh)
    for block in d.blocks:
        conv, act = block
        assert conv.kernel_size == (4, 4) and conv.stride == (2, 2) and conv.padding == (1, 1)
        assert isinstance(act, nn.LeakyReLU) and act.negative_slope == pytest.approx(0.1)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in d.modules())
    assert d.output.kernel_size == (4, 4) and d.output.padding == (0, 0)


@pytest.mark.parametrize("image_size", [16, 32, 64, 128])
def test_forward_shapes_and_range(image_size: int) -> None:
    conv_dim = 64 if image_size <= 64 else 8
    g = Generator(image_size, conv_dim=conv_dim)
    d = Discriminator(image_size, conv_dim=conv_dim)
    images = g(torch.randn(2, 128))
    assert images.shape == (2, 3, image_size, image_size)
    assert images.min() >= -1 and images.max() <= 1
    scores = d(images)
    assert scores.shape == (2,)
    assert d(torch.randn(1, 3, image_size, image_size)).shape == (1,)


def test_generator_accepts_4d_latents_and_custom_z_dim() -> None:
    g = Generator(32, z_dim=16).eval()
    z = torch.randn(2, 16)
    torch.testing.assert_close(g(z), g(z.view(2, 16, 1, 1)))


def test_norm_none_removes_batch_norm() -> None:
    g = Generator(32, norm="none")
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in g.modules())
    assert g(torch.randn(1, 128)).shape == (1, 3, 32, 32)


# ------------------------------------------------------------------------------------------ RBN


@pytest.mark.parametrize(("image_size", "outer"), [(32, {1, 3}), (64, {1, 4})])
def test_rbn_outer_replaces_first_and_last_hidden_bn(image_size: int, outer: set[int]) -> None:
    g = Generator(image_size, rbn_blocks="outer")
    for index, block in enumerate(g.blocks, start=1):
        expected = RepresentativeBatchNorm2d if index in outer else nn.BatchNorm2d
        assert type(block[1]) is expected, index
    rbn_channels = sum(g.slot_channels[i] for i in outer)
    assert count_params(g) == count_params(Generator(image_size)) + 3 * rbn_channels


def test_rbn_blocks_list_and_none() -> None:
    g = Generator(64, rbn_blocks=[2, 3])
    kinds = [type(block[1]) for block in g.blocks]
    assert kinds == [
        nn.BatchNorm2d, RepresentativeBatchNorm2d, RepresentativeBatchNorm2d, nn.BatchNorm2d
    ]
    assert not any(isinstance(m, RepresentativeBatchNorm2d) for m in Generator(64).modules())


@pytest.mark.parametrize(
    ("kwargs", "needles"),
    [
        ({"image_size": 32, "rbn_blocks": [4]}, ["[4]", "1..3"]),
        ({"image_size": 32, "rbn_blocks": [0, 1]}, ["[0]", "1..3"]),
        ({"image_size": 64, "rbn_blocks": [5]}, ["[5]", "1..4"]),
        ({"image_size": 32, "rbn_blocks": "inner"}, ["rbn_blocks='inner'"]),
        ({"image_size": 32, "rbn_blocks": "outer", "norm": "none"}, ["rbn_blocks", "norm"]),
    ],
)
def test_bad_rbn_blocks(kwargs, needles) -> None:
    with pytest.raises(ValueError) as info:
        Generator(**kwargs)
    for needle in needles:
        assert needle in str(info.value)


# -------------------------------------------------------------------------------------- inserts


def test_generator_inserts_run_in_order_after_each_blocks_activation() -> None:
    log: list = []
    g = Generator(32, inserts={3: Recorder("g3", log), 1: Recorder("g1", log),
                               2: Recorder("g2", log)})
    block_outputs = []
    for block in g.blocks:
        block.register_forward_hook(lambda _m, _i, out: block_outputs.append(out.detach().clone()))
    g(torch.randn(2, 128))
    assert [(tag, shape) for tag, shape, _ in log] == [
        ("g1", (2, 256, 4, 4)), ("g2", (2, 128, 8, 8)), ("g3", (2, 64, 16, 16))
    ]
    for (_, _, seen), out in zip(log, block_outputs, strict=True):
        torch.testing.assert_close(seen, out)
        assert seen.min() >= 0  # after the block's ReLU


def test_discriminator_inserts_run_in_order_after_each_block() -> None:
    log: list = []
    d = Discriminator(64, inserts={4: Recorder("d4", log), 2: Recorder("d2", log)})
    block_outputs = []
    for block in d.blocks:
        block.register_forward_hook(lambda _m, _i, out: block_outputs.append(out.detach().clone()))
    d(torch.randn(2, 3, 64, 64))
    assert [(tag, shape) for tag, shape, _ in log] == [
        ("d2", (2, 128, 16, 16)), ("d4", (2, 512, 4, 4))
    ]
    torch.testing.assert_close(log[0][2], block_outputs[1])
    torch.testing.assert_close(log[1][2], block_outputs[3])
    assert (log[0][2] < 0).any()  # LeakyReLU output, not ReLU


def test_insert_output_feeds_the_next_layer() -> None:
    class Zero(nn.Module):
        def forward(self, x):
            return torch.zeros_like(x)

    d = Discriminator(32, inserts={3: Zero()})
    scores = d(torch.randn(3, 3, 32, 32))
    torch.testing.assert_close(scores, d.output.bias.expand(3).detach())


def test_users_own_module_plugs_into_slots() -> None:
    g = Generator(32, inserts={2: ChannelGate(128)})
    d = Discriminator(32, inserts={1: ChannelGate(64)})
    assert count_params(g) == 1_184_067 + 128
    assert count_params(d) == 662_977 + 64
    images = g(torch.randn(2, 128))
    d(images).mean().backward()
    assert g.inserts["2"].scale.grad.abs().sum() > 0
    assert d.inserts["1"].scale.grad.abs().sum() > 0
    # The block's output really goes through the user's module.
    plain = Discriminator(32)
    plain.load_state_dict({k: v for k, v in d.state_dict().items() if not k.startswith("inserts")})
    x = torch.randn(2, 3, 32, 32)
    assert not torch.allclose(plain(x), d(x))
    with torch.no_grad():
        d.inserts["1"].scale.fill_(1.0)
    torch.testing.assert_close(plain(x), d(x))


def test_insert_without_channels_attribute_and_string_keys_work() -> None:
    log: list = []
    g = Generator(32, inserts={"2": Recorder("g2", log)})
    g(torch.randn(1, 128))
    assert [(tag, shape) for tag, shape, _ in log] == [("g2", (1, 128, 8, 8))]


def test_operator_modules_in_slots() -> None:
    g = Generator(32, inserts={1: GIU(256), 3: SelfAttention(64)})
    d = Discriminator(32, inserts={3: GIU(256)})
    assert d(g(torch.randn(2, 128))).shape == (2,)


@pytest.mark.parametrize(
    ("factory", "needles"),
    [
        (lambda: Generator(32, inserts={4: nn.Identity()}), ["slot 4", "[1, 2, 3]"]),
        (lambda: Generator(32, inserts={0: nn.Identity()}), ["slot 0", "[1, 2, 3]"]),
        (lambda: Discriminator(64, inserts={5: nn.Identity()}), ["slot 5", "[1, 2, 3, 4]"]),
        (lambda: Generator(32, inserts={1: GIU(128)}), ["channels=128", "256"]),
        (lambda: Discriminator(32, inserts={3: SelfAttention(64)}), ["channels=64", "256"]),
        (lambda: Generator(32, inserts={2: ChannelGate(64)}), ["channels=64", "128"]),
        (lambda: Generator(32, inserts={1: "GIU"}), ["slot 1", "nn.Module"]),
    ],
)
def test_bad_inserts(factory, needles) -> None:
    with pytest.raises(ValueError) as info:
        factory()
    for needle in needles:
        assert needle in str(info.value)


@pytest.mark.parametrize(
    ("factory", "needles"),
    [
        (lambda: Generator(48), ["image_size=48", "32", "64"]),
        (lambda: Discriminator(48), ["image_size=48"]),
        (lambda: Generator(0), ["image_size=0"]),
        (lambda: Generator(32, z_dim=0), ["z_dim=0"]),
        (lambda: Generator(32, conv_dim=-1), ["conv_dim=-1"]),
        (lambda: Discriminator(32, conv_dim=0), ["conv_dim=0"]),
        (lambda: Generator(32, norm="group"), ["norm='group'"]),
    ],
)
def test_bad_arguments(factory, needles) -> None:
    with pytest.raises(ValueError) as info:
        factory()
    for needle in needles:
        assert needle in str(info.value)
