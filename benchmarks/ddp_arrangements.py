"""Two DDP arrangements of the alternating critic/generator steps, measured side by side.

Both run giugan's step functions (``giugan.training.steps``) in ``--world-size`` (2) CPU processes
started by this script (gloo, localhost, a free port, one thread each), on the same networks (a
preset, by default ``giu_gan_32``) from the same start, with WGAN-GP (lambda 10, penalty in the
critic step), ``n_critic`` 1, Adam(2e-4, betas (0, 0.9)), ``--batch-size`` 64 per rank, the same
pre-generated in-memory real batches (different on every rank) and the same per-rank noise
(:func:`giugan.seeding.step_generator` with the rank):

* ``find_unused``: ONE ``DistributedDataParallel`` around a module holding G and D, with
  ``find_unused_parameters=True``: what Lightning's ``ddp_find_unused_parameters_true`` strategy does
  with giugan's manually optimised ``GANModule``. The whole iteration runs inside one DDP forward
  (Lightning's forward redirection of ``training_step``), and every backward is preceded by
  Lightning's own ``prepare_for_backward`` (``DDPStrategy.pre_backward`` under manual
  optimisation): the reducer walks the loss's graph to find the parameters it does not reach. Each
  backward reaches one network only (the other is frozen with ``requires_grad_(False)``, as
  ``toggle_optimizer`` does), yet all-reduces the gradient buckets of both.
* ``wrapped_per_network``: G and D each in their own ``DistributedDataParallel``
  (``find_unused_parameters=False``), called so that every backward through a wrapper uses all of
  its parameters: the critic step calls D's wrapper (real, ``fake.detach()`` and the WGAN-GP
  interpolates), the generator step calls G's wrapper and the UNWRAPPED D (frozen), so D's reducer
  is never left waiting for gradients that do not come.

Correctness: after the run both arrangements have done the same iterations from the same start,
so their parameters must agree within ``PARAM_TOLERANCE`` on every rank (DDP averages the gradients
in both), and every rank must hold the same parameters; the maximal absolute differences are
reported, and the script exits non-zero when a check fails.

Timing (``time.perf_counter`` between two barriers, the slowest rank's seconds): after an
untimed warm-up of each arrangement, ``--rounds`` rounds each time ``--iterations`` generator
iterations of each, alternating ``find_unused`` and ``wrapped_per_network`` (ABAB) every iteration
(``--interleave iteration``, the default: both see the same moment's load on a shared CPU) or in
blocks of ``--iterations`` (``--interleave block``). Reported: the median iterations/s of each and
the ratio wrapped_per_network / find_unused. See benchmarks/README.md.

Each run appends one record to ``benchmarks/results/ddp_arrangements-<device name>.json``.

    python benchmarks/ddp_arrangements.py                      # about 4 minutes on 2 cores
    python benchmarks/ddp_arrangements.py --iterations 10 --rounds 3 --preset sngan_32
    python benchmarks/ddp_arrangements.py --dry-run --results-dir /tmp/ddp-dry-run
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

# benchmarks/ sibling script: the shared set-up and record helpers
from train_step import (
    RESULTS_DIR,
    TINY_PRESET,
    build_networks,
    device_name,
    image_shape,
    make_batches,
    save,
)

from giugan.seeding import step_generator

BENCHMARK = "ddp_arrangements"
ARRANGEMENTS = ("find_unused", "wrapped_per_network")
#: Largest admissible |difference| between the arrangements' (and the ranks') parameters. Both
#: arrangements do the same float operations; only the reduction's bucketing differs.
PARAM_TOLERANCE = 1e-5
#: A rank waiting longer than this in a collective means the other one died or hung.
COLLECTIVE_TIMEOUT_S = 600


@dataclass
class Settings:
    """Everything that defines a measurement (stored in the results record)."""

    preset: str = "giu_gan_32"
    batch_size: int = 64  # per rank
    n_critic: int = 1
    iterations: int = 20
    rounds: int = 5
    warmup: int = 2
    world_size: int = 2
    threads: int = 1  # per process
    seed: int = 0
    lr: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.9)
    gp_weight: float = 10.0
    #: "iteration": A, B, A, B, ... one iteration each (both see the same moment's machine load);
    #: "block": ``iterations`` of A, then ``iterations`` of B, every round.
    interleave: str = "iteration"
    dry_run: bool = False


# ----------------------------------------------------------------------------- the arrangements
def _step_settings(settings: Settings) -> Any:
    from giugan.losses import WassersteinLoss
    from giugan.training.steps import StepSettings

    # No NaN guard or gradient norms: the distributed arrangement is what is measured.
    return StepSettings(loss=WassersteinLoss(gp_weight=settings.gp_weight, gp_mode="same_step"),
                        nan_guard=False, grad_norms=False)


def _optimizers(generator: nn.Module, discriminator: nn.Module,
                settings: Settings) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    adam = functools.partial(torch.optim.Adam, lr=settings.lr, betas=tuple(settings.betas))
    return adam(generator.parameters()), adam(discriminator.parameters())


class _GAN(nn.Module):
    """G and D in one module, whose forward is one generator iteration: the LightningModule that
    Lightning's DDP strategy wraps, its ``training_step`` redirected through ``DDP.forward``."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, settings: Settings) -> None:
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        self.n_critic = settings.n_critic
        self.step_settings = _step_settings(settings)
        self.optimizers = _optimizers(generator, discriminator, settings)
        self.backend: Any = None  # set by FindUnused (it needs the wrapper)

    def forward(self, real_batches: Tensor, rng: torch.Generator) -> None:
        from giugan.training.steps import generator_iteration

        generator_iteration(self.generator, self.discriminator, self.optimizers, real_batches,
                            self.n_critic, rng, self.step_settings, self.backend)


class FindUnused:
    """(a) One DDP around G and D, ``find_unused_parameters=True``, driven as Lightning drives it."""

    name = "find_unused"

    def __init__(self, generator: nn.Module, discriminator: nn.Module, settings: Settings) -> None:
        # Lightning's own function (DDPStrategy.pre_backward calls it before every manual_backward)
        from lightning.pytorch.overrides.distributed import prepare_for_backward

        from giugan.training.steps import StepBackend

        self.module = _GAN(generator.train(), discriminator.train(), settings)
        self.ddp = DistributedDataParallel(self.module, find_unused_parameters=True)
        ddp = self.ddp

        def backward(loss: Tensor) -> None:
            # The forward that built `loss` was not DDP's own (it ran inside DDP.forward, in the
            # step), so the reducer must be told which parameters this backward reaches.
            prepare_for_backward(ddp, loss)
            loss.backward()

        self.module.backend = StepBackend(
            backward=backward, toggle=StepBackend.plain(generator, discriminator).toggle
        )

    def step(self, real_batches: Tensor, rng: torch.Generator) -> None:
        self.ddp(real_batches, rng)  # Lightning: strategy.training_step -> DDP.forward -> step

    def named_parameters(self) -> list[tuple[str, Tensor]]:
        return list(self.module.named_parameters())


class WrappedPerNetwork:
    """(b) G and D each in their own DDP (``find_unused_parameters=False``); every backward through
    a wrapper uses all of its parameters."""

    name = "wrapped_per_network"

    def __init__(self, generator: nn.Module, discriminator: nn.Module, settings: Settings) -> None:
        from giugan.training.steps import StepBackend

        self.generator = generator.train()
        self.discriminator = discriminator.train()
        self.ddp_g = DistributedDataParallel(generator)
        self.ddp_d = DistributedDataParallel(discriminator)
        self.n_critic = settings.n_critic
        self.step_settings = _step_settings(settings)
        self.opt_g, self.opt_d = _optimizers(generator, discriminator, settings)
        toggle = StepBackend.plain(generator, discriminator).toggle
        # Critic step: D's wrapper is passed as the discriminator, so the scores of real and fake
        # AND the penalty's forward go through it; G (under no_grad) is the bare module.
        self.critic_backend = StepBackend(toggle=toggle)
        # Generator step: the forward of G goes through G's wrapper (the backend's slot for an
        # alternative forward of the same parameters), D is the bare, frozen module.
        self.generator_backend = StepBackend(toggle=toggle, compiled_generator=self.ddp_g)

    def step(self, real_batches: Tensor, rng: torch.Generator) -> None:
        """``generator_iteration`` with the wrappers above (same step functions, same noise order)."""
        from giugan.training.steps import critic_step, generator_step

        for real in real_batches.chunk(self.n_critic):
            critic_step(self.generator, self.ddp_d, self.opt_d, real, rng, self.step_settings,
                        self.critic_backend)
        generator_step(self.generator, self.discriminator, self.opt_g, real, rng,
                       self.step_settings, self.generator_backend)

    def named_parameters(self) -> list[tuple[str, Tensor]]:
        return ([(f"generator.{n}", p) for n, p in self.generator.named_parameters()]
                + [(f"discriminator.{n}", p) for n, p in self.discriminator.named_parameters()])


# ----------------------------------------------------------------------------- one rank
def _flat(named: list[tuple[str, Tensor]], prefix: str = "") -> Tensor:
    return torch.cat([p.detach().reshape(-1) for n, p in named if n.startswith(prefix)])


def _max_over_ranks(value: float) -> float:
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor.item()


def compare_parameters(arrangements: dict[str, Any], initial: Tensor) -> dict[str, Any]:
    """Max |difference| of the arrangements' parameters (per network and overall) and across
    ranks (against rank 0), the maximum over all ranks; collective: every rank calls it."""
    named = {name: arrangement.named_parameters() for name, arrangement in arrangements.items()}
    a, b = (named[name] for name in ARRANGEMENTS)
    if [n for n, _ in a] != [n for n, _ in b]:
        raise RuntimeError("ddp_arrangements: the arrangements' parameters are not the same list.")
    between = {
        network: _max_over_ranks((_flat(a, prefix) - _flat(b, prefix)).abs().max().item())
        for network, prefix in (("all", ""), ("generator", "generator."),
                                ("discriminator", "discriminator."))
    }
    between_ranks = {}
    for name in ARRANGEMENTS:
        mine = _flat(named[name])
        reference = mine.clone()
        dist.broadcast(reference, src=0)
        between_ranks[name] = _max_over_ranks((mine - reference).abs().max().item())
    finite = all(bool(torch.isfinite(_flat(named[name])).all()) for name in ARRANGEMENTS)
    update = _max_over_ranks((_flat(a) - initial).abs().max().item())
    passed = (finite and between["all"] <= PARAM_TOLERANCE
              and max(between_ranks.values()) <= PARAM_TOLERANCE and update > 0)
    return {
        "max_abs_diff_between_arrangements": between["all"],
        "max_abs_diff_between_arrangements_per_network": {k: v for k, v in between.items() if k != "all"},
        "max_abs_diff_between_ranks": between_ranks,
        "max_abs_update_from_start": update,  # > 0: the parameters did move (the check is not vacuous)
        "finite": finite,
        "parameters": int(initial.numel()),
        "tolerance": PARAM_TOLERANCE,
        "passed": passed,
    }


def measure_rank(rank: int, settings: Settings, log: Any = print) -> dict[str, Any]:
    """Warm-up, ABAB rounds and the parameter check on this rank (all collectives in step)."""
    device = torch.device("cpu")
    nets = {name: build_networks(settings.preset, settings.seed) for name in ARRANGEMENTS}
    initial = torch.cat([p.detach().reshape(-1).clone()
                         for net in nets["find_unused"] for p in net.parameters()])
    shape = image_shape(nets["find_unused"][0])
    # The same real batches for both arrangements; every rank its own (as a distributed sampler).
    data = make_batches(max(settings.iterations, 1), settings.batch_size * settings.n_critic, shape,
                        settings.seed + 1 + rank, device)
    arrangements = {"find_unused": FindUnused(*nets["find_unused"], settings),
                    "wrapped_per_network": WrappedPerNetwork(*nets["wrapped_per_network"], settings)}
    done = dict.fromkeys(ARRANGEMENTS, 0)

    def run(name: str, count: int) -> None:
        for _ in range(count):
            t = done[name]
            arrangements[name].step(data[t % len(data)],
                                    step_generator(settings.seed, rank, t, device))
            done[name] = t + 1

    def timed(name: str, count: int) -> float:
        dist.barrier()
        started = time.perf_counter()
        run(name, count)
        dist.barrier()
        return time.perf_counter() - started

    def round_seconds() -> dict[str, float]:
        """Both arrangements' seconds for ``iterations`` each, A then B every iteration or in blocks."""
        if settings.interleave == "block":
            seconds = {name: timed(name, settings.iterations) for name in ARRANGEMENTS}
        else:
            seconds = dict.fromkeys(ARRANGEMENTS, 0.0)
            for _ in range(settings.iterations):
                for name in ARRANGEMENTS:
                    seconds[name] += timed(name, 1)
        return {name: _max_over_ranks(s) for name, s in seconds.items()}  # the slowest rank's

    started = time.perf_counter()
    for name in ARRANGEMENTS:
        run(name, settings.warmup)
    dist.barrier()
    if rank == 0:
        log(f"warm-up ({settings.warmup} iterations each) done in "
            f"{time.perf_counter() - started:.1f} s", flush=True)
    rounds = []
    for index in range(settings.rounds):
        seconds = round_seconds()
        ips = {name: settings.iterations / s for name, s in seconds.items()}
        rounds.append({
            "order": list(ARRANGEMENTS),
            "interleave": settings.interleave,
            **{f"{name}_seconds": seconds[name] for name in ARRANGEMENTS},
            **{f"{name}_it_per_s": ips[name] for name in ARRANGEMENTS},
            "ratio": ips["wrapped_per_network"] / ips["find_unused"],
        })
        if rank == 0:
            how = "alternating every iteration" if settings.interleave == "iteration" else "in blocks"
            log(f"round {index + 1}/{settings.rounds} (find_unused, wrapped_per_network {how}): "
                f"find_unused {ips['find_unused']:.4g} it/s, wrapped_per_network "
                f"{ips['wrapped_per_network']:.4g} it/s, ratio {rounds[-1]['ratio']:.3f}", flush=True)
    check = compare_parameters(arrangements, initial)
    check["iterations_each"] = done["find_unused"]
    if done["find_unused"] != done["wrapped_per_network"]:
        raise RuntimeError(f"ddp_arrangements: unequal iteration counts {done}.")
    return {"rounds": rounds, "check": check, "torch_threads": torch.get_num_threads()}


def _worker(rank: int, settings_dict: dict[str, Any], port: int, out_dir: str) -> None:
    """One process: join the gloo group on localhost, measure, rank 0 writes ``result.json``."""
    settings = Settings(**settings_dict)
    torch.set_num_threads(settings.threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=settings.world_size,
                            timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S))
    try:
        result = measure_rank(rank, settings)
        if rank == 0:
            Path(out_dir, "result.json").write_text(json.dumps(result))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ----------------------------------------------------------------------------- the measurement
def measure(settings: Settings) -> dict[str, Any]:
    """Start ``world_size`` processes, run both arrangements; return the results record (not saved)."""
    import lightning

    started = time.perf_counter()
    # Children inherit these: one OpenMP thread each, gloo on the loopback interface.
    os.environ["OMP_NUM_THREADS"] = str(settings.threads)
    if Path("/sys/class/net/lo").exists():
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    with tempfile.TemporaryDirectory(prefix="giugan-ddp-arrangements-") as out_dir:
        mp.spawn(_worker, args=(asdict(settings), free_port(), out_dir),
                 nprocs=settings.world_size, join=True)
        result = json.loads(Path(out_dir, "result.json").read_text())
    rounds = result["rounds"]
    medians = {name: statistics.median(r[f"{name}_it_per_s"] for r in rounds) for name in ARRANGEMENTS}
    cpu = torch.device("cpu")
    return {
        "benchmark": BENCHMARK,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "device": {"type": cpu.type, "name": device_name(cpu)},
        "versions": {
            "torch": torch.__version__,
            "lightning": lightning.__version__,
            "python": platform.python_version(),
        },
        "settings": {**asdict(settings), "backend": "gloo", "torch_threads": result["torch_threads"],
                     "cpu_count": os.cpu_count(), "broadcast_buffers": True},
        "arrangements": {
            "find_unused": "one DistributedDataParallel(G + D, find_unused_parameters=True); the "
                           "iteration inside DDP.forward, Lightning's prepare_for_backward before "
                           "every backward (ddp_find_unused_parameters_true, manual optimisation)",
            "wrapped_per_network": "DistributedDataParallel(G) and DistributedDataParallel(D), "
                                   "find_unused_parameters=False; critic step through D's wrapper "
                                   "(penalty included), generator step through G's wrapper and the "
                                   "bare frozen D",
        },
        "rounds": rounds,
        **{f"{name}_it_per_s": medians[name] for name in ARRANGEMENTS},
        "ratio": medians["wrapped_per_network"] / medians["find_unused"],
        "median_round_ratio": statistics.median(r["ratio"] for r in rounds),
        "check": result["check"],
        "wall_seconds": time.perf_counter() - started,
    }


def summary(record: dict[str, Any]) -> str:
    s, check = record["settings"], record["check"]
    ranks = max(check["max_abs_diff_between_ranks"].values())
    verdict = "PASSED" if check["passed"] else "FAILED"
    return (
        f"ddp_arrangements on {record['device']['name']} ({s['world_size']} gloo processes x "
        f"{s['torch_threads']} threads): {s['preset']}, batch {s['batch_size']} per rank, n_critic "
        f"{s['n_critic']}, {s['iterations']} iterations x {s['rounds']} rounds "
        f"(interleaved by {s['interleave']})\n"
        f"  find_unused (one DDP, find_unused_parameters=True): "
        f"{record['find_unused_it_per_s']:.4g} generator it/s (median)\n"
        f"  wrapped_per_network (a DDP per network):            "
        f"{record['wrapped_per_network_it_per_s']:.4g} generator it/s (median)\n"
        f"  ratio wrapped_per_network/find_unused: {record['ratio']:.3f} "
        f"(median of per-round ratios {record['median_round_ratio']:.3f})\n"
        f"  parameters after {check['iterations_each']} iterations each: max |a - b| "
        f"{check['max_abs_diff_between_arrangements']:.3g}, max |rank - rank 0| {ranks:.3g} "
        f"(tolerance {check['tolerance']:g}; max |update| {check['max_abs_update_from_start']:.3g}): "
        f"{verdict}"
    )


def _given(value: int | None, default: int) -> int:
    return default if value is None else value


def parse_args(argv: list[str] | None) -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        description="Generator iterations/s of two DDP arrangements of giugan's critic/generator "
        "steps (one find-unused wrapper vs one wrapper per network), 2 gloo CPU processes, "
        "measured side by side."
    )
    parser.add_argument("--preset", default=None,
                        help=f"network preset (default giu_gan_32; {TINY_PRESET} for smoke tests)")
    parser.add_argument("--batch-size", type=int, default=None, help="per rank (default 64)")
    parser.add_argument("--n-critic", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=None,
                        help="timed generator iterations per arrangement per round (default 20)")
    parser.add_argument("--rounds", type=int, default=None, help="default 5")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed iterations per arrangement before the rounds (default 2)")
    parser.add_argument("--interleave", choices=("iteration", "block"), default="iteration",
                        help="alternate the arrangements every iteration (default: both see the "
                        "same moment's load on a shared CPU) or in blocks of --iterations")
    parser.add_argument("--world-size", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dry-run", action="store_true",
                        help=f"{TINY_PRESET}, batch 8, 2 iterations, 1 round, 1 warm-up; needs "
                        "--results-dir (or --no-save)")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help=f"where the record goes (default {RESULTS_DIR})")
    parser.add_argument("--no-save", action="store_true", help="print only; write no results file")
    args = parser.parse_args(argv)
    defaults = Settings(preset=TINY_PRESET, batch_size=8, iterations=2, rounds=1, warmup=1) \
        if args.dry_run else Settings()
    if args.dry_run and args.results_dir is None and not args.no_save:
        parser.error("--dry-run writes its record into --results-dir DIR; give one (or --no-save)")
    settings = Settings(
        preset=args.preset or defaults.preset,
        batch_size=_given(args.batch_size, defaults.batch_size),
        n_critic=args.n_critic,
        iterations=_given(args.iterations, defaults.iterations),
        rounds=_given(args.rounds, defaults.rounds),
        warmup=_given(args.warmup, defaults.warmup),
        world_size=args.world_size,
        threads=args.threads,
        interleave=args.interleave,
        seed=args.seed,
        dry_run=args.dry_run,
    )
    for name in ("batch_size", "n_critic", "iterations", "rounds", "threads"):
        if getattr(settings, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(settings, name)}")
    if settings.world_size < 2:
        parser.error(f"--world-size must be >= 2 (a DDP comparison), got {settings.world_size}")
    if settings.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {settings.warmup}")
    if args.results_dir is None:
        args.results_dir = RESULTS_DIR
    return settings, args


def main(argv: list[str] | None = None) -> int:
    settings, args = parse_args(argv)
    record = measure(settings)
    print(summary(record))
    if not args.no_save:
        print(f"  appended to {save(record, args.results_dir, BENCHMARK)}")
    return 0 if record["check"]["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
