"""The fault matrix: every subcommand x every class of fault, as a user meets it.

Each case runs ``python -m giugan <command>`` in a subprocess under a hard timeout, with the
loggers on (CSV and W&B offline), and asserts what the user sees and what is left on disk:

* exit status 2 and at most 12 lines of output (stdout and stderr together);
* the paragraph names the file, key or resource and the fix;
* the folder the command ran in is byte-identical before and after (a sha256 snapshot): a refused
  command creates, changes and removes nothing; a fault in the middle of a run leaves every file
  written before it intact and no temporary file behind.

Fit cases run at one and at two processes (CPU DDP with gloo): a fault every rank meets is said
once, and a fault of one rank is not followed by the others' "lost a peer" paragraphs.
Faults of the machine are real: a full disk is a file-size limit (``RLIMIT_FSIZE``) of the child
process, and permissions hold for root too (the child drops the capabilities that override them).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from data.helpers import truncated_jpeg, write_cifar10
from robustness.cli_runs import file_digests
from tiny_quickstart import QUICKSTART, ROOT, TINY_QUICKSTART

MAX_LINES = 12
HARD_TIMEOUT = 240
CONFIGS = ROOT / "configs"
#: The shipped quickstart (loggers on: CSV and W&B offline) shrunk to tiny nets, quiet.
TINY = [
    "--config", QUICKSTART, *TINY_QUICKSTART,
    "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
    "--samples.every", "1", "--checkpoint.every_n_generator_iterations", "1", "--model.eval_every", "2",
    "--model.generator_iterations", "2",
]  # fmt: skip
#: A paper row shrunk to this machine: the real CIFAR-10 files of tests/data/helpers.py, no workers.
CIFAR_ROW = [
    "--config", str(CONFIGS / "cifar10" / "giu_gan.yaml"), "--trainer.accelerator", "cpu",
    "--data.init_args.root", "data", "--data.init_args.download", "false",
    "--data.init_args.num_workers", "0", "--data.init_args.batch_size", "4",
    "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
]  # fmt: skip
TWO_PROCESSES = ["--trainer.devices", "2"]


def _drop_permission_overrides() -> None:
    """In the child before ``exec``: give up the capabilities with which root ignores file
    permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER), so a read-only folder is
    read-only for it as for any user (``prctl(PR_CAPBSET_DROP)``; a no-op for other users)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):
        if libc.prctl(24, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _file_size_limit(limit: int) -> Callable[[], None]:
    """In the child: files may grow to ``limit`` bytes, a larger write fails with EFBIG (as on a
    full disk, the write fails part-way; SIGXFSZ is ignored so that the process sees the error)."""

    def apply() -> None:
        _drop_permission_overrides()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@dataclass
class Run:
    status: int
    output: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.strip()]


def giugan(folder: Path, args: Sequence[str], preexec: Callable[[], None] = _drop_permission_overrides,
           env: dict[str, str] | None = None) -> Run:
    """``python -m giugan ARGS`` in ``folder`` under a hard timeout: exit status and all output."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("GIUGAN_", "SLURM_", "WANDB_"))}
    environment.update(
        WANDB_MODE="offline", WANDB_SILENT="true", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT),
        TORCH_HOME=str(folder.parent / "torch-home"),  # no Inception weights in a hub cache
        **(env or {}),
    )
    done = subprocess.run(
        [sys.executable, "-m", "giugan", *args], cwd=folder, env=environment, capture_output=True,
        text=True, timeout=HARD_TIMEOUT, check=False, preexec_fn=preexec,
    )
    return Run(done.returncode, done.stdout + done.stderr)


def _tiny_cifar(folder: Path) -> None:
    write_cifar10(folder / "data")


def _tiny_fit(iterations: int, *extra: str) -> Callable[[Path], None]:
    """A finished tiny quickstart run (runs/quickstart) as the state a case starts from."""

    def prepare(folder: Path) -> None:
        done = giugan(folder, ["fit", *TINY, "--model.generator_iterations", str(iterations), *extra])
        assert done.status == 0, done.output[-3000:]

    return prepare


#: Finished tiny runs, trained once per test session and copied into the cases that only read them.
_FINISHED: dict[int, Path] = {}


def _finished_run(iterations: int) -> Callable[[Path], None]:
    """A copy of a finished tiny quickstart run (runs/quickstart), trained once per session."""

    def prepare(folder: Path) -> None:
        if iterations not in _FINISHED:
            template = Path(tempfile.mkdtemp(prefix="giugan-fault-matrix-"))
            atexit.register(shutil.rmtree, template, True)
            _tiny_fit(iterations)(template)
            _FINISHED[iterations] = template
        shutil.copytree(_FINISHED[iterations], folder, dirs_exist_ok=True)

    return prepare


def _bad_checkpoints(folder: Path) -> None:
    _finished_run(1)(folder)
    (folder / "notes.ckpt").write_text("this is a text file, not a checkpoint\n")
    good = (folder / "runs" / "quickstart" / "checkpoints" / "last.ckpt").read_bytes()
    (folder / "truncated.ckpt").write_bytes(good[: len(good) // 2])


def _corrupt_image_folder(folder: Path) -> None:
    from PIL import Image

    images = folder / "images"
    images.mkdir()
    for index in range(15):
        Image.new("RGB", (32, 32), (index * 16, 40, 200 - index * 10)).save(images / f"{index:02d}.png")
    truncated_jpeg(images / "15-broken.jpg", size=(32, 32))


def _empty_file(name: str) -> Callable[[Path], None]:
    def prepare(folder: Path) -> None:
        (folder / name).write_bytes(b"")

    return prepare


def _read_only_runs(folder: Path) -> None:
    (folder / "runs").mkdir()
    (folder / "runs").chmod(0o555)


def _checkpoints_made_unwritable(folder: Path) -> None:
    _tiny_fit(2)(folder)
    (folder / "runs" / "quickstart" / "checkpoints").chmod(0o555)


def _a_file_as_runs_folder(folder: Path) -> None:
    (folder / "runs").write_text("not a folder\n")


def _typo_config(folder: Path) -> None:
    (folder / "typo.yaml").write_text("data:\n  class_path: giugan.data.ShapesDataModul\n")


def _samples_folder(folder: Path) -> None:
    from PIL import Image

    for name in ("fake", "real"):
        (folder / name).mkdir()
        for index in range(8):
            Image.new("RGB", (32, 32), (index * 30, 90, 30)).save(folder / name / f"{index}.png")


@dataclass
class Case:
    name: str
    args: list[str]
    says: tuple[str, ...]  # fragments of the paragraph: the file/key/resource and the fix
    prepare: Callable[[Path], None] | None = None
    preexec: Callable[[], None] = _drop_permission_overrides
    two_processes: bool = False  # also run at 2 processes
    #: A fault met while training: the run's logs may have grown, but every checkpoint and config
    #: written before is byte-identical and every file is still there.
    mid_run: bool = False
    env: dict[str, str] = field(default_factory=dict)


CASES = [
    # A paper row offline without the Inception weights.
    Case("row-without-inception-fit", ["fit", *CIFAR_ROW, "--model.generator_iterations", "1"],
         ("Inception weights", "--model.metrics.init_args.weights_path"), _tiny_cifar, two_processes=True),
    Case("row-without-inception-validate", ["validate", *CIFAR_ROW],
         ("Inception weights", "weights_path"), _tiny_cifar),
    Case("row-without-inception-test", ["test", *CIFAR_ROW],
         ("Inception weights", "weights_path"), _tiny_cifar),
    # A paper row offline without its data.
    Case("row-without-data-fit", ["fit", "--config", str(CONFIGS / "cifar10" / "giu_gan.yaml"),
                                  "--trainer.accelerator", "cpu"],
         ("CIFAR-10", "cifar-10-python.tar.gz"), two_processes=True),
    Case("row-without-data-stats", ["stats", "--config", str(CONFIGS / "cifar10" / "giu_gan.yaml")],
         ("CIFAR-10", "cifar-10-python.tar.gz")),
    # Files that are no checkpoints.
    *[Case(f"{kind}-checkpoint-{command}", [command, *TINY, "--ckpt_path", f"{kind}.ckpt"],
           (f"{kind}.ckpt", "checkpoint"), _bad_checkpoints)
      for kind in ("notes", "truncated") for command in ("test", "validate", "predict")],
    Case("text-checkpoint-predict-alone", ["predict", "--ckpt_path", "notes.ckpt"],
         ("notes.ckpt", "checkpoint"), _bad_checkpoints),
    Case("text-checkpoint-inspect", ["inspect", "notes.ckpt"], ("notes.ckpt", "checkpoint"), _bad_checkpoints),
    Case("missing-checkpoint-fit", ["fit", *TINY, "--ckpt_path", "nowhere.ckpt"], ("nowhere.ckpt",)),
    # An empty Inception weights file.
    Case("empty-inception-weights-fit", ["fit", *TINY, "--model.metrics.init_args.fid", "true",
                                         "--model.metrics.init_args.extractor", "inception",
                                         "--model.metrics.init_args.weights_path", "empty.pth"],
         ("empty.pth", "weights"), _empty_file("empty.pth"), two_processes=True),
    Case("empty-inception-weights-eval", ["eval", "fake", "--reference", "real", "--output", "out",
                                          "--metrics.weights_path", "empty.pth"],
         ("empty.pth", "weights"), lambda f: (_samples_folder(f), _empty_file("empty.pth")(f))),
    Case("eval-without-inception", ["eval", "fake", "--reference", "real", "--output", "out"],
         ("Inception weights", "--metrics.weights_path"), _samples_folder),
    Case("eval-missing-folder", ["eval", "nowhere", "--reference", "real", "--output", "out"],
         ("nowhere",), _samples_folder),
    # The disk fills while a checkpoint is written (the files written before stay intact).
    Case("disk-full-checkpoint", ["fit", *TINY, "--model.generator_iterations", "3", "--ckpt_path", "last"],
         ("checkpoint", "--ckpt_path last"), _tiny_fit(2), preexec=_file_size_limit(60_000), mid_run=True),
    # Permissions and paths.
    Case("read-only-runs-folder", ["fit", *TINY, "--model.generator_iterations", "1"],
         ("permission denied", "runs", "chmod"), _read_only_runs, two_processes=True),
    Case("runs-folder-is-a-file", ["fit", *TINY, "--model.generator_iterations", "1"],
         ("runs", "a file", "--run_name"), _a_file_as_runs_folder, two_processes=True),
    Case("checkpoints-unwritable", ["fit", *TINY, "--model.generator_iterations", "3", "--ckpt_path", "last"],
         ("permission denied", "checkpoints", "chmod"), _checkpoints_made_unwritable, mid_run=True),
    # A corrupt image met inside a DataLoader worker.
    Case("corrupt-image-in-worker", ["fit", *TINY, "--model.generator_iterations", "4",
                                     "--data", "giugan.data.ImageFolderDataModule",
                                     "--data.init_args.root", "images", "--data.init_args.image_size", "32",
                                     "--data.init_args.batch_size", "4", "--data.init_args.num_workers", "1"],
         ("15-broken.jpg",), _corrupt_image_folder, two_processes=True, mid_run=True),
    # A GPU that is not there.
    Case("gpu-without-cuda", ["fit", *TINY, "--model.generator_iterations", "2", "--trainer.accelerator", "gpu"], ("no usable CUDA GPU", "cpu")),
    # Names with a typo.
    Case("option-typo", ["fit", *TINY, "--model.n_critics", "2"], ("--model.n_critic",)),
    Case("class-path-typo", ["fit", *TINY, "--data", "giugan.data.ShapesDataModul"], ("ShapesDataModule",)),
    Case("class-path-typo-in-yaml", ["fit", *TINY, "--config", "typo.yaml"], ("ShapesDataModule",), _typo_config),
    Case("profile-unknown-preset", ["profile", "--preset", "no_such_preset"], ("no_such_preset",)),
    # Evaluation without the run's config.
    Case("test-without-config", ["test", "--ckpt_path", "runs/quickstart/checkpoints/last.ckpt"],
         ("--config", "config.yaml"), _finished_run(1)),
    # n_critic mini-batches and a leftover batch.
    Case("drop-last-leftover", ["fit", *TINY, "--model.generator_iterations", "2", "--model.n_critic", "2",
                                "--data.init_args.num_images", "99",
                                "--data.init_args.drop_last", "false"], ("drop_last",)),
]  # fmt: skip

PARAMS = [pytest.param(case, 1, id=case.name) for case in CASES] + [
    pytest.param(case, 2, id=f"{case.name}-2proc") for case in CASES if case.two_processes
]


@pytest.mark.parametrize(("case", "processes"), PARAMS)
def test_a_fault_is_one_paragraph_and_changes_nothing(case: Case, processes: int, tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    if case.prepare is not None:
        case.prepare(folder)
    before = file_digests(folder)
    args = [*case.args, *(TWO_PROCESSES if processes == 2 else [])]
    try:
        done = giugan(folder, args, case.preexec, case.env)
    finally:
        for path in (folder / "runs", folder / "runs" / "quickstart" / "checkpoints"):
            if path.is_dir():
                path.chmod(0o755)  # let pytest clean up
    print(f"\n[{case.name} x{processes}] exit {done.status}, {len(done.lines)} lines")
    assert done.status == 2, done.output[-4000:]
    assert len(done.lines) <= MAX_LINES, done.output
    assert "Traceback" not in done.output, done.output
    paragraphs = [line for line in done.lines if re.match(r"giugan( \w+)?: ", line) and "DDP over" not in line]
    assert len(paragraphs) == 1, done.output  # one paragraph, whatever the number of ranks
    for fragment in case.says:
        assert fragment in paragraphs[0], (fragment, paragraphs[0])
    after = file_digests(folder)
    if case.mid_run:
        kept = {name: digest for name, digest in before.items()
                if name.endswith((".ckpt", "config.yaml")) or name.startswith("images/")}
        assert set(before) <= set(after), "files written before the fault are gone"
        assert {name: after[name] for name in kept} == kept, "a checkpoint or config changed"
    else:
        assert after == before, "the refused command changed files"
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]


def test_the_matrix_covers_every_command() -> None:
    """Every command of ``giugan --help`` meets at least one fault here or in its own tests."""
    from giugan.cli import COMMANDS

    covered = {case.args[0] for case in CASES}
    own_tests = {"sweep", "report", "export"}  # their refusals are tested beside their features
    assert set(COMMANDS) - own_tests <= covered, set(COMMANDS) - own_tests - covered


def test_an_empty_reference_cache_file_is_recomputed_and_named(tmp_path: Path) -> None:
    """The reference statistics cache is a cache: an empty (or cut) file is computed again, with
    one warning naming it, and the run goes on (before: a 95-line traceback)."""
    folder = tmp_path / "work"
    folder.mkdir()
    first = giugan(folder, ["fit", *TINY, "--run_name", "first"])
    assert first.status == 0, first.output[-3000:]
    caches = sorted((folder / "runs" / ".reference_cache").rglob("*.pt"))
    assert caches, sorted(p.name for p in folder.rglob("*"))
    caches[0].write_bytes(b"")
    second = giugan(folder, ["fit", *TINY, "--run_name", "second"])
    assert second.status == 0, second.output[-3000:]
    assert "Traceback" not in second.output
    warnings = [line for line in second.lines if caches[0].name in line]
    assert len(warnings) == 1, second.output
    assert caches[0].stat().st_size > 0  # computed again and written back
