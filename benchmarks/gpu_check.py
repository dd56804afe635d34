"""The GPU check: everything that needs CUDA, in one run of at most ~5 minutes, one JSON record.

    python benchmarks/gpu_check.py              # on a machine with a GPU
    python benchmarks/gpu_check.py --dry-run    # CPU: the same steps at toy sizes (CI runs this)

Steps (each timed, each recorded with its outcome; a failing step does not stop the others):

1. ``fit_smoke``: ``giugan fit`` of the quickstart on the GPU for a few hundred generator
   iterations with the stand-in metrics (evaluation in the validation loop, checkpoints);
2. ``speed``: ``benchmarks/precision_speed.py``'s variants for giu_gan_32 and sagan_64 side by
   side (fp32, TF32, bf16, compile, CUDA graphs, channels-last), ratios to fp32, with the bf16
   correctness check;
3. ``fid_50k``: the time of a 50,000-sample FID/IS evaluation with the real Inception
   architecture (random weights cost the same as real ones; the numbers are meaningless);
4. ``ddp_fit``: ``giugan fit --config configs/trainer/ddp.yaml`` through the command line with
   every callback on (sample grids, evaluation, numbered/last/best checkpoints): two GPUs with
   NCCL where the machine has them, otherwise one GPU through the same DDP path (``--dry-run``:
   two CPU processes with gloo).

The record goes to ``benchmarks/results/gpu_check-<device>.json`` (``--dry-run``:
``gpu_check-dry-run.json`` under ``--results-dir``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS_DIR = ROOT / "benchmarks" / "results"


def _fit(accelerator: str, iterations: int, extra: list[str], folder: Path) -> dict[str, Any]:
    (folder / "logger.yaml").write_text(
        "trainer:\n  logger:\n    - class_path: giugan.training.loggers.CSVLogger\n"
        f"      init_args: {{save_dir: {folder / 'runs'}, name: check, version: ''}}\n"
        f"model:\n  metrics:\n    init_args: {{cache_dir: {folder / 'cache'}}}\n"
    )
    small = [] if accelerator == "gpu" else [
        "--model.generator.init_args.conv_dim", "4",
        "--model.generator.init_args.inserts.1.init_args.channels", "16",
        "--model.discriminator.init_args.conv_dim", "4",
        "--data.init_args.batch_size", "4", "--data.init_args.num_images", "16",
        "--data.init_args.eval_batch_size", "8", "--model.metrics.init_args.num_fake", "16",
    ]  # fmt: skip
    command = [
        sys.executable, "-m", "giugan", "fit", "--config", str(ROOT / "configs" / "quickstart.yaml"),
        "--config", str(folder / "logger.yaml"), *small,
        "--trainer.accelerator", accelerator, "--trainer.enable_progress_bar", "false",
        "--model.generator_iterations", str(iterations), "--model.eval_every", str(max(1, iterations // 2)),
        "--samples.every", str(iterations), "--checkpoint.every_n_generator_iterations", str(iterations),
        *extra,
    ]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    env.pop("GIUGAN_RUN_TOKEN", None)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"giugan fit exited {done.returncode}: {done.stderr[-2000:]}")
    rows = (folder / "runs" / "check" / "metrics.csv").read_text().splitlines()
    return {"seconds": seconds, "iterations": iterations, "csv_rows": len(rows) - 1,
            "iterations_per_second_incl_startup": iterations / seconds}


def fit_smoke(device: torch.device, dry_run: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        return _fit("cpu" if dry_run else "gpu", 4 if dry_run else 300, [], Path(folder))


def ddp_fit(device: torch.device, dry_run: bool) -> dict[str, Any]:
    devices = 2 if dry_run else max(1, min(2, torch.cuda.device_count()))
    extra = ["--config", str(ROOT / "configs" / "trainer" / "ddp.yaml"), "--trainer.devices", str(devices)]
    extra += ["--trainer.accelerator", "cpu"] if dry_run else []
    with tempfile.TemporaryDirectory() as folder:
        result = _fit("cpu" if dry_run else "gpu", 4 if dry_run else 100, extra, Path(folder))
        run = Path(folder) / "runs" / "check"
        written = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    expected = {"checkpoints/last.ckpt", "checkpoints/best.ckpt", "samples/latest.png", "config.yaml"}
    missing = expected - set(written)
    if missing:
        raise RuntimeError(f"the DDP fit did not write {sorted(missing)} (it wrote {written})")
    return {**result, "devices": devices, "backend": "gloo" if dry_run else "nccl", "files": written}


def speed(device: torch.device, dry_run: bool) -> dict[str, Any]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("precision_speed", ROOT / "benchmarks" / "precision_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    if dry_run:
        presets, iterations, rounds, batch = [bench.SMALL_PRESET], 1, 1, 4
        variants = ["fp32", "bf16", "channels_last", "bf16_channels_last"]
    else:
        presets, iterations, rounds, batch = ["giu_gan_32", "sagan_64"], 20, 3, 64
        variants = [*bench.VARIANTS, *bench.CUDA_VARIANTS]
    results = []
    for preset in presets:
        results.append(bench.measure_speed(preset, device, variants, iterations, rounds, batch, print))
    return {
        "bf16_one_iteration": bench.one_step_agreement(device),
        "results": results,
    }


def fid_50k(device: torch.device, dry_run: bool) -> dict[str, Any]:
    """Time ``num_fake`` samples through the full Inception protocol (random weights)."""
    import torch_fidelity.feature_extractor_inceptionv3 as inception_module
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from giugan.metrics import GenerativeMetrics, quantize_images

    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "random-inception.pth"
        # The architecture with its random initial weights: no download, no real weights needed.
        original = FeatureExtractorInceptionV3.load_state_dict, inception_module.load_state_dict_from_url
        FeatureExtractorInceptionV3.load_state_dict = lambda self, state_dict, *a, **k: None  # type: ignore[method-assign]
        inception_module.load_state_dict_from_url = lambda *a, **k: {}
        try:
            network = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
        finally:
            FeatureExtractorInceptionV3.load_state_dict, inception_module.load_state_dict_from_url = original
        torch.save(network.state_dict(), weights)
        num_fake = 16 if dry_run else 50_000
        metrics = GenerativeMetrics(extractor="inception", weights_path=str(weights), num_fake=num_fake,
                                    cache_dir=folder).to(device)
        batch = 8 if dry_run else 500
        generator = torch.Generator(device="cpu").manual_seed(0)

        def images(n: int) -> torch.Tensor:
            return quantize_images((torch.rand(n, 3, 32, 32, generator=generator) * 2 - 1).to(device))

        for _ in range(max(1, 10_000 // batch) if not dry_run else 2):
            metrics.update_real(images(batch))
        synchronize(device)
        started = time.perf_counter()
        done = 0
        while done < num_fake:
            n = min(batch, num_fake - done)
            metrics.update_fake(images(n))
            done += n
        values = metrics.compute()
        synchronize(device)
        return {"num_fake": num_fake, "seconds": time.perf_counter() - started,
                "values_with_random_weights": {k: float(v) for k, v in values.items()}}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


STEPS: dict[str, Callable[[torch.device, bool], dict[str, Any]]] = {
    "fit_smoke": fit_smoke,
    "speed": speed,
    "fid_50k": fid_50k,
    "ddp_fit": ddp_fit,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, toy sizes: checks the script works")
    parser.add_argument("--steps", nargs="+", choices=list(STEPS), default=list(STEPS))
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; use --dry-run to check the script on CPU.", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.dry_run else "cuda")
    record: dict[str, Any] = {
        "benchmark": "gpu_check",
        "dry_run": args.dry_run,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "versions": {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version()},
        "steps": {},
    }
    started = time.perf_counter()
    failed = False
    for name in args.steps:
        step_started = time.perf_counter()
        try:
            result = {"ok": True, **STEPS[name](device, args.dry_run)}
        except Exception as error:  # noqa: BLE001 - recorded, and the other steps still run
            failed = True
            result = {"ok": False, "error": f"{type(error).__name__}: {error}",
                      "traceback": traceback.format_exc()[-3000:]}
        result["wall_seconds"] = time.perf_counter() - step_started
        record["steps"][name] = result
        print(f"gpu_check {name}: {'ok' if result['ok'] else 'FAILED'} in {result['wall_seconds']:.1f} s")
    record["wall_seconds"] = time.perf_counter() - started
    args.results_dir.mkdir(parents=True, exist_ok=True)
    slug = "dry-run" if args.dry_run else "".join(c if c.isalnum() else "-" for c in record["device"].lower())
    path = args.results_dir / f"gpu_check-{slug}.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"gpu_check: record written to {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
