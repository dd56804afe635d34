"""benchmarks/train_step.py: its bare loop is the same math as GANModule, and its record is complete.

No timing is asserted here (speed targets live in ``benchmarks/``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from benchmark_scripts import load_benchmark

train_step = load_benchmark("train_step")
# Tiny networks: one thread is fastest, and exact equality needs a fixed thread count.
pytestmark = pytest.mark.usefixtures("single_thread")
CPU = torch.device("cpu")


def _tiny(**overrides) -> train_step.Settings:
    values = {"preset": train_step.TINY_PRESET, "batch_size": 4, "iterations": 2, "rounds": 1, "warmup": 0}
    values.update(overrides)
    return train_step.Settings(**values)


def _state(*modules: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{i}.{name}": t for i, m in enumerate(modules) for name, t in m.state_dict().items()}


@pytest.mark.parametrize("interleave", ["block", "iteration"])
def test_bare_loop_and_trainer_end_with_identical_parameters(interleave: str) -> None:
    """Same init, data and noise, 3 iterations: every parameter and buffer (BN running
    statistics, spectral-norm vectors) is bitwise equal, so the bare loop does the module's math,
    whether it runs after the Trainer (block) or one iteration after each Trainer iteration.
    Exact equality holds on CPU because both sides run the same ops in the same order with the
    same thread count; a GPU would need a tolerance (non-deterministic reductions)."""
    settings = _tiny()
    data = train_step.make_batches(3, settings.batch_size, (3, 32, 32), seed=1, device=CPU)
    start = train_step.cloned_networks(settings.preset, settings.seed, CPU)
    initial = {k: v.clone() for k, v in _state(*start).items()}
    module = train_step.make_module(*start, settings)
    bare_nets = train_step.cloned_networks(settings.preset, settings.seed, CPU)
    bare = train_step.BareLoop(*bare_nets, settings, CPU)
    train_step._quiet_lightning()

    if interleave == "block":
        assert train_step.run_trainer(module, data, CPU) > 0
        assert bare.run(data) > 0
    else:
        seconds = train_step.run_interleaved(module, bare, data, CPU)
        assert all(s > 0 for s in seconds)

    assert module.generator_iteration == bare.iteration == 3
    ours = _state(module.generator, module.discriminator)
    theirs = _state(bare.generator, bare.discriminator)
    assert ours.keys() == theirs.keys() == initial.keys()
    different = [k for k in ours if not torch.equal(ours[k], theirs[k])]
    assert not different, f"trainer and bare loop disagree on {different[:5]}"
    # ... and training did move them (the comparison is not between two untouched copies).
    assert any(not torch.equal(ours[k], initial[k]) for k in ours if "weight" in k)


def test_bare_loop_differs_when_the_noise_differs() -> None:
    """Guards the test above against passing vacuously: another seed gives other parameters."""
    data = train_step.make_batches(2, 4, (3, 32, 32), seed=1, device=CPU)
    runs = []
    for seed in (0, 1):
        settings = _tiny(seed=seed)
        nets = train_step.cloned_networks(settings.preset, 0, CPU)  # same init, other noise
        bare = train_step.BareLoop(*nets, settings, CPU)
        bare.run(data)
        runs.append(_state(bare.generator))
    assert any(not torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


@pytest.mark.parametrize("interleave", ["block", "iteration"])
def test_measure_and_save_write_both_figures_and_the_ratio(tmp_path: Path, interleave: str) -> None:
    record = train_step.measure(_tiny(interleave=interleave), log=lambda *_: None)
    assert record["settings"]["interleave"] == interleave
    assert record["device"]["type"] == "cpu" and record["device"]["name"]
    assert record["versions"]["torch"] == torch.__version__ and record["versions"]["lightning"]
    assert record["settings"]["preset"] == train_step.TINY_PRESET
    assert len(record["rounds"]) == 1
    for key in ("trainer_it_per_s", "bare_it_per_s", "ratio"):
        assert record[key] > 0
    assert record["ratio"] == pytest.approx(record["trainer_it_per_s"] / record["bare_it_per_s"])
    assert record["meets_target"] == (record["ratio"] >= record["target"] == 0.97)

    path = train_step.save(record, tmp_path)
    assert path.name == f"train_step-{train_step.slug(record['device']['name'])}.json"
    train_step.save(record, tmp_path)  # appends
    saved = json.loads(path.read_text())
    assert len(saved) == 2 and saved[0]["ratio"] == record["ratio"]
    assert "ratio trainer/bare" in train_step.summary(record)


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--preset", train_step.TINY_PRESET, "--batch-size", "2", "--iterations", "1",
            "--rounds", "1", "--warmup", "0", "--threads", "1", "--results-dir", str(tmp_path)]
    previous = torch.get_num_threads()
    try:
        assert train_step.main(argv) == 0
    finally:
        torch.set_num_threads(previous)
    out = capsys.readouterr().out
    assert "Lightning Trainer + GANModule" in out and "bare PyTorch loop" in out
    (result,) = tmp_path.glob("train_step-*.json")
    (record,) = json.loads(result.read_text())
    assert record["settings"]["batch_size"] == 2 and record["settings"]["torch_threads"] == 1


def test_slug_and_defaults() -> None:
    assert train_step.slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    assert train_step.slug("AMD EPYC 7B13 64-Core Processor") == "amd-epyc-7b13-64-core-processor"
    settings, _ = train_step.parse_args([])
    assert (settings.device, settings.preset, settings.batch_size) == ("cpu", "giu_gan_32", 64)
    assert (settings.iterations, settings.rounds) == train_step.DEFAULTS["cpu"][:2]
    assert settings.interleave == "iteration"
    cuda, _ = train_step.parse_args(["--device", "cuda", "--interleave", "iteration"])
    assert (cuda.iterations, cuda.interleave) == (train_step.DEFAULTS["cuda"][0], "iteration")
    with pytest.raises(SystemExit):
        train_step.parse_args(["--iterations", "0"])
