"""The ``giugan`` command line end to end on tiny settings: fit, resume, test, predict, guards."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from giugan.cli import main
from giugan.training.module import GANModule

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--model.generator.init_args.conv_dim", "4",
    "--model.generator.init_args.inserts.1.init_args.channels", "16",
    "--model.discriminator.init_args.conv_dim", "4",
    "--data.init_args.batch_size", "4",
    "--data.init_args.num_images", "16",
    "--data.init_args.eval_batch_size", "8",
    "--model.metrics.init_args.num_fake", "16",
    "--model.metrics.init_args.fid", "true",
    "--model.metrics.init_args.inception_score", "true",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
]

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "logger.yaml").write_text(
        "trainer:\n  logger:\n    - class_path: giugan.training.loggers.CSVLogger\n"
        f"      init_args: {{save_dir: {tmp_path / 'runs'}, name: tiny, version: ''}}\n"
        f"model:\n  metrics:\n    init_args: {{cache_dir: {tmp_path / 'cache'}}}\n"
    )
    return tmp_path


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def fit(run: Path, *extra: str) -> int:
    return main(
        ["fit", "--config", str(ROOT / "configs" / "quickstart.yaml"), "--config", str(run / "logger.yaml"), *TINY,
         "--model.eval_every", "2", "--samples.every", "2", "--checkpoint.every_n_generator_iterations", "2", *extra]
    )


def test_fit_resume_test_and_predict(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert fit(run, "--model.generator_iterations", "4") == 0
    folder = run / "runs" / "tiny"
    assert (folder / "config.yaml").exists()
    assert (folder / "samples" / "iter-00000004.png").exists()
    assert {p.name for p in (folder / "checkpoints").glob("*.ckpt")} >= {"last.ckpt", "best.ckpt", "iter-00000004.ckpt"}
    rows = read_rows(folder / "metrics.csv")
    fids = [float(r["eval/fid"]) for r in rows if r.get("eval/fid")]
    assert len(fids) == 2 and all(np.isfinite(fids))
    steps = sorted({int(r["step"]) for r in rows if r.get("eval/fid")})
    assert steps == [2, 4]  # the step axis is the generator iteration, not trainer.global_step

    # a fresh run may not reuse a run directory that holds checkpoints ...
    capsys.readouterr()
    assert fit(run, "--model.generator_iterations", "4") == 2  # one paragraph, status 2
    refusal = capsys.readouterr().err
    assert "--ckpt_path last" in refusal and "--run_name NAME" in refusal
    # ... but it resumes from it
    assert fit(run, "--model.generator_iterations", "6", "--ckpt_path", "last") == 0
    last = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["giugan"]["generator_iteration"] == 6
    # a checkpoint of a `giugan fit` run rebuilds its model in Python, networks included
    loaded = GANModule.load_from_checkpoint(folder / "checkpoints" / "last.ckpt", map_location="cpu")
    assert loaded.state_dict().keys() == last["state_dict"].keys()
    assert all(torch.equal(v, last["state_dict"][k]) for k, v in loaded.state_dict().items())
    # the resumed run appended to the run's CSV instead of replacing it (Lightning's default)
    rows = read_rows(folder / "metrics.csv")
    assert sorted(int(r["step"]) for r in rows if r.get("eval/fid")) == [2, 4, 6]

    config = str(folder / "config.yaml")
    history = (folder / "metrics.csv").read_bytes()
    assert main(["test", "--config", config, "--ckpt_path", str(folder / "checkpoints" / "best.ckpt")]) == 0
    report = json.loads((folder / "eval.json").read_text())
    assert {"fid", "is_mean", "is_std"} <= set(report)
    assert report["protocol"]["num_fake"] == 16 and report["protocol"]["extractor"].startswith("standin")
    assert report["protocol"]["reference"].startswith("shapes")
    assert "torchmetrics" in json.dumps(report["protocol"])
    assert report["command"] == "test"
    # evaluation commands keep their records apart from the training run's log and each other's
    tested = (folder / "eval.json").read_bytes()
    assert main(["validate", "--config", config, "--ckpt_path", "best"]) == 0
    assert (folder / "metrics.csv").read_bytes() == history
    assert (folder / "eval.json").read_bytes() == tested
    validated = json.loads((folder / "eval-validate.json").read_text())
    assert validated["command"] == "validate" and validated["fid"] == report["fid"]
    assert validated["checkpoint"].endswith("best.ckpt")

    out = run / "predicted"
    args = ["predict", "--config", config, "--ckpt_path", str(folder / "checkpoints" / "last.ckpt"),
            "--predictions.num_images", "5", "--predictions.output_dir", str(out), "--predictions.npz", "true"]
    assert main(args) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [f"{i:06d}.png" for i in range(5)]
    first = np.asarray(Image.open(out / "000000.png"))
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    arrays = np.load(out / "images.npz")
    assert arrays["images"].shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(arrays["images"][0], first)

    # from the checkpoint alone: no --config, no data, no metrics (its weights are never needed)
    args = ["predict", "--ckpt_path", str(folder / "checkpoints" / "last.ckpt"), "--predictions.num_images", "2",
            "--predictions.interpolation_steps", "5", "--predictions.interpolation_rows", "3"]
    assert main(args) == 0
    alone = folder / "predictions"
    np.testing.assert_array_equal(np.asarray(Image.open(alone / "000000.png")), first)
    sheet = np.asarray(Image.open(alone / "interpolation.png"))
    assert sheet.shape == (3 * 32, 5 * 32, 3)
    np.testing.assert_array_equal(sheet[:32, :32], first)  # row 0 starts at image 0's latent


def test_a_checkpoint_with_inception_metrics_loads_and_predicts_without_the_weights(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a CIFAR-10 row's checkpoint (Inception metrics, default weights lookup) on a bare machine."""
    assert fit(run, "--model.generator_iterations", "2") == 0
    folder = run / "runs" / "tiny"
    checkpoint = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=False)
    checkpoint["hyper_parameters"]["metrics"]["init_args"].update(extractor="inception", weights_path=None)
    torch.save(checkpoint, folder / "checkpoints" / "inception.ckpt")
    monkeypatch.setenv("GIUGAN_INCEPTION_WEIGHTS", str(run / "no-such-weights.pth"))
    loaded = GANModule.load_from_checkpoint(folder / "checkpoints" / "inception.ckpt", map_location="cpu")
    assert loaded.metrics is not None and loaded.generate(torch.randn(2, loaded.z_dim)).shape == (2, 3, 32, 32)
    args = ["predict", "--ckpt_path", str(folder / "checkpoints" / "inception.ckpt"), "--predictions.num_images", "3"]
    assert main(args) == 0
    assert sorted(p.name for p in (folder / "predictions").glob("*.png")) == [f"{i:06d}.png" for i in range(3)]


def test_truncated_latents_stay_within_the_threshold() -> None:
    from giugan.training.callbacks.prediction import latents_for_indices

    indices = torch.arange(6)
    plain = latents_for_indices(indices, 64, seed=3)
    truncated = latents_for_indices(indices, 64, seed=3, truncation=0.5)
    assert plain.abs().max() > 0.5 and truncated.abs().max() <= 0.5
    torch.testing.assert_close(truncated, latents_for_indices(indices, 64, seed=3, truncation=0.5))


def test_print_config_and_profile(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(ROOT / "configs" / "quickstart.yaml"), "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "giugan.ops.GIU" in printed and "generator_iterations: 4000" in printed
    assert main(["profile", "--table", "5", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any(r["preset"] == "dcgan_32" and r["params"] == 4_341_248 for r in rows)


def test_progress_bar_shows_the_generator_iteration_as_an_integer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from giugan.cli.lightning import GiuganCLI
    from giugan.training.callbacks import GeneratorIterationProgressBar

    monkeypatch.setenv("WANDB_MODE", "disabled")
    cli = GiuganCLI(
        args=["--config", str(ROOT / "configs" / "quickstart.yaml"), "--trainer.logger", "false"],
        run=False,
    )
    bar = cli.trainer.progress_bar_callback
    assert type(bar) is GeneratorIterationProgressBar

    trainer = SimpleNamespace(loggers=[], progress_bar_metrics={"g_iter": 566.0, "loss_d": -1.27})
    assert bar.get_metrics(trainer, cli.model) == {"g_iter": 566, "loss_d": -1.27}


def test_top_level_help_lists_every_command_without_lightning(capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess
    import sys

    assert main(["--help"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    assert [words[0] for words in lines] == ["fit", "validate", "test", "predict", "profile", "stats", "inspect", "eval",
                                          "sweep", "report", "export"]
    probe = "import sys; from giugan.cli import main; main(['--help']); print('lightning' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")


def test_fit_help_names_giugan_networks_not_every_torch_module(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = capsys.readouterr().out
    assert "giugan.nets.Generator" in text and "torch.nn.Conv2d" not in text
    assert _options_without_help(text) == []


def _options_without_help(text: str) -> list[str]:
    """Options of an argparse help page whose description is missing (only its type/default)."""
    import re

    lines = text.splitlines()
    missing = []
    for index, line in enumerate(lines):
        match = re.match(r"^  (--[\w.]+)", line)
        if not match:
            continue
        parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        description = parts[1] if len(parts) > 1 else (lines[index + 1].strip() if index + 1 < len(lines) else "")
        if description == "" or description.startswith(("(type", "(required", "--")):
            missing.append(match.group(1))
    return missing


def test_the_help_check_finds_an_option_without_help() -> None:
    page = "options:\n  --a A                 the a. (type: int)\n  --b B\n                        (type: int, default: 1)\n"
    assert _options_without_help(page) == ["--b"]


def test_progress_bar_counts_generator_iterations_of_the_whole_run() -> None:
    import io

    from tqdm import tqdm

    from giugan.training.callbacks import GeneratorIterationProgressBar

    bar = GeneratorIterationProgressBar()
    bar.train_progress_bar = tqdm(file=io.StringIO())
    module = SimpleNamespace(generator_iteration=3, hparams=SimpleNamespace(generator_iterations=10))
    trainer = SimpleNamespace(loggers=[], progress_bar_metrics={"g_iter": 4.0, "loss_d": 0.5})
    bar.on_train_epoch_start(trainer, module)  # a resumed run: the bar starts at 3 of 10
    assert (bar.train_progress_bar.n, bar.train_progress_bar.total) == (3, 10)
    module.generator_iteration = 4
    bar.on_train_batch_end(trainer, module, None, None, 0)
    bar.on_train_epoch_start(trainer, module)  # a new epoch does not reset it
    assert (bar.train_progress_bar.n, bar.train_progress_bar.total) == (4, 10)
    assert bar.train_progress_bar.desc.startswith("Generator iterations")


def test_model_summary_shows_giugan_params_and_macs() -> None:
    from giugan.nets import build_preset
    from giugan.training.callbacks.progress import GeneratorDiscriminatorSummary

    generator, discriminator = build_preset("dcgan_32")
    module = SimpleNamespace(generator=generator, discriminator=discriminator)
    summary = GeneratorDiscriminatorSummary()
    summary.on_fit_start(SimpleNamespace(is_global_zero=True), module)
    total = next(line for line in summary.table.splitlines() if line.strip().startswith("total"))
    assert "4.341M" in total  # GIU-GANs Table 5 DCGAN: 4,341,248 parameters


def test_test_and_validate_without_a_config_name_the_runs_config_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    checkpoints = tmp_path / "runs" / "r" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "last.ckpt").write_bytes(b"not read")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["validate", "--ckpt_path", "runs/r/checkpoints/last.ckpt"]) == 2
    assert "add --config runs/<name>/config.yaml" in capsys.readouterr().err  # the run saved none
    (tmp_path / "runs" / "r" / "config.yaml").write_text("model: {}\n")
    assert main(["test", "--ckpt_path=runs/r/checkpoints/last.ckpt"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("giugan: `giugan test` rebuilds") and "add --config runs/r/config.yaml" in error
    assert len(error.strip().splitlines()) == 2  # one paragraph and the debug hint
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == [*before, Path("runs/r/config.yaml")]
