"""Training faults stop loudly and lose nothing that was already saved."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from giugan.losses import WassersteinLoss
from giugan.nets import Discriminator
from giugan.training.callbacks import NonFiniteError, checkpoints

from .helpers import assert_one_paragraph, tiny_data, tiny_module, tiny_trainer

pytestmark = pytest.mark.usefixtures("single_thread")

REPO = Path(__file__).resolve().parents[2]


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def all_finite(checkpoint: dict) -> bool:
    return all(
        torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point()
    )


class _InfiniteGradient(torch.autograd.Function):
    """Identity forward, infinite gradient backward: a finite loss whose gradients blow up."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad * float("inf")


class BreaksAfter(nn.Module):
    """A critic that turns bad after ``calls`` forward passes: NaN scores, or infinite gradients."""

    def __init__(self, calls: int, fault: str) -> None:
        super().__init__()
        self.inner = Discriminator(32, conv_dim=4)
        self.calls, self.fault = calls, fault

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls -= 1
        out = self.inner(x)
        if self.calls >= 0:
            return out
        return out * float("nan") if self.fault == "nan_loss" else _InfiniteGradient.apply(out)


@pytest.mark.parametrize("fault", ["nan_loss", "inf_gradient"])
def test_non_finite_values_stop_with_the_iteration_and_keep_the_last_good_checkpoint(
    tmp_path: Path, fault: str
) -> None:
    # gp_weight 0: one iteration = 2 critic passes + 1 generator pass; faults from iteration 2 on.
    module = tiny_module(
        discriminator=BreaksAfter(6, fault), loss=WassersteinLoss(gp_weight=0.0), generator_iterations=10
    )
    with pytest.raises(NonFiniteError) as info:
        tiny_trainer(tmp_path).fit(module, datamodule=tiny_data())
    assert_one_paragraph(str(info.value), "generator iteration 2", "--ckpt_path last")
    named = (
        "{'loss_d': nan" if fault == "nan_loss" else "{'grad_norm_d': nan}"
    )  # finite loss, bad grads
    assert named in str(info.value)
    saved = load(tmp_path / "checkpoints" / "last.ckpt")
    assert saved["giugan"]["generator_iteration"] == 2 and all_finite(saved)
    assert all(torch.isfinite(p).all() for p in module.parameters())  # no step on bad values


KILL_DURING_SAVE = textwrap.dedent(
    """
    import sys, torch
    from giugan.training.callbacks import AtomicCheckpointIO
    io, path = AtomicCheckpointIO(), sys.argv[1]
    for round in range(1000):
        payload = {"round": round, "weights": torch.full((6_000_000,), float(round))}  # 24 MB
        io.save_checkpoint(payload, path)
        print(round, flush=True)
    """
)


def test_kill_9_during_a_save_never_leaves_a_corrupt_last_ckpt(tmp_path: Path) -> None:
    target = tmp_path / "last.ckpt"
    process = subprocess.Popen(
        [sys.executable, "-c", KILL_DURING_SAVE, str(target)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert process.stdout is not None and process.stdout.readline()  # one complete save
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".last.ckpt.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.002)  # until a later save is under way
    time.sleep(random.Random(6).uniform(0.0, 0.05))
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    saved = torch.load(target, weights_only=True)  # the final name only ever holds a whole file
    assert torch.equal(saved["weights"], torch.full((6_000_000,), float(saved["round"])))
    # leftover temporary files cannot be taken for a checkpoint by `--ckpt_path last` or a glob
    leftovers = [p for p in tmp_path.iterdir() if p.name != "last.ckpt"]
    assert all(p.name.startswith(".last.ckpt.") and p.suffix == ".tmp" for p in leftovers)
    callback = ModelCheckpoint(dirpath=str(tmp_path))
    found = callback._find_last_checkpoints(trainer=None)  # type: ignore[arg-type]
    assert found <= {os.path.normpath(target)}
    assert sorted(tmp_path.glob("*.ckpt")) == [target]


def test_full_disk_during_a_save_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    real_save, calls = torch.save, []

    def save_until_the_disk_fills(obj, stream, *args, **kwargs):
        calls.append(1)
        if len(calls) <= 2:  # iteration 1: iter-00000001.ckpt and last.ckpt
            return real_save(obj, stream, *args, **kwargs)
        stream.write(b"\0" * 4096)  # part of the file is written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints.torch, "save", save_until_the_disk_fills)
    folder = tmp_path / "checkpoints"
    with pytest.raises(OSError) as info:
        tiny_trainer(tmp_path).fit(tiny_module(generator_iterations=5), datamodule=tiny_data())
    assert info.value.errno == errno.ENOSPC
    assert_one_paragraph(
        str(info.value), str(folder / "iter-00000002.ckpt"), "No space left", "unchanged"
    )
    assert sorted(p.name for p in folder.iterdir()) == ["iter-00000001.ckpt", "last.ckpt"]  # no tmp
    from giugan.cli.explanations import explain  # what the command line shows for it

    assert f"writing {folder / 'iter-00000002.ckpt'} failed" in (explain(info.value) or "")
    monkeypatch.setattr(checkpoints.torch, "save", real_save)
    saved = load(folder / "last.ckpt")
    assert saved["giugan"]["generator_iteration"] == 1 and all_finite(saved)


@pytest.mark.parametrize("other", ["architecture", "preset"])
def test_resuming_with_another_architecture_or_preset_fails_clearly(
    tmp_path: Path, other: str
) -> None:
    tiny_trainer(tmp_path).fit(tiny_module(generator_iterations=1), datamodule=tiny_data())
    if other == "architecture":
        module, fragments = tiny_module(conv_dim=8, generator_iterations=2), ["preset None"]
    else:
        module = tiny_module(preset="giu_gan_32", generator=None, discriminator=None)
        fragments = ["preset 'giu_gan_32'"]
    with pytest.raises(ValueError) as info:
        tiny_trainer(tmp_path).fit(module, datamodule=tiny_data(), ckpt_path="last")
    assert_one_paragraph(
        str(info.value), "different architecture", "config.yaml", "--ckpt_path", *fragments
    )


TINY_FIT = [
    "--config", "configs/quickstart.yaml",
    "--model.generator.init_args.conv_dim", "4",
    "--model.generator.init_args.inserts.1.init_args.channels", "16",
    "--model.discriminator.init_args.conv_dim", "4",
    "--data.init_args.batch_size", "4", "--data.init_args.num_images", "16",
    "--model.metrics", "null", "--model.generator_iterations", "4",
    "--trainer.logger", "false", "--checkpoint.every_n_generator_iterations", "1",
    "--samples.every", "100", "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
]  # fmt: skip


def test_giugan_fit_killed_with_kill_9_resumes_from_last_and_finishes(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "giugan",
        "fit",
        *TINY_FIT,
        "--trainer.default_root_dir",
        str(tmp_path),
    ]
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    folder = tmp_path / "checkpoints"
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not (folder / "iter-00000002.ckpt").exists():
        assert process.poll() is None, process.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "no checkpoint of iteration 2 within 120 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL  # killed mid-training, not finished
    process.stderr.close()  # type: ignore[union-attr]
    assert 1 <= load(folder / "last.ckpt")["giugan"]["generator_iteration"] < 4

    resumed = subprocess.run(
        [*command, "--ckpt_path", "last"],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert load(folder / "last.ckpt")["giugan"]["generator_iteration"] == 4
    names = sorted(p.name for p in folder.glob("*.ckpt"))
    assert names == [f"iter-0000000{i}.ckpt" for i in range(1, 5)] + ["last.ckpt"]


def test_resume_after_a_kill_between_the_numbered_and_the_last_save(tmp_path: Path) -> None:
    # killed after iter-00000002.ckpt was written but before last.ckpt was: last.ckpt is at 1
    tiny_trainer(tmp_path).fit(tiny_module(generator_iterations=1), datamodule=tiny_data())
    folder = tmp_path / "checkpoints"
    last_at_1 = (folder / "last.ckpt").read_bytes()
    second = tiny_module(generator_iterations=2)
    tiny_trainer(tmp_path).fit(second, datamodule=tiny_data(), ckpt_path="last")
    (folder / "last.ckpt").write_bytes(last_at_1)
    module = tiny_module(generator_iterations=3)
    tiny_trainer(tmp_path).fit(module, datamodule=tiny_data(), ckpt_path="last")
    assert module.generator_iteration == 3
    names = sorted(p.name for p in folder.iterdir())  # iteration 2 is redone in place: no "-v1"
    assert names == ["iter-00000001.ckpt", "iter-00000002.ckpt", "iter-00000003.ckpt", "last.ckpt"]
    assert load(folder / "iter-00000002.ckpt")["giugan"]["generator_iteration"] == 2


def test_atomic_checkpoints_get_the_usual_file_permissions(tmp_path: Path) -> None:
    # the temporary file comes from mkstemp (0o600); the checkpoint must read like a torch.save
    umask = os.umask(0o022)
    try:
        checkpoints.AtomicCheckpointIO().save_checkpoint({"x": 1}, tmp_path / "last.ckpt")
    finally:
        os.umask(umask)
    assert (tmp_path / "last.ckpt").stat().st_mode & 0o777 == 0o644
