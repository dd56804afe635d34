"""Parameter and MAC counting with the 2020 ``thop`` rules (docs/counting.md), without thop.

The papers' "FLOPs" are thop multiply-accumulates for one image (batch 1), generator and
discriminator summed, counted by the mid-2020 thop rules (0.0.31 line). This module re-implements
those rules as forward hooks:

* a module is counted when its *exact* type is registered (a subclass such as
  :class:`~giugan.ops.RepresentativeBatchNorm2d` is **not** a ``BatchNorm2d`` here; only its inner
  ``AdaptiveAvgPool2d`` is counted, once per call);
* a module parametrized with ``torch.nn.utils.parametrize`` (e.g. a spectral-norm
  ``ParametrizedConv2d``) is counted as its original class, exactly once; its
  ``parametrizations`` children are never visited;
* counting stops at a counted module (its children are not counted again), modules whose type is
  not registered count 0 themselves but their children are visited, and a module called twice
  counts twice, like thop's accumulating ``total_ops``.

Rules (``numel`` at batch 1):

================================  ============================================================
Conv1/2/3d, ConvTranspose1/2/3d   ``numel(output) * (C_in/groups * prod(kernel) + [1 if bias])``
BatchNorm1/2/3d                   ``2 * numel(input)``
LeakyReLU                         ``numel(input)``
ReLU                              0 (``relu_ops=True``: ``numel(input)``, the older thop rule)
Linear                            ``in_features * numel(output)``
AdaptiveAvgPool1/2/3d             ``(prod(in_size // out_size) + 1) * numel(output)``
AvgPool1/2/3d                     ``numel(output)``
anything else                     0 (Tanh, Sigmoid, Softmax, Upsample, Dropout, bmm, unfold, ...)
================================  ============================================================

Parameters are all trainable parameters (spectral-norm ``u``/``v`` are buffers, so they are out).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

__all__ = [
    "PairCount",
    "count",
    "count_module_macs",
    "count_pair",
    "counted_type",
    "trainable_parameters",
]

Rule = Callable[[nn.Module, tuple[object, ...], object], int]


def _first_tensor(inputs: tuple[object, ...]) -> Tensor:
    for item in inputs:
        if isinstance(item, Tensor):
            return item
    raise TypeError("counting: a counted module was called without a tensor input")


def _output_tensor(output: object) -> Tensor:
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
        return output[0]
    raise TypeError(f"counting: cannot read a tensor from a module output of type {type(output)}")


def _conv(module: nn.Module, inputs: tuple[object, ...], output: object) -> int:
    assert isinstance(module, nn.modules.conv._ConvNd)
    per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
    per_output += 1 if module.bias is not None else 0
    return _output_tensor(output).numel() * per_output


def _batch_norm(module: nn.Module, inputs: tuple[object, ...], output: object) -> int:
    return 2 * _first_tensor(inputs).numel()


def _elementwise_input(module: nn.Module, inputs: tuple[object, ...], output: object) -> int:
    return _first_tensor(inputs).numel()


def _linear(module: nn.Module, inputs: tuple[object, ...], output: object) -> int:
    assert isinstance(module, nn.Linear)
    return module.in_features * _output_tensor(output).numel()


def _adaptive_avg_pool(module: nn.Module, inputs: tuple[object, ...], output: object) -> int:
    out = _output_tensor(output)
    spatial = out.dim() - 2
    in_size = _first_tensor(inputs).shape[-spatial:]
    out_size = out.shape[-spatial:]
    kernel = math.prod(i // o for i, o in zip(in_size, out_size, strict=True))
    return (kernel + 1) * out.numel()


def _avg_pool(module: nn.Module, inputs: tuple[object, ...], output: object) -> int:
    return _output_tensor(output).numel()


_RULES: dict[type[nn.Module], Rule] = {
    nn.Conv1d: _conv,
    nn.Conv2d: _conv,
    nn.Conv3d: _conv,
    nn.ConvTranspose1d: _conv,
    nn.ConvTranspose2d: _conv,
    nn.ConvTranspose3d: _conv,
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    nn.BatchNorm3d: _batch_norm,
    nn.LeakyReLU: _elementwise_input,
    nn.ReLU: _elementwise_input,  # counted separately; added only with relu_ops=True
    nn.Linear: _linear,
    nn.AdaptiveAvgPool1d: _adaptive_avg_pool,
    nn.AdaptiveAvgPool2d: _adaptive_avg_pool,
    nn.AdaptiveAvgPool3d: _adaptive_avg_pool,
    nn.AvgPool1d: _avg_pool,
    nn.AvgPool2d: _avg_pool,
    nn.AvgPool3d: _avg_pool,
}


def counted_type(module: nn.Module) -> type[nn.Module]:
    """The class a module is counted as: its own, or the original class if it is parametrized.

    ``torch.nn.utils.parametrize`` swaps a module's class for a generated subclass
    (``ParametrizedConv2d`` derives from ``Conv2d``); thop-style exact-type matching would miss it.
    """
    cls = type(module)
    if parametrize.is_parametrized(module):
        return cls.__mro__[1]
    return cls


def _counted_modules(root: nn.Module, seen: set[int] | None = None) -> Iterator[nn.Module]:
    """Modules with a registered rule, found depth-first; never descends into a counted module.

    A module reachable by several paths (shared) is yielded once, so it gets one hook and counts
    once per call, as with thop's ``model.apply``.
    """
    seen = set() if seen is None else seen
    if id(root) in seen:
        return
    seen.add(id(root))
    if counted_type(root) in _RULES:
        yield root
        return
    for name, child in root.named_children():
        if name == "parametrizations" and parametrize.is_parametrized(root):
            continue
        yield from _counted_modules(child, seen)


def trainable_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (``requires_grad``; shared parameters counted once)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@dataclass(frozen=True)
class _Macs:
    macs: int  # 2020 rules, ReLU = 0
    relu: int  # elements entering ReLUs (what relu_ops=True adds)
    thop_params: int  # parameters of the executed counted modules (thop-2020's own total)


def _run_counted(module: nn.Module, inputs: tuple[Tensor, ...]) -> tuple[_Macs, object]:
    """Forward ``module`` once (eval, no_grad) with counting hooks; restore training flags."""
    totals = {"macs": 0, "relu": 0}
    executed: dict[int, nn.Module] = {}
    handles = []

    def make_hook(rule: Rule, key: str) -> Callable[[nn.Module, tuple[object, ...], object], None]:
        def hook(mod: nn.Module, args: tuple[object, ...], out: object) -> None:
            totals[key] += int(rule(mod, args, out))
            executed[id(mod)] = mod

        return hook

    training = {m: m.training for m in module.modules()}
    try:
        for counted in _counted_modules(module):
            kind = counted_type(counted)
            key = "relu" if kind is nn.ReLU else "macs"
            handles.append(counted.register_forward_hook(make_hook(_RULES[kind], key)))
        module.eval()
        with torch.no_grad():
            output = module(*inputs)
    finally:
        for handle in handles:
            handle.remove()
        for m, flag in training.items():
            m.training = flag
    thop_params = sum(p.numel() for m in executed.values() for p in m.parameters())
    return _Macs(totals["macs"], totals["relu"], thop_params), output


def count_module_macs(module: nn.Module, *inputs: Tensor, relu_ops: bool = False) -> int:
    """2020-thop MACs of one forward of ``module`` on ``inputs`` (give batch-1 inputs).

    Runs in eval mode under ``torch.no_grad`` and restores every submodule's training flag.
    """
    result, _ = _run_counted(module, inputs)
    return result.macs + (result.relu if relu_ops else 0)


@dataclass(frozen=True)
class PairCount:
    """Counts of a (generator, discriminator) pair at batch 1 (docs/counting.md).

    ``*_params`` are trainable parameters (the papers' Params). ``*_macs`` follow the 2020 rules
    with ReLU = 0; ``*_relu`` is the number of elements entering ReLUs, which the older thop rule
    (``relu_ops=True``) adds as one op each. ``*_thop_params`` is what thop-2020 itself reports as
    parameters: only those of executed modules with a registered rule, so e.g. RBN's 5C and a
    self-attention's gamma are left out (diagnostic only; docs/counting.md counts all trainable
    ones).
    """

    generator_params: int
    discriminator_params: int
    generator_macs: int
    discriminator_macs: int
    generator_relu: int
    discriminator_relu: int
    generator_thop_params: int
    discriminator_thop_params: int

    @property
    def params(self) -> int:
        """Trainable parameters of G + D."""
        return self.generator_params + self.discriminator_params

    @property
    def thop_params(self) -> int:
        """G + D parameters as thop-2020 totals them (registered, executed modules only)."""
        return self.generator_thop_params + self.discriminator_thop_params

    def generator(self, relu_ops: bool = False) -> int:
        """Generator MACs under the chosen ReLU rule."""
        return self.generator_macs + (self.generator_relu if relu_ops else 0)

    def discriminator(self, relu_ops: bool = False) -> int:
        """Discriminator MACs under the chosen ReLU rule."""
        return self.discriminator_macs + (self.discriminator_relu if relu_ops else 0)

    def macs(self, relu_ops: bool = False) -> int:
        """G + D MACs under the chosen ReLU rule."""
        return self.generator(relu_ops) + self.discriminator(relu_ops)


def _latent_size(generator: nn.Module, z_dim: int | None) -> int:
    if z_dim is not None:
        return z_dim
    value = getattr(generator, "z_dim", None)
    if not isinstance(value, int):
        raise TypeError(
            f"count: the generator {type(generator).__name__} has no integer attribute `z_dim`, so "
            f"the latent size is unknown; pass z_dim=... explicitly."
        )
    return value


def count_pair(
    generator: nn.Module, discriminator: nn.Module, z_dim: int | None = None
) -> PairCount:
    """Parameters and MACs of G and D separately (G on z of shape (1, z_dim), D on G's output).

    z is created on the device of G's first parameter (CPU when G has none).
    """
    first = next(generator.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    z = torch.zeros(1, _latent_size(generator, z_dim), device=device)
    g_result, image = _run_counted(generator, (z,))
    d_result, _ = _run_counted(discriminator, (_output_tensor(image),))
    return PairCount(
        generator_params=trainable_parameters(generator),
        discriminator_params=trainable_parameters(discriminator),
        generator_macs=g_result.macs,
        discriminator_macs=d_result.macs,
        generator_relu=g_result.relu,
        discriminator_relu=d_result.relu,
        generator_thop_params=g_result.thop_params,
        discriminator_thop_params=d_result.thop_params,
    )


def count(
    generator: nn.Module, discriminator: nn.Module, relu_ops: bool = False
) -> tuple[int, int]:
    """``(params, macs)`` of G + D with the 2020 thop rules, batch 1 (docs/counting.md).

    Args:
        generator: takes z of shape (1, ``generator.z_dim``).
        discriminator: takes the generator's output.
        relu_ops: count ReLU as one op per input element (the older thop rule that reproduces the
            GIU-GANs WGAN-GP rows) instead of 0.

    Returns:
        Trainable parameters and MACs, both exact integers.
    """
    result = count_pair(generator, discriminator)
    return result.params, result.macs(relu_ops)
