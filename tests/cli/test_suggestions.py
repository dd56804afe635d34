"""The "Did you mean ...?" of a mistyped option or class path (with the real giugan parser)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from giugan.cli.suggestions import parser_options, suggestion


@pytest.fixture(scope="module")
def options() -> list[str]:
    from giugan.cli.lightning import GiuganCLI

    root = Path(__file__).resolve().parents[2]
    with warnings.catch_warnings():  # LightningCLI's note that pytest's own argv is there too
        warnings.filterwarnings("ignore", message=".*args parameter")
        cli = GiuganCLI(args=["--config", str(root / "configs" / "quickstart.yaml")], run=False)
    return parser_options(cli.parser)


def test_a_mistyped_option_names_the_nearest_one(options: list[str]) -> None:
    assert "--model.n_critic" in options and "--trainer.devices" in options
    assert suggestion("unrecognized arguments: --model.n_critics 2", options) == "Did you mean --model.n_critic?"
    assert suggestion("unrecognized arguments: --trainer.device 2", options) == "Did you mean --trainer.devices?"
    assert suggestion("unrecognized arguments: --completely.other 2", options) is None


def test_a_mistyped_class_path_names_the_class() -> None:
    assert suggestion(
        "model.generator: Problem with given class_path 'giugan.nets.Generatr': module 'giugan.nets' "
        "has no attribute 'Generatr'"
    ) == "Did you mean giugan.nets.Generator?"
    assert suggestion(
        "data: Expected a path but giugan.data.ShapesDataModul either not accessible or invalid"
    ) == "Did you mean giugan.data.ShapesDataModule?"
    assert suggestion("data: Expected a path but giugan.data.ShapesDataModule is fine") is None


@pytest.mark.parametrize(
    ("extra", "hint"),
    [
        (["--model.n_critics", "2"], "Did you mean --model.n_critic?"),
        (["--data", "giugan.data.ShapesDataModul"], "Did you mean giugan.data.ShapesDataModule?"),
    ],
)
def test_the_command_line_says_did_you_mean(
    extra: list[str], hint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from giugan.cli import main

    monkeypatch.chdir(tmp_path)
    root = Path(__file__).resolve().parents[2]
    with pytest.raises(SystemExit) as exit_info:  # a parse error ends the command at once
        main(["fit", "--config", str(root / "configs" / "quickstart.yaml"), *extra])
    assert exit_info.value.code == 2
    # (LightningCLI warns here that pytest's own argv is there too: not a giugan line)
    error = "\n".join(line for line in capsys.readouterr().err.splitlines() if "args parameter" not in line)
    assert error.startswith("giugan: ") and hint in error and len(error.strip().splitlines()) == 2
    assert not list(tmp_path.iterdir())  # a refused command writes nothing


def test_an_abstract_class_names_its_concrete_subclasses() -> None:
    hint = suggestion("model.loss: Expected a path but giugan.losses.AdversarialLoss either not accessible")
    assert hint is not None and "`giugan.losses.AdversarialLoss` is an abstract base class" in hint
    assert "giugan.losses.WassersteinLoss" in hint and "giugan.losses.RelativisticAverageLoss" in hint
    assert "giugan.losses.AdversarialLoss," not in hint  # the base itself is not offered
