"""Faults of the machine (no GPU, full disk, permissions, a file where a folder must be, a file
that is no checkpoint) reach the user as one paragraph with the cause and the fix, exit 2."""

from __future__ import annotations

import errno
from pathlib import Path

import lightning.pytorch  # noqa: F401 - its log handler takes sys.stderr now, outside any capture
import pytest
import torch

from giugan.cli import main
from giugan.cli.explanations import explain

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = str(ROOT / "configs" / "quickstart.yaml")
QUIET = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
         "--model.generator_iterations", "2"]


def _giugan_lines(text: str) -> list[str]:
    """stderr without Lightning's start-up notes (INFO: Seed set ...) and its in-process warning."""
    return [line for line in text.strip().splitlines()
            if "args parameter" not in line and not line.startswith("INFO:")]


def test_each_machine_fault_gets_its_cause_and_fix(tmp_path: Path) -> None:
    lock = tmp_path / "runs" / "r" / ".giugan.lock"
    denied = explain(PermissionError(errno.EACCES, "Permission denied", str(lock)))
    assert denied is not None and "permission denied" in denied and "chmod u+w" in denied
    full = explain(OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "last.ckpt")))
    assert full is not None and "disk (or quota) is full" in full and "--ckpt_path last" in full
    wrapped = explain(RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0"))
    assert wrapped is not None and "disk (or quota) is full" in wrapped
    (tmp_path / "afile").write_text("x")
    blocked = explain(FileExistsError(errno.EEXIST, "File exists", str(tmp_path / "afile")))
    assert blocked is not None and f"a folder at {tmp_path / 'afile'}" in blocked
    assert explain(ValueError("a config value")) is None  # not a machine fault


def test_a_file_where_the_run_folder_must_be_is_one_paragraph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("kept")
    assert main(["fit", "--config", QUICKSTART, *QUIET, "--trainer.default_root_dir", "afile"]) == 2
    lines = _giugan_lines(capfd.readouterr().err)
    assert len(lines) == 2 and lines[0].startswith("giugan: giugan needs a folder at")
    assert (tmp_path / "afile").read_text() == "kept"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_gpu_on_a_machine_without_one_is_one_paragraph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--config", QUICKSTART, *QUIET, "--trainer.accelerator", "gpu"]) == 2
    lines = _giugan_lines(capfd.readouterr().err)
    assert len(lines) == 2 and "no usable CUDA GPU" in lines[0] and "--trainer.accelerator cpu" in lines[0]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["test", "validate"])
@pytest.mark.parametrize("content", [b"hello\n", b"PK\x03\x04truncated"], ids=["text", "truncated"])
def test_a_file_that_is_no_checkpoint_is_one_paragraph_for_test_and_validate(
    command: str, content: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.ckpt").write_bytes(content)
    assert main([command, "--config", QUICKSTART, *QUIET, "--ckpt_path", "bad.ckpt"]) == 2
    lines = _giugan_lines(capfd.readouterr().err)
    assert len(lines) == 2 and "--ckpt_path bad.ckpt is not a PyTorch checkpoint" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ckpt"]
