"""Generator iterations per second: ``GANModule`` under the Lightning Trainer vs a bare PyTorch loop.

Both sides train the same networks (a preset, by default ``giu_gan_32``), with the
same batch size, device, WGAN-GP loss (penalty in the same critic step, lambda 10), ``n_critic``
1 and Adam(2e-4, betas (0, 0.9)), on the same real batches, pre-generated in memory on the
training device (so data loading is not measured), and with the same per-iteration noise
(:func:`giugan.seeding.step_generator`). :class:`BareLoop` calls the same step functions as
``GANModule.training_step`` (``giugan.training.steps``), so what is compared is the framework around
one piece of math; ``tests/test_benchmarks.py`` still checks that both sides end with identical
parameters and buffers from the same start.

Timing (``time.perf_counter``, CUDA synchronised at every clock reading) covers ``N`` whole
iterations per side per round after one untimed iteration: Trainer start-up,
``configure_optimizers`` and the first Adam step are excluded; everything the Trainer does between
two batches is included (a callback reads the clock at every batch end). After an untimed warm-up,
``--rounds`` rounds alternate the two sides, either every iteration inside one Trainer fit
(``--interleave iteration``, the CPU default: both sides see the same moment's machine load) or in
blocks of ``N`` in ABBA order (``--interleave block``, the CUDA default: no synchronisation inside
a block). Reported: the median iterations/s of each side and their ratio (trainer / bare); the
target is >= 0.97. See benchmarks/README.md.

Each run appends one record to ``benchmarks/results/train_step-<device name>.json``.

    python benchmarks/train_step.py                      # CPU: 20 iterations x 5 rounds, 1 thread
    python benchmarks/train_step.py --device cuda        # CUDA: 200 iterations x 5 rounds
    python benchmarks/train_step.py --iterations 10 --rounds 3 --threads 0
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import json
import logging
import os
import platform
import re
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from giugan.seeding import step_generator

TARGET_RATIO = 0.97
RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: Not a paper preset: GIU-GAN 32 at conv_dim 4 (GIU(16) in the same slots), for smoke tests.
TINY_PRESET = "tiny_giu_gan_32"
#: Per-device defaults: (iterations per round, rounds, warm-up iterations, interleaving, threads).
#: One CPU thread by default: on a shared or small machine, OpenMP threads waiting on a descheduled
#: sibling make iteration times swing 10x (1-10 s for giu_gan_32 on a busy 2-core VM), while one
#: thread gives a steady 0.7 s. ``--threads 0`` keeps torch's default.
DEFAULTS = {"cpu": (20, 5, 2, "iteration", 1), "cuda": (200, 5, 20, "block", 0)}


@dataclass
class Settings:
    """Everything that defines a measurement (stored in the results record)."""

    device: str = "cpu"
    preset: str = "giu_gan_32"
    batch_size: int = 64
    iterations: int = 10
    rounds: int = 3
    warmup: int = 1
    threads: int | None = None
    seed: int = 0
    lr: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.9)
    gp_weight: float = 10.0
    bare_bookkeeping: bool = False
    interleave: str = "iteration"  # "iteration" (CPU default) or "block" (CUDA default)
    data_batches: int = field(default=0)  # distinct pre-generated batches (0 = iterations + 1)


# ----------------------------------------------------------------------------- set-up helpers
def build_networks(preset: str, seed: int) -> tuple[nn.Module, nn.Module]:
    """``(G, D)`` of ``preset`` initialised from ``seed`` (``tiny_giu_gan_32`` for tests)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if preset == TINY_PRESET:
            from giugan.nets import Discriminator, Generator
            from giugan.ops import GIU

            return (
                Generator(32, conv_dim=4, rbn_blocks="outer", inserts={1: GIU(16)}),
                Discriminator(32, conv_dim=4, inserts={3: GIU(16)}),
            )
        from giugan.nets.presets import build_preset

        return build_preset(preset)


def cloned_networks(preset: str, seed: int, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """Independent copies of the same initial ``(G, D)`` on ``device``."""
    generator, discriminator = build_networks(preset, seed)
    return generator.to(device), discriminator.to(device)


def image_shape(generator: nn.Module) -> tuple[int, int, int]:
    """``(3, S, S)`` of the generator's output."""
    size = getattr(generator, "image_size", None)
    if isinstance(size, int):
        return (3, size, size)
    was_training = generator.training
    generator.eval()
    with torch.no_grad():
        device = next(generator.parameters()).device
        shape = generator(torch.zeros(1, generator.z_dim, device=device)).shape[1:]
    generator.train(was_training)
    return tuple(shape)  # type: ignore[return-value]


def make_batches(
    count: int, batch_size: int, shape: Sequence[int], seed: int, device: torch.device
) -> list[Tensor]:
    """``count`` fixed "real" batches in [-1, 1], already on ``device`` (no data loading measured)."""
    rng = torch.Generator().manual_seed(seed)
    return [
        (torch.rand(batch_size, *shape, generator=rng) * 2 - 1).to(device) for _ in range(count)
    ]


def cycle(batches: list[Tensor], start: int, count: int) -> list[Tensor]:
    """``count`` batches from ``batches`` starting at ``start``, wrapping around."""
    return [batches[(start + i) % len(batches)] for i in range(count)]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _adam(settings: Settings) -> Any:
    return functools.partial(torch.optim.Adam, lr=settings.lr, betas=tuple(settings.betas))


# ----------------------------------------------------------------------------- the bare loop
class BareLoop:
    """Plain PyTorch training that calls the very functions ``GANModule.training_step`` calls.

    Per iteration ``t``: ``rng = step_generator(seed, 0, t)`` and
    :func:`giugan.training.steps.generator_iteration` (WGAN-GP, penalty in the same critic step,
    ``n_critic`` 1) with a plain backend: ``Tensor.backward`` and ``requires_grad_`` freezing of
    the other network instead of Lightning's ``manual_backward`` and ``toggle_optimizer``. Without
    ``bookkeeping`` the NaN guard and gradient norms are skipped, to attribute a gap between the
    two sides to them or to Lightning.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        settings: Settings,
        device: torch.device,
    ) -> None:
        from giugan.losses import WassersteinLoss
        from giugan.training.steps import StepBackend, StepSettings

        self.generator = generator.train()
        self.discriminator = discriminator.train()
        self.opt_g = _adam(settings)(generator.parameters())
        self.opt_d = _adam(settings)(discriminator.parameters())
        self.step_settings = StepSettings(
            loss=WassersteinLoss(gp_weight=settings.gp_weight, gp_mode="same_step"),
            nan_guard=settings.bare_bookkeeping,
            grad_norms=settings.bare_bookkeeping,
        )
        self.backend = StepBackend.plain(generator, discriminator)
        self.seed = settings.seed
        self.device = device
        self.iteration = 0

    def step(self, real: Tensor) -> None:
        """One generator iteration (one critic step, one generator step) on ``real``."""
        from giugan.training.steps import generator_iteration

        rng = step_generator(self.seed, 0, self.iteration, self.device)
        generator_iteration(
            self.generator, self.discriminator, (self.opt_g, self.opt_d), real, 1, rng,
            self.step_settings, self.backend,
        )
        self.iteration += 1

    def run(self, batches: Sequence[Tensor]) -> float:
        """Train on ``batches``; seconds for all but the first (untimed) iteration."""
        self.step(batches[0])
        synchronize(self.device)
        started = time.perf_counter()
        for real in batches[1:]:
            self.step(real)
        synchronize(self.device)
        return time.perf_counter() - started


# ----------------------------------------------------------------------------- the Trainer side
class _Batches(torch.utils.data.Dataset):
    """The pre-generated batches as a dataset of whole batches (``batch_size=None`` loader)."""

    def __init__(self, batches: Sequence[Tensor]) -> None:
        self.batches = list(batches)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> Tensor:
        return self.batches[index]


def make_module(
    generator: nn.Module, discriminator: nn.Module, settings: Settings
) -> Any:
    """A ``GANModule`` with the benchmark's settings (no metrics, no EMA, constant LR)."""
    from giugan.losses import WassersteinLoss
    from giugan.training.module import GANModule

    return GANModule(
        generator=generator,
        discriminator=discriminator,
        loss=WassersteinLoss(gp_weight=settings.gp_weight, gp_mode="same_step"),
        n_critic=1,
        generator_iterations=1,  # set per fit by run_trainer
        optimizer_g=_adam(settings),
        optimizer_d=_adam(settings),
        metrics=None,
        seed=settings.seed,
    )


class BatchClock:
    """Per-batch hook on the Trainer (a Lightning callback calling ``batch_end(batch_idx)``).

    Block mode: times from the end of the first training batch to the end of the last.
    Interleaved mode (``bare`` given): after every Trainer batch, runs one bare-loop iteration on
    the same real batch and times it on its own; the Trainer's time for batch ``k`` is from the end
    of that bare iteration to the end of batch ``k + 1``. Both sides skip their first iteration.
    """

    def __init__(
        self, device: torch.device, batches: Sequence[Tensor], bare: BareLoop | None = None
    ) -> None:
        from lightning.pytorch import Callback

        clock = self

        class _Callback(Callback):
            def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                                   batch_idx: int) -> None:
                clock.batch_end(batch_idx)

        self.callback = _Callback()
        self.device = device
        self.batches = batches
        self.bare = bare
        self.trainer_seconds = 0.0
        self.bare_seconds = 0.0
        self.timed_batches = 0
        self._resumed: float | None = None

    def batch_end(self, batch_idx: int) -> None:
        synchronize(self.device)
        now = time.perf_counter()
        if batch_idx > 0:
            self.trainer_seconds += now - self._resumed
            self.timed_batches += 1
        if self.bare is not None:
            self.bare.step(self.batches[batch_idx])
            synchronize(self.device)
            done = time.perf_counter()
            if batch_idx > 0:
                self.bare_seconds += done - now
            now = done
        self._resumed = now

    def check(self) -> None:
        if self.timed_batches != len(self.batches) - 1:
            raise RuntimeError(
                f"BatchClock: the Trainer ran {self.timed_batches + 1} of {len(self.batches)} batches."
            )


def _fit(module: Any, batches: Sequence[Tensor], device: torch.device, clock: BatchClock) -> None:
    from lightning.pytorch import Trainer

    # The module stops itself after len(batches) generator iterations, as in a real run.
    module.hparams.generator_iterations = module.generator_iteration + len(batches)
    trainer = Trainer(
        accelerator=device.type if device.type != "cuda" else "gpu",
        devices=1 if device.index is None else [device.index],
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock.callback],
    )
    loader = torch.utils.data.DataLoader(_Batches(batches), batch_size=None, shuffle=False)
    trainer.fit(module, train_dataloaders=loader)
    clock.check()


def run_trainer(module: Any, batches: Sequence[Tensor], device: torch.device) -> float:
    """``trainer.fit`` on ``batches``; seconds for all but the first iteration."""
    clock = BatchClock(device, batches)
    _fit(module, batches, device, clock)
    return clock.trainer_seconds


def run_interleaved(
    module: Any, bare: BareLoop, batches: Sequence[Tensor], device: torch.device
) -> tuple[float, float]:
    """One ``trainer.fit`` on ``batches`` with a bare iteration after every Trainer iteration.

    Returns (Trainer seconds, bare seconds), each for all but its first iteration. Both sides see
    the same moment's machine load, which makes the ratio usable on a shared, noisy CPU; every
    iteration ends with a device synchronisation on both sides.
    """
    clock = BatchClock(device, batches, bare)
    _fit(module, batches, device, clock)
    return clock.trainer_seconds, clock.bare_seconds


# ----------------------------------------------------------------------------- the measurement
def device_name(device: torch.device) -> str:
    """``torch.cuda.get_device_name`` or the CPU model from /proc/cpuinfo."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def slug(name: str) -> str:
    """``"NVIDIA H100 80GB HBM3"`` -> ``"nvidia-h100-80gb-hbm3"``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"


def _quiet_lightning() -> None:
    import lightning.pytorch  # noqa: F401  (its import sets its own log level; override after)

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"lightning(\.|$)")
    warnings.filterwarnings("ignore", message=r".*(num_workers|logging interval|LightningModule).*")


def measure(settings: Settings, log: Any = print) -> dict[str, Any]:
    """Run the warm-up and the alternating rounds; return the results record (not saved)."""
    import lightning

    _quiet_lightning()
    device = torch.device(settings.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("train_step: --device cuda was given but CUDA is not available.")
    if settings.threads:
        torch.set_num_threads(settings.threads)
    trainer_nets = cloned_networks(settings.preset, settings.seed, device)
    bare_nets = cloned_networks(settings.preset, settings.seed, device)
    per_fit = settings.iterations + 1  # the first iteration of every fit/run is untimed
    data = make_batches(
        settings.data_batches or per_fit, settings.batch_size, image_shape(trainer_nets[0]),
        settings.seed + 1, device,
    )
    module = make_module(*trainer_nets, settings)
    bare = BareLoop(*bare_nets, settings, device)

    def trainer_side(count: int) -> float:
        return run_trainer(module, cycle(data, module.generator_iteration, count), device)

    def bare_side(count: int) -> float:
        return bare.run(cycle(data, bare.iteration, count))

    def both_sides(count: int) -> dict[str, float]:
        if settings.interleave == "iteration":
            batches = cycle(data, module.generator_iteration, count)
            trainer_s, bare_s = run_interleaved(module, bare, batches, device)
            return {"trainer": trainer_s, "bare": bare_s}
        return {"trainer": trainer_side(count), "bare": bare_side(count)}

    started = time.perf_counter()
    if settings.warmup > 0:
        both_sides(settings.warmup + 1)
        log(f"warm-up ({settings.warmup} iterations each) done in "
            f"{time.perf_counter() - started:.1f} s")
    rounds = []
    for index in range(settings.rounds):
        if settings.interleave == "iteration":
            order = ["trainer", "bare"]  # alternating every iteration
            seconds = both_sides(per_fit)
        else:
            order = ["trainer", "bare"] if index % 2 == 0 else ["bare", "trainer"]
            seconds = {}
            for side in order:
                seconds[side] = (trainer_side if side == "trainer" else bare_side)(per_fit)
        trainer_ips = settings.iterations / seconds["trainer"]
        bare_ips = settings.iterations / seconds["bare"]
        rounds.append({
            "order": order,
            "trainer_seconds": seconds["trainer"],
            "bare_seconds": seconds["bare"],
            "trainer_it_per_s": trainer_ips,
            "bare_it_per_s": bare_ips,
            "ratio": trainer_ips / bare_ips,
        })
        how = "alternating every iteration" if settings.interleave == "iteration" else " then ".join(order)
        log(f"round {index + 1}/{settings.rounds} ({how}): trainer {trainer_ips:.4g} it/s, "
            f"bare {bare_ips:.4g} it/s, ratio {trainer_ips / bare_ips:.3f}")
    trainer_median = statistics.median(r["trainer_it_per_s"] for r in rounds)
    bare_median = statistics.median(r["bare_it_per_s"] for r in rounds)
    ratio = trainer_median / bare_median
    return {
        "benchmark": "train_step",
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "device": {"type": device.type, "name": device_name(device)},
        "versions": {
            "torch": torch.__version__,
            "lightning": lightning.__version__,
            "python": platform.python_version(),
        },
        "settings": {**asdict(settings), "torch_threads": torch.get_num_threads(),
                     "cpu_count": os.cpu_count()},
        "rounds": rounds,
        "trainer_it_per_s": trainer_median,
        "bare_it_per_s": bare_median,
        "ratio": ratio,
        "median_round_ratio": statistics.median(r["ratio"] for r in rounds),
        "target": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
        "wall_seconds": time.perf_counter() - started,
    }


def save(record: dict[str, Any], results_dir: Path = RESULTS_DIR, benchmark: str = "train_step") -> Path:
    """Append ``record`` to ``<results_dir>/<benchmark>-<device slug>.json`` (a JSON list, written
    atomically); shared by the benchmarks in this folder."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{benchmark}-{slug(record['device']['name'])}.json"
    records = json.loads(path.read_text()) if path.exists() else []
    records.append(record)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(records, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def summary(record: dict[str, Any]) -> str:
    s = record["settings"]
    verdict = "meets" if record["meets_target"] else "BELOW"
    return (
        f"train_step on {record['device']['name']} ({record['device']['type']}, "
        f"{s['torch_threads']} threads): {s['preset']}, batch {s['batch_size']}, "
        f"{s['iterations']} iterations x {s['rounds']} rounds\n"
        f"  Lightning Trainer + GANModule: {record['trainer_it_per_s']:.4g} generator it/s (median)\n"
        f"  bare PyTorch loop:             {record['bare_it_per_s']:.4g} generator it/s (median)\n"
        f"  ratio trainer/bare: {record['ratio']:.3f} ({verdict} the {record['target']} target; "
        f"median of per-round ratios {record['median_round_ratio']:.3f})"
    )


def parse_args(argv: Sequence[str] | None) -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        description="Generator iterations/s of GANModule under the Lightning Trainer vs a bare "
        "PyTorch loop calling the same step functions, measured side by side."
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--preset", default="giu_gan_32",
                        help=f"network preset (default giu_gan_32; {TINY_PRESET} for smoke tests)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=None,
                        help="timed generator iterations per side per round (default: cpu 10, cuda 200)")
    parser.add_argument("--rounds", type=int, default=None, help="default: cpu 3, cuda 5")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed warm-up iterations per side (default: cpu 1, cuda 20)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: cpu 1, cuda torch's default; "
                        "0 = torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--interleave", choices=("iteration", "block"), default=None,
                        help="alternate the sides every iteration (default on CPU: both see the "
                        "same load) or in blocks of --iterations, ABBA (default on CUDA: no "
                        "per-iteration synchronisation)")
    parser.add_argument("--bare-bookkeeping", action="store_true",
                        help="the bare loop also runs the module's NaN guard and gradient norms")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-save", action="store_true", help="print only; write no results file")
    args = parser.parse_args(argv)
    kind = torch.device(args.device).type
    iterations, rounds, warmup, interleave, threads = DEFAULTS.get(kind, DEFAULTS["cpu"])
    settings = Settings(
        device=args.device,
        preset=args.preset,
        batch_size=args.batch_size,
        iterations=args.iterations if args.iterations is not None else iterations,
        rounds=args.rounds if args.rounds is not None else rounds,
        warmup=args.warmup if args.warmup is not None else warmup,
        threads=(args.threads if args.threads is not None else threads) or None,
        seed=args.seed,
        bare_bookkeeping=args.bare_bookkeeping,
        interleave=args.interleave or interleave,
    )
    for name in ("batch_size", "iterations", "rounds"):
        if getattr(settings, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(settings, name)}")
    if settings.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {settings.warmup}")
    return settings, args


def main(argv: Sequence[str] | None = None) -> int:
    settings, args = parse_args(argv)
    record = measure(settings)
    print(summary(record))
    if not args.no_save:
        print(f"  appended to {save(record, args.results_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
