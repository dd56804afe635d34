"""Start-up time of the ``giugan`` command line, as a ratio to a bare ``python -c "import torch"``.

Target: ``giugan --help`` and ``giugan profile --all`` start about as fast as importing torch
(ratio near 1; Lightning, wandb and jsonargparse are imported only by the commands that need
them; ``profile`` reads its counts from the cache an earlier run wrote, and
``profile --all --no-cache`` shows what counting all presets anew costs). Absolute seconds depend on the machine and its load, so the three commands are timed
**interleaved** (every repetition runs each once, the order rotating) and the medians compared.

    python benchmarks/startup.py               # 5 repetitions, about 30 s
    python benchmarks/startup.py --repeats 3 --no-save

Each run appends one record to ``benchmarks/results/startup-<machine>.json``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_DIR = HERE / "results"

COMMANDS: dict[str, list[str]] = {
    "import torch": [sys.executable, "-c", "import torch"],
    "giugan --help": [sys.executable, "-m", "giugan", "--help"],
    # With the counts cache of an earlier run (the warm-up run writes it), and without it (every
    # preset built and counted: what the very first run, or a changed network source, costs).
    "giugan profile --all": [sys.executable, "-m", "giugan", "profile", "--all"],
    "profile --all --no-cache": [sys.executable, "-m", "giugan", "profile", "--all", "--no-cache"],
}
BASELINE = "import torch"


def time_command(command: list[str], cache_dir: str) -> float:
    """Wall-clock seconds of one run of ``command`` (output discarded; it must succeed)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "GIUGAN_CACHE_DIR": cache_dir}
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
    return time.perf_counter() - started


def measure(repeats: int) -> dict[str, dict[str, float]]:
    """Median seconds per command and its ratio to the baseline, timed interleaved."""
    names = list(COMMANDS)
    times: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="giugan-startup-") as cache_dir:  # not the user's cache
        for name in names:  # one untimed warm-up each (file-system caches, the counts cache)
            time_command(COMMANDS[name], cache_dir)
        for repetition in range(repeats):
            order = names[repetition % len(names):] + names[:repetition % len(names)]
            for name in order:
                times[name].append(time_command(COMMANDS[name], cache_dir))
    base = statistics.median(times[BASELINE])
    return {
        name: {"median_s": statistics.median(values), "ratio_to_import_torch": statistics.median(values) / base}
        for name, values in times.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-save", action="store_true", help="do not append to benchmarks/results/")
    args = parser.parse_args(argv)
    results = measure(args.repeats)
    for name, row in results.items():
        print(f"{name:<26} {row['median_s']:6.2f} s   x{row['ratio_to_import_torch']:.2f} of import torch")
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        machine = "".join(c if c.isalnum() else "-" for c in (platform.processor() or platform.machine()).lower())
        path = RESULTS_DIR / f"startup-{machine or 'unknown'}.json"
        records = json.loads(path.read_text()) if path.exists() else []
        records.append({
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "repeats": args.repeats, "cpu_count": os.cpu_count(), "results": results,
        })
        path.write_text(json.dumps(records, indent=2) + "\n")
        print(f"appended to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
