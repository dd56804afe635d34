"""Speed past fp32 eager: bf16 autocast, ``torch.compile`` and channels-last, side by side in one run.

For each preset (default ``giu_gan_32`` and ``sagan_64``) five variants of the same generator
iteration (WGAN-GP, penalty in the critic step, ``n_critic`` 1, Adam 2e-4 (0, 0.9), batch 64) are
timed in rounds that rotate their order, so a busy machine slows all of them alike:

* ``fp32``: eager float32 (the reference);
* ``bf16``: the same step under ``torch.autocast(dtype=bfloat16)``, what Lightning's
  ``--trainer.precision bf16-mixed`` does (penalty norm, interpolation and losses in float32);
* ``compile``: G and D ``torch.compile``d for their ordinary forwards (the penalty's double
  backward runs eager: compiled graphs do not support it);
* ``channels_last``: parameters and batches in channels-last memory format;
* ``bf16_channels_last``: both (``--trainer.precision bf16-mixed --model.channels_last true``);
* on CUDA also ``tf32`` (TF32 tensor-core matmuls and convolutions) and ``cuda_graphs``
  (``torch.compile(mode="reduce-overhead")``, which replays CUDA graphs of the static-shape
  forwards).

Every variant calls :func:`giugan.training.steps.generator_iteration`, the function
``GANModule.training_step`` calls. Reported: median iterations/s per variant and the ratio to
``fp32``. The bf16 correctness check runs first: one iteration from identical states (losses,
penalty, gradient norms and gradients against fp32, with the tolerances of
``tests/training/test_precision.py``) and windowed means of those statistics over
``--check-iterations`` iterations of a small GIU-GAN, each within a stated band of fp32's (GAN
trajectories diverge chaotically: statistics are compared, not paths, and a second fp32 run that
differs only in its noise draws shows how far fp32 drifts from itself). A record is appended to
``benchmarks/results/precision_speed-<device>.json``.

    python benchmarks/precision_speed.py                       # CPU, 1 thread
    python benchmarks/precision_speed.py --device cuda --iterations 50
    python benchmarks/precision_speed.py --presets giu_gan_32 --iterations 2 --rounds 1 --no-compile
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared record helpers of train_step

from train_step import device_name, save  # a sibling script: shared record helpers

from giugan.losses import WassersteinLoss
from giugan.seeding import step_generator
from giugan.training.acceleration import CompiledForward, to_channels_last
from giugan.training.steps import StepBackend, StepSettings, generator_iteration

RESULTS_DIR = Path(__file__).resolve().parent / "results"
VARIANTS = ("fp32", "bf16", "compile", "channels_last", "bf16_channels_last")
#: Only where they mean something: TF32 matmuls/convolutions and CUDA graphs need a CUDA device.
CUDA_VARIANTS = ("tf32", "cuda_graphs")
#: Band for each window's mean of the bf16 run against the same window of fp32's:
#: |w_bf16 - w_fp32| <= max(BAND_RELATIVE * |w_fp32| + BAND_SPREAD * (standard error of w_fp32),
#:                          |w_twin - w_fp32|),
#: where the twin is a second fp32 run from the same start that differs only in its noise draws
#: (the latent codes and penalty mixing weights). The second term is "no further from fp32 than
#: fp32 is from itself": late in a run the windows of a chaotic trajectory drift by more than the
#: first term even with no change of precision at all.
BAND_RELATIVE = 0.2
BAND_SPREAD = 3.0
#: Noise seed of the fp32 twin (the reference and bf16 runs use noise seed 0).
TWIN_NOISE_SEED = 1


class Variant:
    """One way of running the step: networks, optimisers and backend of its own (same start)."""

    def __init__(
        self, name: str, nets: tuple[nn.Module, nn.Module], device: torch.device, noise_seed: int = 0
    ) -> None:
        generator, discriminator = (copy.deepcopy(n).to(device).train() for n in nets)
        self.name, self.device, self.noise_seed = name, device, noise_seed
        self.generator, self.discriminator = generator, discriminator
        self.optimizers = (
            torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.0, 0.9)),
            torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.0, 0.9)),
        )
        self.settings = StepSettings(loss=WassersteinLoss(gp_weight=10.0))
        self.backend = StepBackend.plain(generator, discriminator)
        if name in ("compile", "cuda_graphs"):
            mode = "reduce-overhead" if name == "cuda_graphs" else None
            self.backend.compiled_generator = CompiledForward(generator, "generator", mode)
            self.backend.compiled_discriminator = CompiledForward(discriminator, "discriminator", mode)
        self.bf16, self.channels_last = name.startswith("bf16"), name.endswith("channels_last")
        if self.channels_last:
            to_channels_last(generator, discriminator)
        self.iteration = 0

    def step(self, real: Tensor) -> dict[str, Tensor]:
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        rng = step_generator(self.noise_seed, 0, self.iteration, self.device)
        tf32 = self.name == "tf32"
        previous = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
        try:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                stats = generator_iteration(
                    self.generator, self.discriminator, self.optimizers, real, 1, rng,
                    self.settings, self.backend,
                )
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous
        self.iteration += 1
        return stats


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(variant: Variant, batches: Sequence[Tensor]) -> float:
    synchronize(variant.device)
    started = time.perf_counter()
    for real in batches:
        variant.step(real)
    synchronize(variant.device)
    return time.perf_counter() - started


#: Not a paper preset: GIU-GAN 32 at conv_dim 16, for quick checks (``--presets small_giu_gan_32``).
SMALL_PRESET = "small_giu_gan_32"


def build(preset: str, seed: int) -> tuple[nn.Module, nn.Module]:
    from giugan.nets.presets import build_preset
    from giugan.training.precision_check import small_giu_gan

    if preset == SMALL_PRESET:
        return small_giu_gan(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_preset(preset)


def image_size(generator: nn.Module) -> int:
    return int(getattr(generator, "image_size", 32))


def measure_speed(
    preset: str, device: torch.device, variants: Sequence[str], iterations: int, rounds: int,
    batch_size: int, log: Callable[[str], None],
) -> dict[str, Any]:
    nets = build(preset, 0)
    size = image_size(nets[0])
    rng = torch.Generator().manual_seed(1)
    batches = [(torch.rand(batch_size, 3, size, size, generator=rng) * 2 - 1).to(device) for _ in range(iterations)]
    runners = {name: Variant(name, nets, device) for name in variants}
    started = time.perf_counter()
    for runner in runners.values():  # warm-up: Adam state, compilation, caches (untimed)
        runner.step(batches[0])
        runner.step(batches[-1])
    log(f"{preset}: warm-up done in {time.perf_counter() - started:.1f} s")
    per_round: dict[str, list[float]] = {name: [] for name in variants}
    for index in range(rounds):
        order = list(variants[index % len(variants):]) + list(variants[: index % len(variants)])
        for name in order:
            per_round[name].append(iterations / timed(runners[name], batches))
        log(f"{preset} round {index + 1}/{rounds}: " + ", ".join(
            f"{name} {per_round[name][-1]:.3g} it/s" for name in variants))
    median = {name: statistics.median(values) for name, values in per_round.items()}
    fallback = {
        name: runner.backend.compiled_generator.failed or runner.backend.compiled_discriminator.failed
        for name, runner in runners.items() if name in ("compile", "cuda_graphs")
    }
    return {
        "preset": preset,
        "it_per_s": median,
        "per_round_it_per_s": per_round,
        "ratio_to_fp32": {name: median[name] / median["fp32"] for name in variants},
        "compile_fallback": fallback.get("compile") or fallback.get("cuda_graphs"),
    }


def one_step_agreement(device: torch.device) -> dict[str, float]:
    """Relative differences bf16 vs fp32 after one iteration from identical states."""
    from giugan.training.precision_check import compare_one_iteration

    return compare_one_iteration(device)


def windowed_means(device: torch.device, iterations: int, window: int) -> dict[str, Any]:
    """fp32, bf16 and an fp32 twin (other noise draws) trained side by side from the same start.

    Returns each statistic's windowed means for the three runs, the band of each window
    (:data:`BAND_RELATIVE`, :data:`BAND_SPREAD`, the twin's gap) and whether bf16 stays inside.
    """
    from giugan.training.precision_check import small_giu_gan

    nets = small_giu_gan(0)
    size = image_size(nets[0])
    runs = {
        "fp32": Variant("fp32", nets, device),
        "bf16": Variant("bf16", nets, device),
        "fp32_twin": Variant("fp32", nets, device, noise_seed=TWIN_NOISE_SEED),
    }
    rng = torch.Generator().manual_seed(2)
    traces: dict[str, dict[str, list[float]]] = {name: {} for name in runs}
    for _ in range(iterations):
        real = (torch.rand(32, 3, size, size, generator=rng) * 2 - 1).to(device)
        for name, runner in runs.items():
            for key, value in runner.step(real).items():
                traces[name].setdefault(key, []).append(float(value))
    report: dict[str, Any] = {"iterations": iterations, "window": window, "statistics": {}}
    passed = True
    for key in ("loss_d", "loss_g", "gp", "grad_norm_d", "grad_norm_g"):
        reference = _windows(traces["fp32"][key], window)
        ours = _windows(traces["bf16"][key], window)
        twin = _windows(traces["fp32_twin"][key], window)
        noise = _window_noise(traces["fp32"][key], window)
        bands = [max(BAND_RELATIVE * abs(r) + BAND_SPREAD * n, abs(t - r))
                 for r, n, t in zip(reference, noise, twin)]
        within = [abs(o - r) <= band for o, r, band in zip(ours, reference, bands)]
        passed &= all(within)
        report["statistics"][key] = {
            "fp32_mean": statistics.fmean(reference), "bf16_mean": statistics.fmean(ours),
            "band": max(bands), "within": all(within),
            "fp32_windows": reference, "bf16_windows": ours, "fp32_twin_windows": twin, "bands": bands,
        }
    report["passed"] = passed
    return report


def _window_noise(values: Sequence[float], window: int) -> list[float]:
    """Standard error of each window's mean (its values' spread over sqrt(window))."""
    return [statistics.pstdev(values[i:i + window]) / window**0.5
            for i in range(0, len(values) - window + 1, window)]


def _windows(values: Sequence[float], window: int) -> list[float]:
    return [statistics.fmean(values[i:i + window]) for i in range(0, len(values) - window + 1, window)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--presets", nargs="+", default=["giu_gan_32", "sagan_64"])
    parser.add_argument("--iterations", type=int, default=4, help="timed iterations per variant per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (0 = torch's default)")
    parser.add_argument("--no-compile", action="store_true", help="leave out the compiled variants")
    parser.add_argument("--check-iterations", type=int, default=300)
    parser.add_argument("--check-window", type=int, default=50)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads and device.type == "cpu":
        torch.set_num_threads(args.threads)
    variants = [*VARIANTS, *(CUDA_VARIANTS if device.type == "cuda" else ())]
    variants = [v for v in variants if not (args.no_compile and v in ("compile", "cuda_graphs"))]
    started = time.perf_counter()
    agreement = one_step_agreement(device)
    print("bf16 vs fp32, one iteration from the same state: " + ", ".join(
        f"{k} {v:.3g}" for k, v in agreement.items() if k != "passed") + f" -> {'ok' if agreement['passed'] else 'FAILED'}")
    drift = windowed_means(device, args.check_iterations, args.check_window)
    for key, row in drift["statistics"].items():
        windows = ", ".join(f"{f:.3g}/{b:.3g}/{t:.3g}" for f, b, t in zip(
            row["fp32_windows"], row["bf16_windows"], row["fp32_twin_windows"]))
        print(f"  {key}, windowed means fp32/bf16/fp32 twin: {windows} "
              f"-> {'all within band' if row['within'] else 'OUTSIDE the band'}")
    results = [measure_speed(p, device, variants, args.iterations, args.rounds, args.batch_size, print)
               for p in args.presets]
    for result in results:
        ratios = ", ".join(f"{name}/fp32 {ratio:.2f}x" for name, ratio in result["ratio_to_fp32"].items()
                           if name != "fp32")
        print(f"{result['preset']}: fp32 {result['it_per_s']['fp32']:.3g} it/s; {ratios}"
              + (f" (compile fell back to eager: {result['compile_fallback']})" if result["compile_fallback"] else ""))
    record = {
        "benchmark": "precision_speed",
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "device": {"type": device.type, "name": device_name(device)},
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "settings": {**vars(args), "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()},
        "bf16_one_iteration": agreement,
        "bf16_windowed_means": drift,
        "results": results,
        "wall_seconds": time.perf_counter() - started,
    }
    if not args.no_save:
        print(f"appended to {save(record, RESULTS_DIR, benchmark='precision_speed')}")
    return 0 if agreement["passed"] and drift["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
