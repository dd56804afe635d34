"""DDP by flags on CPU: two gloo processes keep identical parameters and draw different noise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .helpers import tiny_module

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_process_ddp_synchronises_gradients_and_draws_rank_specific_noise(tmp_path: Path) -> None:
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "training" / "ddp_script.py"), str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=False)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=False)
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["iteration"] == rank1["iteration"] == 3
    # different noise on every rank ...
    assert not torch.equal(rank0["noise"], rank1["noise"])
    # ... and yet identical parameters: gradients were all-reduced in every D and G step
    # (BN running statistics are buffers: DDP broadcasts rank 0's at each step's start, so the last
    # step's own update may differ per rank; checkpoints are written by rank 0.)
    parameter_names = {n for n, _ in tiny_module().named_parameters()}
    for name in parameter_names:
        torch.testing.assert_close(rank0["state"][name], rank1["state"][name], rtol=0, atol=1e-6, msg=name)
    initial = tiny_module().state_dict()
    moved = [n for n, v in rank0["state"].items() if n in initial and v.is_floating_point() and not torch.equal(v, initial[n])]
    assert any(n.startswith("generator.") for n in moved) and any(n.startswith("discriminator.") for n in moved)
