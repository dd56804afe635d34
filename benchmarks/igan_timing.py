"""iGAN report Table 2 "time per step": the seven involution cases timed side by side in one run.

The report (its section 5.2, Table 2) times "the total time cost of each step while other layers
are fixed" for seven (K, G, R) settings of its involution layer (C = 64) and prints seconds per
step: 0.154 (case 1), 0.333, 0.342, 0.152, 0.152, 0.120, 0.230, on an RTX 2080 SUPER. Absolute
seconds depend on the machine, so this benchmark compares **relative** times: each case's median
divided by case 1's, next to the report's seconds divided by 0.154.

Two things are timed for every case, interleaved (every repetition visits all seven cases, the
starting case rotating, so a busy or throttled machine slows every case alike):

* ``layer``: one :class:`giugan.ops.IGANInvolution2d` (64 channels, in training mode) forward +
  backward on a ``(batch, 64, 32, 32)`` input, the shape at both places the iGAN preset inserts it
  (after G block 4 and after D block 1);
* ``iteration``: one whole training iteration of the iGAN preset of that case (CelebA 64x64):
  a WGAN-GP critic step (penalty weight 10, in the same step) and a generator step, Adam with the
  report's Table 1 settings (G 1e-4, D 4e-4, betas (0, 0.9)).

Timing: ``time.perf_counter``, with ``torch.cuda.synchronize`` at both clock readings on CUDA; one
untimed warm-up per case and kind. Each run appends one record to
``benchmarks/results/igan_timing-<device>.json``.

    python benchmarks/igan_timing.py                       # CPU, 1 thread, about 2-3 minutes
    python benchmarks/igan_timing.py --device cuda         # batch 64, as the report trains
    python benchmarks/igan_timing.py --repeats 1 --no-save
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):  # run as a script or loaded from a file: make the repo importable
    sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from train_step import device_name  # benchmarks/ sibling script

from giugan.nets import build_preset
from giugan.ops import IGANInvolution2d
from giugan.profiling.paper_tables import IGAN_CHANNELS, IGAN_TABLE2

RESULTS_DIR = HERE / "results"
#: Per device: (layer batch, iteration batch, repeats, torch threads; 0 keeps torch's default).
#: One CPU thread: on a small shared machine OpenMP threads waiting for a descheduled sibling make
#: step times swing several-fold (see benchmarks/README.md).
DEFAULTS = {"cpu": (8, 4, 3, 1), "cuda": (64, 64, 20, 0)}
#: Side length of the involution's input at both insert positions of the 64x64 iGAN preset.
LAYER_SIZE = 32


@dataclass
class Settings:
    """Everything that defines a measurement (stored in the record)."""

    device: str = "cpu"
    layer_batch: int = 8
    iteration_batch: int = 4
    repeats: int = 3
    threads: int = 1
    seed: int = 0
    skip_iterations: bool = False


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def layer_step(kernel_size: int, groups: int, reduction_ratio: int, batch: int,
               device: torch.device) -> Callable[[], None]:
    """Forward + backward of one involution layer (training mode) on a fixed input."""
    layer = IGANInvolution2d(IGAN_CHANNELS, kernel_size, groups, reduction_ratio).to(device)
    layer.train()
    x = torch.randn(batch, IGAN_CHANNELS, LAYER_SIZE, LAYER_SIZE, device=device,
                    requires_grad=True)

    def run() -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x).sum().backward()

    return run


def _gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def training_iteration(preset: str, batch: int, device: torch.device) -> Callable[[], None]:
    """One WGAN-GP critic step + one generator step of ``preset`` (the iGAN report's Table 1)."""
    generator, critic = (net.to(device).train() for net in build_preset(preset))
    g_opt = torch.optim.Adam(generator.parameters(), lr=1e-4, betas=(0.0, 0.9))
    d_opt = torch.optim.Adam(critic.parameters(), lr=4e-4, betas=(0.0, 0.9))
    real = torch.rand(batch, 3, generator.image_size, generator.image_size, device=device) * 2 - 1

    def run() -> None:
        z = torch.randn(batch, generator.z_dim, device=device)
        with torch.no_grad():
            fake = generator(z)
        d_loss = critic(fake).mean() - critic(real).mean() + 10 * _gradient_penalty(critic, real, fake)
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        critic.requires_grad_(False)
        g_loss = -critic(generator(torch.randn(batch, generator.z_dim, device=device))).mean()
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        critic.requires_grad_(True)

    return run


def _timed(run: Callable[[], None], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    return time.perf_counter() - start


def _interleaved(runs: list[Callable[[], None]], repeats: int, device: torch.device) -> list[list[float]]:
    """Seconds per run and repeat; every repeat visits every run, starting one later each time."""
    for run in runs:  # untimed warm-up
        run()
    seconds: list[list[float]] = [[] for _ in runs]
    for repeat in range(repeats):
        for offset in range(len(runs)):
            index = (repeat + offset) % len(runs)
            seconds[index].append(_timed(runs[index], device))
    return seconds


def _relative(medians: list[float]) -> list[float]:
    return [m / medians[0] for m in medians]


def measure(settings: Settings, log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Time the seven cases; return the record (not saved)."""
    device = torch.device(settings.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("igan_timing: --device cuda was given but CUDA is not available; "
                         "run with --device cpu.")
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    cases = list(IGAN_TABLE2)
    log(f"timing {len(cases)} involution layers x {settings.repeats} repeats ...")
    layer_runs = [layer_step(c.kernel_size, c.groups, c.reduction_ratio, settings.layer_batch,
                             device) for c in cases]
    layer_seconds = _interleaved(layer_runs, settings.repeats, device)
    iteration_seconds: list[list[float]] | None = None
    if not settings.skip_iterations:
        log(f"timing {len(cases)} iGAN training iterations x {settings.repeats} repeats ...")
        iteration_runs = [training_iteration(c.preset, settings.iteration_batch, device)
                          for c in cases]
        iteration_seconds = _interleaved(iteration_runs, settings.repeats, device)
    layer_medians = [statistics.median(s) for s in layer_seconds]
    report_relative = _relative([c.seconds_per_step for c in cases])
    rows = []
    for i, case in enumerate(cases):
        row = {
            "case": case.case, "kernel_size": case.kernel_size, "groups": case.groups,
            "reduction_ratio": case.reduction_ratio, "preset": case.preset,
            "report_seconds": case.seconds_per_step, "report_relative": report_relative[i],
            "layer_seconds": layer_seconds[i], "layer_median": layer_medians[i],
            "layer_relative": _relative(layer_medians)[i],
            "iteration_seconds": None, "iteration_median": None, "iteration_relative": None,
        }
        if iteration_seconds is not None:
            medians = [statistics.median(s) for s in iteration_seconds]
            row.update(iteration_seconds=iteration_seconds[i], iteration_median=medians[i],
                       iteration_relative=_relative(medians)[i])
        rows.append(row)
    return {
        "benchmark": "igan_timing",
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "device": {"type": device.type, "name": device_name(device)},
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "settings": {**asdict(settings), "torch_threads": torch.get_num_threads(),
                     "cpu_count": os.cpu_count(), "layer_input": [IGAN_CHANNELS, LAYER_SIZE,
                                                                  LAYER_SIZE]},
        "cases": rows,
    }


def save(record: dict[str, Any], results_dir: Path = RESULTS_DIR) -> Path:
    """Append ``record`` to ``<results_dir>/igan_timing-<device slug>.json`` (a JSON list)."""
    from train_step import save as save_record

    return save_record(record, results_dir, benchmark="igan_timing")


def summary(record: dict[str, Any]) -> str:
    """The seven relative times beside the report's, as an aligned table."""
    s = record["settings"]
    lines = [
        (f"igan_timing on {record['device']['name']} ({record['device']['type']}, "
         f"{s['torch_threads']} threads): layer batch {s['layer_batch']}, iteration batch "
         f"{s['iteration_batch']}, {s['repeats']} repeats, medians relative to case 1"),
        "case  K  G  R  report s  report rel  layer s (median)  layer rel  iteration s  iter rel",
    ]
    for r in record["cases"]:
        iteration = ("           -         -" if r["iteration_median"] is None else
                     f"  {r['iteration_median']:11.4f}  {r['iteration_relative']:8.2f}")
        lines.append(
            f"{r['case']:>4}  {r['kernel_size']}  {r['groups']}  {r['reduction_ratio']}  "
            f"{r['report_seconds']:8.3f}  {r['report_relative']:10.2f}  "
            f"{r['layer_median']:16.5f}  {r['layer_relative']:9.2f}{iteration}"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="igan_timing.py",
        description="iGAN report Table 2 'time per step': seven involution cases, relative to "
        "case 1, beside the report's relative times.",
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--layer-batch", type=int, help="layer input batch (cpu 8, cuda 64)")
    parser.add_argument("--iteration-batch", type=int, help="training batch (cpu 4, cuda 64)")
    parser.add_argument("--repeats", type=int, help="timed repeats per case (cpu 3, cuda 20)")
    parser.add_argument("--threads", type=int,
                        help="torch intra-op threads (cpu 1; 0 keeps torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-iterations", action="store_true",
                        help="time the layers only (no whole training iterations)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-save", action="store_true", help="print only, write no record")
    args = parser.parse_args(argv)
    kind = torch.device(args.device).type
    layer_batch, iteration_batch, repeats, threads = DEFAULTS.get(kind, DEFAULTS["cpu"])
    settings = Settings(
        device=args.device,
        layer_batch=args.layer_batch or layer_batch,
        iteration_batch=args.iteration_batch or iteration_batch,
        repeats=args.repeats or repeats,
        threads=threads if args.threads is None else args.threads,
        seed=args.seed,
        skip_iterations=args.skip_iterations,
    )
    return settings, args


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the table, append the record (unless ``--no-save``); returns 0."""
    settings, args = parse_args(argv)
    record = measure(settings)
    print(summary(record))
    if not args.no_save:
        print(f"record appended to {save(record, args.results_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
