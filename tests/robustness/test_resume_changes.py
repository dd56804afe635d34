"""Settings changed on resume through ``python -m giugan fit``: applied and recorded, or refused.

Before, ``--model.optimizer_g.init_args.lr`` on a resume was silently overridden by the
checkpoint's optimiser state while ``config-resume-*.yaml`` recorded the new rate, and another
batch size or ``n_critic`` was applied with no word; ``--data.init_args.seed`` was silently
replaced by ``model.seed``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from giugan.training.resume_changes import compare

from .cli_runs import file_digests, fit, giugan_lines, load, metrics_rows


@pytest.mark.slow
def test_new_rates_on_resume_are_applied_recorded_and_said_once(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "rates"
    assert fit(tmp_path, "rates", 4).returncode == 0
    done = fit(tmp_path, "rates", 6, "--model.optimizer_g.init_args.lr", "1e-4",
               "--model.optimizer_d.init_args.betas", "[0.0, 0.99]", "--model.gp_weight", "5",
               "--ckpt_path", "last")
    assert done.returncode == 0, done.stderr[-3000:]
    said = [line for line in done.stderr.splitlines() if "changed settings" in line]
    assert len(said) == 1, done.stderr[-3000:]
    for change in ("model.optimizer_g.init_args.lr 0.0002 -> 0.0001", "model.loss.init_args.gp_weight 10 -> 5",
                   "model.optimizer_d.init_args.betas (0.5, 0.9) -> (0, 0.99)"):
        assert change in said[0]
    # The record (config-resume), the optimiser that trained and the logged rates agree.
    resumed = yaml.safe_load((run / "config-resume-00000004.yaml").read_text())
    assert resumed["model"]["optimizer_g"]["init_args"]["lr"] == pytest.approx(1e-4)
    last = load(run / "checkpoints" / "last.ckpt")
    group_g, group_d = (state["param_groups"][0] for state in last["optimizer_states"])
    assert group_g["lr"] == pytest.approx(1e-4) and group_g["initial_lr"] == pytest.approx(1e-4)
    assert last["lr_schedulers"][0]["base_lrs"] == [pytest.approx(1e-4)]
    assert tuple(group_d["betas"]) == (0.0, 0.99) and group_d["lr"] == pytest.approx(1e-3)
    assert last["hyper_parameters"]["loss"]["init_args"]["gp_weight"] == 5
    rates = {int(row["generator_iteration"]): float(row["lr_g"]) for row in metrics_rows(run)}
    assert rates == {1: 2e-4, 2: 2e-4, 3: 2e-4, 4: 2e-4, 5: 1e-4, 6: 1e-4}
    # The precision in force is recorded in each checkpoint.
    assert last["giugan_settings"]["trainer.precision"] == "32-true"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--data.init_args.batch_size", "4"], "data.init_args.batch_size 8 -> 4"),
        (["--model.n_critic", "2"], "model.n_critic 1 -> 2"),
        (["--model.metrics.init_args.num_fake", "32"], "model.metrics.init_args.num_fake 48 -> 32"),
        (["--model.seed", "3"], "model.seed 0 -> 3"),
    ],
)
def test_changes_that_cannot_apply_on_resume_are_refused_and_change_no_file(
    tmp_path: Path, flags: list[str], named: str
) -> None:
    run = tmp_path / "runs" / "refused"
    assert fit(tmp_path, "refused", 2).returncode == 0
    before = file_digests(run)
    done = fit(tmp_path, "refused", 4, *flags, "--ckpt_path", "last")
    assert done.returncode == 2, done.stderr[-3000:]
    (paragraph,) = giugan_lines(done.stderr)
    assert named in paragraph and "Nothing was written" in paragraph
    assert file_digests(run) == before


@pytest.mark.slow
def test_a_data_seed_other_than_the_model_seed_is_refused_naming_model_seed(tmp_path: Path) -> None:
    done = fit(tmp_path, "seed", 2, "--data.init_args.seed", "5")
    assert done.returncode == 2, done.stderr[-3000:]
    (paragraph,) = giugan_lines(done.stderr)
    assert "data.init_args.seed 5" in paragraph and "--model.seed 5" in paragraph
    assert not (tmp_path / "runs").exists()
    # The same seed given both ways is what the link does anyway: accepted.
    agreed = fit(tmp_path, "seed", 1, "--model.seed", "5", "--data.init_args.seed=5")
    assert agreed.returncode == 0, agreed.stderr[-3000:]
    assert load(tmp_path / "runs" / "seed" / "checkpoints" / "last.ckpt")["datamodule_hyper_parameters"]["seed"] == 5


def _adam(**init_args: object) -> dict:
    return {"class_path": "torch.optim.Adam", "init_args": {"lr": 2e-4, "betas": [0.5, 0.9], "amsgrad": False, **init_args}}


def _wasserstein(**init_args: object) -> dict:
    return {"class_path": "giugan.losses.WassersteinLoss",
            "init_args": {"gp_weight": 10.0, "gp_mode": "same_step", **init_args}}


def _checkpoint() -> dict:
    group = {"lr": 1e-4, "initial_lr": 2e-4, "betas": (0.5, 0.9), "amsgrad": False, "params": [0]}
    metrics = {"class_path": "giugan.metrics.GenerativeMetrics", "init_args": {"num_fake": 48, "cache_dir": "a"}}
    return {
        "hyper_parameters": {"optimizer_g": _adam(), "optimizer_d": _adam(), "n_critic": 1, "seed": 0,
                             "loss": _wasserstein(), "eval_every": 3, "metrics": metrics},
        "datamodule_hyper_parameters": {"batch_size": 8},
        "optimizer_states": [{"param_groups": [dict(group)]}, {"param_groups": [dict(group)]}],
        "giugan_settings": {"trainer.precision": "32-true"},
    }


def test_the_decision_per_setting() -> None:
    """Compared against the optimiser state in force (the base rate under a schedule), not the config."""
    saved = _checkpoint()
    same = {**saved["hyper_parameters"], "metrics": {"init_args": {"num_fake": 48, "cache_dir": "elsewhere"}}}
    nothing = compare(saved, same, {"batch_size": 8}, "32-true")
    assert not nothing.applied and not nothing.refused  # a moved cache is no change
    changed = {**same, "optimizer_g": _adam(lr=1e-5), "optimizer_d": _adam(amsgrad=True), "eval_every": 5,
               "loss": {"class_path": "giugan.losses.HingeLoss", "init_args": {"gp_weight": 5.0, "gp_mode": "same_step"}}}
    decision = compare(saved, changed, {"batch_size": 8}, "bf16-mixed")
    assert [str(c) for c in decision.applied] == [
        "model.loss.class_path giugan.losses.WassersteinLoss -> giugan.losses.HingeLoss",
        "model.loss.init_args.gp_weight 10 -> 5", "model.eval_every 3 -> 5", "model.optimizer_g.init_args.lr 0.0002 -> 1e-05",
        "trainer.precision 32-true -> bf16-mixed"]
    assert decision.optimizer_settings == {0: {"lr": 1e-5}}
    assert [str(c) for c in decision.refused] == ["model.optimizer_d.init_args.amsgrad False -> True"]
    other_class = {**same, "optimizer_g": {"class_path": "torch.optim.SGD", "init_args": {"lr": 2e-4}}}
    assert [c.key for c in compare(saved, other_class, {"batch_size": 8}, "32-true").refused] == [
        "model.optimizer_g.class_path"]
