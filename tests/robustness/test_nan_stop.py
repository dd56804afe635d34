"""A NaN/inf stop through ``python -m giugan fit``: clean checkpoints, one paragraph, advice that works.

A generator learning rate of 5e3 on the tiny quickstart overflows G's BatchNorm running variance
in the third generator iteration while the losses are still finite (before, the run finished
with exit 0 and ``inf`` in every checkpoint). Now the guard stops there with exit 2 and one
paragraph; every checkpoint holds finite parameters, buffers and optimiser state; and resuming as
the paragraph advises (``--ckpt_path last`` with the learning rates it names) reaches the end.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from .cli_runs import fit, giugan_lines, load, metrics_rows

ITERATIONS = 8


def finite_everywhere(checkpoint: dict) -> bool:
    tensors = list(checkpoint["state_dict"].values())
    for optimizer in checkpoint["optimizer_states"]:
        for state in optimizer["state"].values():
            tensors += [v for v in state.values() if torch.is_tensor(v)]
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


def advised_rates(paragraph: str) -> list[str]:
    """The ``--model.optimizer_*.init_args.lr X`` flags the paragraph advises."""
    pairs = re.findall(r"(--model\.optimizer_[gd]\.init_args\.lr) (\S+?)(?=[\s(]|$)", paragraph)
    assert len(pairs) == 2, paragraph
    return [word for pair in pairs for word in pair]


@pytest.mark.slow
def test_a_nan_stop_ends_with_one_paragraph_and_only_finite_checkpoints(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "nan"
    done = fit(tmp_path, "nan", ITERATIONS, "--model.optimizer_g.init_args.lr", "5e3")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    (paragraph,) = giugan_lines(done.stderr)
    assert "generator iteration 3" in paragraph and "generator.blocks.1.1.running_var" in paragraph
    assert "--ckpt_path last" in paragraph and "--model.optimizer_g.init_args.lr 500 " in paragraph
    checkpoints = sorted((run / "checkpoints").glob("*.ckpt"))
    assert checkpoints and all(finite_everywhere(load(path)) for path in checkpoints)
    assert load(run / "checkpoints" / "last.ckpt")["giugan"]["generator_iteration"] == 2


@pytest.mark.slow
def test_a_nan_stop_before_the_first_checkpoint_advises_a_new_start_that_works(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "early"
    done = fit(tmp_path, "early", 4, "--model.optimizer_g.init_args.lr", "1e5")
    assert done.returncode == 2, done.stderr[-3000:]
    assert not list((run / "checkpoints").glob("*.ckpt"))
    attempts = 0
    while done.returncode == 2 and attempts < 3:
        attempts += 1
        (paragraph,) = giugan_lines(done.stderr)
        assert "No checkpoint was written yet: run the same command again" in paragraph
        assert "--ckpt_path" not in paragraph.split("No checkpoint was written yet")[1]
        done = fit(tmp_path, "early", 4, *advised_rates(paragraph))
    assert done.returncode == 0, done.stderr[-3000:]
    last = load(run / "checkpoints" / "last.ckpt")
    assert last["giugan"]["generator_iteration"] == 4 and finite_everywhere(last)


@pytest.mark.slow
def test_following_the_advice_of_a_nan_stop_reaches_the_end(tmp_path: Path) -> None:
    """Four good iterations, then a resume at a rate of 1e5 stops in the next one; the advice,
    followed as printed (as often as the run stops again), trains to the end."""
    run = tmp_path / "runs" / "advice"
    assert fit(tmp_path, "advice", 4).returncode == 0
    done = fit(tmp_path, "advice", ITERATIONS, "--model.optimizer_g.init_args.lr", "1e5", "--ckpt_path", "last")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "generator iteration 5:" in giugan_lines(done.stderr)[-1]
    attempts = 0
    while done.returncode == 2 and attempts < 4:
        attempts += 1
        assert "Traceback" not in done.stderr
        assert all(finite_everywhere(load(path)) for path in (run / "checkpoints").glob("*.ckpt"))
        flags = advised_rates(giugan_lines(done.stderr)[-1])
        done = fit(tmp_path, "advice", ITERATIONS, *flags, "--ckpt_path", "last")
        assert done.returncode in (0, 2), done.stderr[-3000:]
    assert done.returncode == 0, done.stderr[-3000:]
    last = load(run / "checkpoints" / "last.ckpt")
    assert last["giugan"]["generator_iteration"] == ITERATIONS and finite_everywhere(last)
    # The advised rate is the one the restored optimiser trained with, and the records say so.
    advised_g = float(flags[1])
    assert last["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(advised_g)
    assert float(metrics_rows(run)[-1]["lr_g"]) == pytest.approx(advised_g)
    resumed = max(run.glob("config-resume-*.yaml")).read_text()
    assert f"lr: {flags[1]}" in resumed or f"lr: {advised_g}" in resumed, resumed


def test_a_checkpoint_holding_a_non_finite_value_is_never_written() -> None:
    """The last line of defence, for values no step guard sees (e.g. weights overflowing in a
    finite optimiser step): the save stops before any byte is written."""
    from types import SimpleNamespace

    from giugan.training.callbacks.guards import FiniteCheckpoints, NonFiniteError

    module = SimpleNamespace(hparams={"nan_guard": True}, generator_iteration=7)
    trainer = SimpleNamespace(optimizers=[])
    checkpoint = {
        "state_dict": {"generator.weight": torch.ones(2), "generator.bn.running_var": torch.ones(2)},
        "optimizer_states": [{"state": {0: {"step": torch.tensor(3.0), "exp_avg_sq": torch.ones(2)}}}],
    }
    FiniteCheckpoints().on_save_checkpoint(trainer, module, checkpoint)  # finite: passes
    checkpoint["optimizer_states"][0]["state"][0]["exp_avg_sq"][1] = float("inf")
    checkpoint["state_dict"]["generator.weight"][0] = float("nan")
    with pytest.raises(NonFiniteError) as info:
        FiniteCheckpoints().on_save_checkpoint(trainer, module, checkpoint)
    message = str(info.value)
    assert "\n" not in message and "generator iteration 7" in message
    assert "generator.weight" in message and "optimizer 0 state 0.exp_avg_sq" in message
    assert "was not written" in message and "--ckpt_path last" in message
    module.hparams["nan_guard"] = False  # the guard off: not checked
    FiniteCheckpoints().on_save_checkpoint(trainer, module, checkpoint)
