"""Mixed precision, compilation and channels-last keep the step's math (CPU, tiny networks)."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import pytest
import torch

from giugan import compat
from giugan.training.acceleration import CompiledForward
from giugan.training.precision_check import TOLERANCES, compare_one_iteration

from .helpers import tiny_data, tiny_module, tiny_trainer

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("seed", [0, 1])
def test_bf16_one_iteration_agrees_with_fp32_within_the_stated_tolerances(seed: int) -> None:
    """Losses, penalty, gradient norms and gradient directions of one bf16-autocast iteration
    (what --trainer.precision bf16-mixed runs) against fp32 from the same state and batch."""
    result = compare_one_iteration(torch.device("cpu"), seed)
    for key, limit in TOLERANCES.items():
        if key.startswith("gradient_cosine"):
            assert result[key] >= limit, (key, result[key])
        else:
            assert result[key] <= limit, (key, result[key])
    assert result["passed"] == 1.0
    # ... and bf16 really ran in lower precision (the comparison is not fp32 against itself).
    assert result["grad_norm_d"] > 0 or result["loss_d"] > 0


def test_bf16_mixed_fit_trains_with_finite_statistics(tmp_path: Path) -> None:
    module = tiny_module(generator_iterations=3)
    trainer = tiny_trainer(tmp_path, precision="bf16-mixed")
    trainer.fit(module, datamodule=tiny_data())
    assert module.generator_iteration == 3
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_channels_last_gives_the_same_parameters_as_the_default_layout(tmp_path: Path) -> None:
    """Same math in another memory layout: equal up to summation order (SGD, so that Adam's
    normalisation does not turn rounding-level gradient differences into lr-sized steps)."""
    results = []
    for channels_last in (False, True):
        module = tiny_module(
            generator_iterations=2, channels_last=channels_last,
            optimizer_g=functools.partial(torch.optim.SGD, lr=0.01),
            optimizer_d=functools.partial(torch.optim.SGD, lr=0.01),
        )
        tiny_trainer(tmp_path / str(channels_last)).fit(module, datamodule=tiny_data())
        results.append({k: v.contiguous() for k, v in module.generator.state_dict().items()})
    assert results[0].keys() == results[1].keys()
    for key in results[0]:
        torch.testing.assert_close(results[0][key], results[1][key], rtol=1e-4, atol=1e-5)


def test_compiled_forward_falls_back_to_eager_with_one_warning(monkeypatch) -> None:
    layer = torch.nn.Linear(2, 2)
    forward = CompiledForward(layer, "generator")

    class _Failure(RuntimeError):
        pass

    def failing(_):
        raise _Failure("no C++ compiler\nlong inductor log")

    monkeypatch.setattr(compat, "compile_errors", lambda: (_Failure,))
    forward.compiled = failing
    x = torch.ones(1, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = forward(x)
        second = forward(x)
    torch.testing.assert_close(first, layer(x))
    torch.testing.assert_close(second, layer(x))
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert "torch.compile of the generator failed (_Failure: no C++ compiler)" in messages[0]
    assert "compile_networks: false" in messages[0]


def test_an_unexpected_error_inside_the_compiled_forward_is_not_swallowed() -> None:
    forward = CompiledForward(torch.nn.Linear(2, 2), "discriminator")
    forward.compiled = lambda _: (_ for _ in ()).throw(ValueError("a real bug"))
    with pytest.raises(ValueError, match="a real bug"):
        forward(torch.ones(1, 2))
