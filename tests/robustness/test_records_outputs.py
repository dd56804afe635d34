"""Records a user reads back: predictions that never mix two generators, an image folder listed once
through a symlink loop, ``metrics.csv`` evaluation rows on the generator-iteration column, and no
temporary files left by killed writers surviving the next command."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from giugan.atomic_files import temporary_name
from giugan.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--model.generator.init_args.conv_dim", "4",
    "--model.generator.init_args.inserts.1.init_args.channels", "16",
    "--model.discriminator.init_args.conv_dim", "4",
    "--data.init_args.batch_size", "4",
    "--data.init_args.num_images", "16",
    "--data.init_args.eval_batch_size", "8",
    "--model.metrics.init_args.num_fake", "16",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
    "--model.eval_every", "2", "--samples.every", "2", "--checkpoint.every_n_generator_iterations", "2",
]  # fmt: skip


def giugan(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``python -m giugan ARGS`` in a subprocess, offline, with a hard timeout."""
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "giugan", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout, check=False)


def dead_pid() -> int:
    """The id of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(timeout=60)
    return process.pid


def owned_by(name: str, pid: int, random: str = "") -> str:
    """The temporary name giugan's writers give ``name`` in process ``pid`` on this host."""
    own = temporary_name(name)
    stem = own.removesuffix(f"-{os.getpid()}.tmp") + f"-{pid}"
    return f"{stem}.{random}.tmp" if random else f"{stem}.tmp"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 4-iteration quickstart run (CSV log, no W&B) with checkpoints at 2 and 4."""
    tmp = tmp_path_factory.mktemp("records")
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "disabled")
        patch.chdir(tmp)
        torch.set_num_threads(1)
        try:
            (tmp / "logger.yaml").write_text(
                "trainer:\n  logger:\n    - class_path: giugan.training.loggers.CSVLogger\n"
                f"      init_args: {{save_dir: {tmp / 'runs'}, name: tiny, version: ''}}\n"
                f"model:\n  metrics:\n    init_args: {{cache_dir: {tmp / 'cache'}}}\n"
            )
            assert main(["fit", "--config", str(ROOT / "configs" / "quickstart.yaml"), "--config",
                         str(tmp / "logger.yaml"), *TINY, "--model.generator_iterations", "4"]) == 0
            yield tmp / "runs" / "tiny"
        finally:
            torch.set_num_threads(threads)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_predict_never_mixes_two_generators_unless_asked(run: Path) -> None:
    checkpoints = run / "checkpoints"
    out = run.parent.parent / "predicted"
    early = ["predict", "--ckpt_path", str(checkpoints / "iter-00000002.ckpt"), "--predictions.num_images", "3",
             "--predictions.output_dir", str(out)]
    assert main(early) == 0
    manifest = json.loads((out / "predictions.json").read_text())
    assert manifest["generator_iteration"] == 2 and manifest["seed"] == 0 and manifest["truncation"] is None
    assert manifest["num_images"] == 3 and len(manifest["checkpoint_sha256"]) == 64
    first = snapshot(out)
    assert main(early) == 0  # the same checkpoint and seed again: the same images, allowed
    assert snapshot(out) == first

    # another checkpoint, through the real command line: one paragraph, exit 2, nothing touched
    later = ["predict", "--ckpt_path", str(checkpoints / "iter-00000004.ckpt"), "--predictions.num_images", "3",
             "--predictions.output_dir", str(out)]
    refused = giugan(*later, cwd=run.parent.parent)
    assert refused.returncode == 2, refused.stderr
    (paragraph,) = [line for line in refused.stderr.splitlines() if line.startswith("giugan: ")]
    assert "iter-00000002.ckpt" in paragraph and "iter-00000004.ckpt" in paragraph
    assert "--predictions.overwrite true" in paragraph and "--predictions.output_dir" in paragraph
    assert snapshot(out) == first
    # another seed or truncation of the same checkpoint: refused too
    assert main([*early, "--predictions.seed", "1"]) == 2
    assert main([*early, "--predictions.truncation", "0.5"]) == 2
    assert snapshot(out) == first

    # asked: the old images go, the new ones come, the manifest says so
    assert main([*later, "--predictions.overwrite", "true", "--predictions.num_images", "2"]) == 0
    manifest = json.loads((out / "predictions.json").read_text())
    assert manifest["generator_iteration"] == 4 and manifest["num_images"] == 2
    assert sorted(p.name for p in out.glob("*.png")) == ["000000.png", "000001.png"]
    assert not np.array_equal(np.asarray(Image.open(out / "000000.png")),
                              np.frombuffer(first["000000.png"], dtype=np.uint8))
    assert (out / "000000.png").read_bytes() != first["000000.png"]


def test_evaluation_rows_of_metrics_csv_carry_the_generator_iteration(run: Path) -> None:
    with open(run / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    evaluated = [row for row in rows if row.get("eval/recognisable")]
    assert [int(float(row["step"])) for row in evaluated] == [2, 4]
    assert all(row["generator_iteration"] and float(row["generator_iteration"]) == float(row["step"])
               for row in rows)


def write_images(folder: Path, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for index in range(count):
        path = folder / f"class{index % 2}" / f"{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)).save(path)


def test_a_symlink_loop_lists_each_image_once_and_stale_temporaries_are_removed(tmp_path: Path) -> None:
    """``giugan eval`` reads an image folder holding a link back to itself, scores each image once,
    and on its way removes the temporaries killed writers left beside ``eval.json`` and in the
    reference cache, never one a live process (or another host) may still be writing."""
    write_images(tmp_path / "fake", 12, seed=1)
    write_images(tmp_path / "real", 12, seed=2)
    (tmp_path / "fake" / "class0" / "loop").symlink_to(tmp_path / "fake", target_is_directory=True)
    (tmp_path / "fake" / "again").symlink_to(tmp_path / "fake" / "class1", target_is_directory=True)
    out, cache = tmp_path / "out", tmp_path / "cache"
    out.mkdir()
    cache.mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        dead = dead_pid()
        stale = [out / owned_by("eval.json", dead), cache / owned_by("shapes-x.pt", dead, "ab12cd34")]
        kept = [out / owned_by("eval.json", live.pid), cache / owned_by("shapes-x.pt", live.pid, "ef56gh78"),
                out / ".eval.json.elsewhere-1.tmp"]  # another host's: it may be alive
        old = out / ".eval.json.elsewhere-2.tmp"
        for path in [*stale, *kept, old]:
            path.write_text("half a file")
        hours_ago = time.time() - 2 * 3600
        os.utime(old, (hours_ago, hours_ago))  # older than any write: stale whoever wrote it

        done = giugan("eval", "fake", "--reference", "real", "--output", "out", "--metrics.extractor", "standin",
                      "--metrics.cache_dir", "cache", "--metrics.inception_score", "false", "--device", "cpu",
                      cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        report = json.loads((out / "eval.json").read_text())
        assert report["protocol"]["num_fake"] == 12  # not 12 x 41 through the loop, nor 18 with "again"
        assert not [p for p in [*stale, old] if p.exists()]
        assert all(p.exists() for p in kept)
        assert list(cache.glob("*.pt"))  # the cache was written beside the temporaries
    finally:
        live.kill()
        live.wait(timeout=60)


def test_a_resume_removes_what_killed_writers_left_in_the_run_directory(run: Path) -> None:
    """Runs last in this module: it extends the run to 6 iterations."""
    dead = dead_pid()
    left = [run / owned_by("eval.json", dead), run / "metrics.csv.tmp"]
    for path in left:
        path.write_text("half a file")
    tmp = run.parent.parent
    assert main(["fit", "--config", str(ROOT / "configs" / "quickstart.yaml"), "--config", str(tmp / "logger.yaml"),
                 *TINY, "--model.generator_iterations", "6", "--ckpt_path", "last"]) == 0
    assert not [p for p in left if p.exists()]
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*.tmp"))
