"""Loss settings of the form before loss objects (``model.loss: hinge``, ``model.gp_weight``,
``model.gp_mode``) are read in the current form, in files, on the command line and in
checkpoints' hyperparameters, with a one-line notice each."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tiny_quickstart import QUICKSTART

from giugan.cli import main
from giugan.cli.composition import expand_config_bases
from giugan.cli.migration import migrate_flags
from giugan.legacy_settings import migrate_model_settings
from giugan.training.resume_changes import compare

WASSERSTEIN = "giugan.losses.WassersteinLoss"


def test_old_hyperparameters_become_one_loss_object() -> None:
    old = {"preset": None, "loss": "wasserstein", "gp_weight": 10.0, "gp_mode": "same_step", "n_critic": 1}
    new, notice = migrate_model_settings(old)
    assert new == {"preset": None, "n_critic": 1, "loss": {
        "class_path": WASSERSTEIN, "init_args": {"gp_weight": 10.0, "gp_mode": "same_step"}}}
    assert old["loss"] == "wasserstein"  # the input is left as it was
    assert notice == (
        "model.loss: wasserstein, model.gp_weight: 10.0, model.gp_mode: same_step (the form before "
        "loss objects) read as model.loss: {class_path: giugan.losses.WassersteinLoss, init_args: "
        "{gp_weight: 10.0, gp_mode: same_step}}")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ({"loss": "hinge"}, {"loss": {"class_path": "giugan.losses.HingeLoss"}}),
        ({"gp_mode": "separate_step"}, {"loss": {"init_args": {"gp_mode": "separate_step"}}}),
        ({"class_path": "giugan.training.module.GANModule", "init_args": {"loss": "least_squares", "gp_weight": 0}},
         {"class_path": "giugan.training.module.GANModule",
          "init_args": {"loss": {"class_path": "giugan.losses.LeastSquaresLoss", "init_args": {"gp_weight": 0}}}}),
        ({"loss": {"class_path": WASSERSTEIN}, "gp_weight": 5},
         {"loss": {"class_path": WASSERSTEIN, "init_args": {"gp_weight": 5}}}),
    ],
)
def test_partial_and_nested_old_settings(model: dict, expected: dict) -> None:
    assert migrate_model_settings(model)[0] == expected


@pytest.mark.parametrize(
    "model", [{"loss": {"class_path": WASSERSTEIN, "init_args": {"gp_weight": 10.0}}},
              {"loss": "giugan.losses.HingeLoss"}, {"n_critic": 2}, {}],
)
def test_the_current_form_is_left_alone(model: dict) -> None:
    assert migrate_model_settings(model) == (model, None)


def test_old_flags_are_rewritten_and_said(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["fit", "--model.loss", "hinge", "--model.gp_weight=0", "--model.init_args.gp_mode", "separate_step",
            "--model.loss.init_args.gp_weight", "3", "--model.n_critic", "2", "--trainer.devices", "1"]
    assert migrate_flags(args) == [
        "fit", "--model.loss", "giugan.losses.HingeLoss", "--model.loss.init_args.gp_weight=0",
        "--model.init_args.loss.init_args.gp_mode", "separate_step", "--model.loss.init_args.gp_weight", "3",
        "--model.n_critic", "2", "--trainer.devices", "1"]
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 3 and all(line.startswith("[giugan] --model.") for line in said)
    assert "--model.gp_weight 0 (the form before loss objects) read as --model.loss.init_args.gp_weight 0" in said[1]
    assert migrate_flags(migrate_flags(args)) == migrate_flags(args)  # the current form passes through


def test_an_old_config_file_is_handed_over_in_the_current_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.yaml"
    old.write_text("model:\n  loss: hinge\n  gp_weight: 0.0\n  n_critic: 2\n")
    args = expand_config_bases(["fit", "--config", str(old)])
    assert args[:2] == ["fit", "--config"]
    assert yaml.safe_load(args[2]) == {"model": {
        "loss": {"class_path": "giugan.losses.HingeLoss", "init_args": {"gp_weight": 0.0}}, "n_critic": 2}}
    assert capsys.readouterr().err.count(f"[giugan] {old}: model.loss: hinge, model.gp_weight: 0.0") == 1
    assert expand_config_bases(args) == args  # what DDP's re-launched ranks parse again


def test_an_old_row_over_the_shipped_quickstart_resolves_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Old rule kept: a row naming only a loss took the base's penalty; a row's gp_mode kept the loss."""
    row = tmp_path / "row.yaml"
    row.write_text("model:\n  gp_mode: separate_step\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", QUICKSTART, "--config", str(row), "--model.loss", "least_squares", "--print_config"])
    assert exit_info.value.code == 0
    loss = yaml.safe_load(capsys.readouterr().out)["model"]["loss"]
    assert loss == {"class_path": "giugan.losses.LeastSquaresLoss",
                    "init_args": {"gp_weight": 10.0, "gp_mode": "separate_step"}}


def test_a_resume_compares_an_old_checkpoint_in_the_current_form() -> None:
    saved = {"hyper_parameters": {"loss": "wasserstein", "gp_weight": 10.0, "gp_mode": "same_step"}}
    same = {"loss": {"class_path": WASSERSTEIN, "init_args": {"gp_weight": 10.0, "gp_mode": "same_step"}}}
    assert compare(saved, same, {}, "32-true").applied == []
    other = {"loss": {"class_path": WASSERSTEIN, "init_args": {"gp_weight": 10.0, "gp_mode": "separate_step"}}}
    assert [str(c) for c in compare(saved, other, {}, "32-true").applied] == [
        "model.loss.init_args.gp_mode same_step -> separate_step"]


def test_only_the_four_old_names_are_migrated() -> None:
    assert migrate_flags(["--model.loss", "relativistic_average"]) == ["--model.loss", "relativistic_average"]
    assert migrate_model_settings({"loss": "RelativisticAverageLoss"}) == ({"loss": "RelativisticAverageLoss"}, None)
