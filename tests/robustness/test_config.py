"""Config mistakes fail through the real CLI before any data is loaded.

Every run points the data at a folder that does not exist and makes any data set-up fail the
test, so the error asserted is the config error, raised while the classes are built.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from giugan.cli import GiuganCLI
from giugan.data import ImageDataModule

pytestmark = pytest.mark.usefixtures("single_thread")

MISSING_DATA = "/nonexistent/giugan-robustness-data"


@pytest.fixture(autouse=True)
def _no_data_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self, *args, **kwargs):
        pytest.fail("the data was set up before the config error was reported")

    monkeypatch.setattr(ImageDataModule, "setup", refuse)
    monkeypatch.setattr(ImageDataModule, "prepare_data", refuse)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setattr("sys.argv", ["giugan"])


def run_cli(tmp_path: Path, *overrides: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``giugan fit`` on the quickstart with ``overrides``; return the error the user sees."""
    args = [
        "fit", "--config", "configs/quickstart.yaml",
        "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path),
        "--model.metrics", "null",
        "--data", "giugan.data.ImageFolderDataModule", "--data.init_args.root", MISSING_DATA,
        *overrides,
    ]  # fmt: skip
    with pytest.raises((SystemExit, ValueError)) as info:
        GiuganCLI(args=args)
    if isinstance(info.value, SystemExit):
        assert info.value.code != 0
        return capsys.readouterr().err
    return str(info.value)


CASES = {
    # case: (overrides, fragments the message must contain: the key/value and the allowed values)
    "unknown_preset": (
        [
            "--model.generator",
            "null",
            "--model.discriminator",
            "null",
            "--model.preset",
            "giu_gan_3",
        ],
        [
            "Unknown preset 'giu_gan_3'",
            "Did you mean giu_gan_32",
            "Known presets:",
            "giugan profile --all",
        ],
    ),
    "unknown_preset_beside_networks": (
        ["--model.preset", "giu_gan_3"],
        ["Unknown preset 'giu_gan_3'", "Known presets:"],
    ),
    "unknown_class_path": (
        ["--model.generator.class_path", "giugan.nets.Generatr"],
        ["model.generator", "giugan.nets.Generatr", "has no attribute 'Generatr'"],
    ),
    "misspelt_key_on_command_line": (
        ["--model.n_critc", "2"],
        ["unrecognized arguments: --model.n_critc"],
    ),
    "n_critic_below_one": (
        ["--model.n_critic", "0"],
        ["Invalid value 0", "batches_per_iteration", "model.n_critic", "integer >= 1"],
    ),
    "lr_zero": (
        ["--model.optimizer_g.init_args.lr", "0"],
        ["model.init_args.optimizer_g", "lr=0.0", "positive number"],
    ),
    "lr_negative": (
        ["--model.optimizer_d.init_args.lr", "-0.001"],
        ["model.init_args.optimizer_d", "-0.001", "positive number"],
    ),
    "batch_size_below_one": (
        ["--data.init_args.batch_size", "0"],
        ["Invalid value 0 for argument 'batch_size'", "integer >= 1"],
    ),
    "image_size_the_backbone_cannot_build": (
        ["--model.generator.init_args.image_size", "48"],
        ["Generator: image_size=48 is not supported", "(16, 32, 64, 128)"],
    ),
    "group_channels_not_dividing_channels": (
        ["--model.generator.init_args.inserts.1.init_args.group_channels", "24"],
        [
            "is not divisible by group_channels=24",
            "Choose group_channels among the divisors of",
            "[1, 2, 4, 8, 16",
        ],
    ),
    "even_kernel_size": (
        ["--model.generator.init_args.inserts.1.init_args.kernel_size", "4"],
        ["kernel_size=4 is even", "must be odd (1, 3, 5, 7, ...)"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_config_error_names_key_and_allowed_values_before_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    overrides, fragments = CASES[case]
    message = run_cli(tmp_path, *overrides, capsys=capsys)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    assert MISSING_DATA not in message.replace(f"root='{MISSING_DATA}'", "")  # not the data error


def test_misspelt_key_in_a_yaml_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("model:\n  n_critic: 2\n  gp_wieght: 5.0\n")
    message = run_cli(tmp_path, "--config", str(typo), capsys=capsys)
    assert "does not accept option 'model.gp_wieght'" in message
    nested = tmp_path / "nested.yaml"
    nested.write_text("model:\n  generator:\n    init_args:\n      conv_dimm: 8\n")
    message = run_cli(tmp_path, "--config", str(nested), capsys=capsys)
    assert "model.generator" in message and "Option 'conv_dimm' is not accepted" in message
