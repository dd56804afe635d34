"""Involution aggregation: the unfold formulation against the matmul one, side by side in one run.

:func:`giugan.ops.involution_aggregate` sums each output pixel's K*K kernel taps over the input
neighbourhood. It has two exact formulations (docs/performance.md, "Involution aggregation"):

* ``unfold``: unfold the K*K neighbourhoods, multiply by the kernel, sum over the taps
  (:func:`giugan.ops.involution.aggregate_by_unfold`), memory-bound elementwise work;
* ``matmul``: gather the kernel into one (H*W, H'*W') mixing matrix per sample and group and
  multiply (:func:`giugan.ops.involution.aggregate_as_matmul`): H*W / (K*K) times the
  multiply-adds, but as one batched matmul.

For every shape (those of the presets, plus a sweep over pixels per tap) both are timed for a
forward + backward and for the gradient penalty's case, a backward with ``create_graph=True``
followed by a second backward, in rounds that alternate the order. Printed: the median times, the
ratio unfold/matmul, and which one :func:`involution_aggregate` takes (``H*W <=
MATMUL_MAX_PIXELS_PER_TAP * K*K`` takes the matmul), so the threshold can be checked on a new
machine. A record is appended to ``benchmarks/results/involution_aggregation-<device>.json``.

    python benchmarks/involution_aggregation.py            # CPU, 1 thread, about 1 minute
    python benchmarks/involution_aggregation.py --device cuda --batch-size 64
    python benchmarks/involution_aggregation.py --rounds 1 --no-save
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from train_step import device_name, save  # benchmarks/ sibling script: shared record helpers

from giugan.ops.involution import (
    MATMUL_MAX_PIXELS_PER_TAP,
    aggregate_as_matmul,
    aggregate_by_unfold,
)

RESULTS_DIR = HERE / "results"
FORMULATIONS: dict[str, Callable[..., Tensor]] = {"unfold": aggregate_by_unfold, "matmul": aggregate_as_matmul}
#: (label, channels, groups, size, kernel size). The preset shapes first (docs/architectures.md:
#: GIU in the GIU-GAN 32 networks at 4x4 and 8x8, the GIU-GAN 64 ones at 8x8, the shallow-D/deep-G
#: ablation at 16x16), then a sweep in pixels per tap around the threshold. The iGAN layers (64
#: channels at 32x32, K = 3: 114 pixels per tap) are left out: far past the threshold, the matmul
#: is over ten times slower there and alone would take minutes at batch 64.
SHAPES: tuple[tuple[str, int, int, int, int], ...] = (
    ("giu_gan_32, 4x4 K3", 256, 16, 4, 3),
    ("giu_gan_32 kernel ablation, 4x4 K7", 256, 16, 4, 7),
    ("giu_gan_32 middle, 8x8 K3", 128, 8, 8, 3),
    ("giu_gan_64, 8x8 K3", 256, 16, 8, 3),
    ("shallow D / deep G, 16x16 K3", 64, 4, 16, 3),
    ("sweep, 16x16 K7", 64, 4, 16, 7),
    ("sweep, 16x16 K5", 64, 4, 16, 5),
    ("sweep, 12x12 K3", 64, 4, 12, 3),
    ("sweep, 20x20 K5", 64, 4, 20, 5),
    ("sweep, 24x24 K3", 64, 4, 24, 3),
)


def _inputs(channels: int, groups: int, size: int, kernel_size: int, batch: int,
            device: torch.device) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(batch, channels, size, size, generator=generator).to(device)
    kernel = torch.randn(batch, groups * kernel_size**2, size, size, generator=generator).to(device)
    return values.requires_grad_(), kernel.requires_grad_()


def run_once(function: Callable[..., Tensor], values: Tensor, kernel: Tensor, kernel_size: int,
             groups: int, double_backward: bool) -> None:
    """One forward + backward; with ``double_backward`` as the penalty does: the gradient of the
    output with ``create_graph=True``, then the gradient of that gradient's squared norm."""
    out = function(values, kernel, kernel_size, groups)
    if not double_backward:
        out.square().sum().backward()
        return
    (grad,) = torch.autograd.grad(out.square().sum(), values, create_graph=True)
    grad.square().sum().backward()


def _timed(fn: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


def measure(shape: tuple[str, int, int, int, int], batch: int, rounds: int,
            device: torch.device) -> dict[str, Any]:
    """Median milliseconds per formulation and case, the ratio unfold/matmul, and the dispatch."""
    label, channels, groups, size, kernel_size = shape
    values, kernel = _inputs(channels, groups, size, kernel_size, batch, device)
    cases = {"fwd_bwd": False, "double_backward": True}
    times: dict[str, dict[str, list[float]]] = {c: {f: [] for f in FORMULATIONS} for c in cases}
    for case, double in cases.items():
        for function in FORMULATIONS.values():  # untimed warm-up (and the tap index's cache)
            run_once(function, values, kernel, kernel_size, groups, double)
        for index in range(rounds):
            order = list(FORMULATIONS) if index % 2 == 0 else list(reversed(FORMULATIONS))
            for name in order:
                times[case][name].append(1e3 * _timed(lambda n=name, d=double: run_once(
                    FORMULATIONS[n], values, kernel, kernel_size, groups, d), device))
    medians = {c: {f: statistics.median(t) for f, t in per.items()} for c, per in times.items()}
    pixels_per_tap = size * size / kernel_size**2
    dispatch = "matmul" if size * size <= MATMUL_MAX_PIXELS_PER_TAP * kernel_size**2 else "unfold"
    return {
        "shape": label, "channels": channels, "groups": groups, "size": size,
        "kernel_size": kernel_size, "pixels_per_tap": pixels_per_tap, "dispatch": dispatch,
        "median_ms": medians,
        "unfold_over_matmul": {c: m["unfold"] / m["matmul"] for c, m in medians.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads; 0 keeps torch's default")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    rows = []
    for shape in SHAPES:
        row = measure(shape, args.batch_size, args.rounds, device)
        rows.append(row)
        ms, ratio = row["median_ms"], row["unfold_over_matmul"]
        faster = "matmul" if ratio["double_backward"] > 1 else "unfold"
        print(f"{row['shape']:<36} {row['pixels_per_tap']:5.1f} px/tap: "
              f"fwd+bwd unfold {ms['fwd_bwd']['unfold']:.3g} / matmul {ms['fwd_bwd']['matmul']:.3g} ms "
              f"({ratio['fwd_bwd']:.2f}x), double backward unfold {ms['double_backward']['unfold']:.3g} / "
              f"matmul {ms['double_backward']['matmul']:.3g} ms ({ratio['double_backward']:.2f}x); "
              f"dispatch takes {row['dispatch']}" + ("" if faster == row["dispatch"] else f" (faster here: {faster})"))
    record = {
        "benchmark": "involution_aggregation",
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "device": {"type": device.type, "name": device_name(device)},
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "settings": {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                     "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                     "matmul_max_pixels_per_tap": MATMUL_MAX_PIXELS_PER_TAP},
        "results": rows,
        "wall_seconds": time.perf_counter() - started,
    }
    if not args.no_save:
        print(f"record appended to {save(record, args.results_dir, 'involution_aggregation')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
