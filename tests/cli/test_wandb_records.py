"""What an offline W&B run records, read back from the files wandb wrote: the whole config, resumed
attempts marked as resumes of one run (so `wandb sync` appends them), and nothing from a refused
start."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from giugan.cli import main

from .test_wandb import ROOT, TINY, offline_wandb_in, read_run

RUN = "records_tiny"


def fit(folder: Path, *extra: str) -> int:
    """A tiny quickstart fit logging to ``folder/runs/<RUN>``."""
    # Absolute folders: wandb's service resolves relative ones against the directory it started
    # in, which is another test's when another module ran first.
    loggers = folder / "loggers.yaml"
    loggers.write_text(
        "trainer:\n  logger:\n"
        "    - class_path: giugan.training.loggers.CSVLogger\n"
        f"      init_args: {{save_dir: {folder / 'runs'}, name: {RUN}, version: ''}}\n"
        "    - class_path: giugan.training.loggers.WandbLogger\n"
        f"      init_args: {{save_dir: {folder / 'runs' / RUN}, project: giugan, name: {RUN}}}\n"
    )
    return main(["fit", "--config", str(ROOT / "configs" / "quickstart.yaml"), "--config", str(loggers), *TINY,
                 "--run_name", RUN, *extra])


def config_of(record: dict) -> dict:
    """The run's config as wandb keeps it (``{key: {"value": ...}}``) -> ``{key: value}``."""
    items = {item.key: json.loads(item.value_json) for item in record["run"].config.update}
    return {key: value["value"] if isinstance(value, dict) and "value" in value else value
            for key, value in items.items()}


@pytest.fixture(scope="module")
def attempts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 2-iteration offline run, resumed to 4 iterations: two offline folders of one run id."""
    tmp = tmp_path_factory.mktemp("wandb_records")
    with offline_wandb_in(tmp):
        assert fit(tmp, "--model.generator_iterations", "2", "--trainer.precision", "bf16-mixed") == 0
        folder = tmp / "runs" / RUN
        (folder / "first").write_text(next((folder / "wandb").glob("offline-run-*")).name)
        assert fit(tmp, "--model.generator_iterations", "4", "--trainer.precision", "bf16-mixed",
                   "--ckpt_path", "last") == 0
        yield folder


def folders(run: Path) -> tuple[Path, Path]:
    first = run / "wandb" / (run / "first").read_text()
    (resumed,) = [p for p in (run / "wandb").glob("offline-run-*") if p != first]
    return first, resumed


def test_the_run_config_holds_every_section_and_no_private_keys(attempts: Path) -> None:
    first, _ = folders(attempts)
    config = config_of(read_run(first))
    assert {"model", "data", "trainer", "checkpoint", "samples", "seed", "data_class"} <= set(config)
    trainer = config["trainer"]
    assert trainer["precision"] == "bf16-mixed" and trainer["devices"] == 1
    assert trainer["strategy"] == "auto" and trainer["num_nodes"] == 1
    assert config["data_class"] == "giugan.data.ShapesDataModule"
    assert config["data"]["init_args"]["batch_size"] == 4
    assert config["checkpoint"]["every_n_generator_iterations"] == 2 and config["samples"]["every"] == 2
    assert config["seed"] == config["model"]["seed"] == 0
    assert config["model"]["generator_iterations"] == 2

    def keys(value: object) -> Iterator[str]:
        if isinstance(value, dict):
            for key, inner in value.items():
                yield key
                yield from keys(inner)
        elif isinstance(value, list):
            for inner in value:
                yield from keys(inner)

    own = {k: v for k, v in config.items() if k != "_wandb"}  # wandb's own bookkeeping
    assert not [key for key in keys(own) if key.startswith("_")]


def test_a_resumed_attempt_is_marked_as_a_resume_of_the_same_run(attempts: Path) -> None:
    """wandb 0.31's `wandb sync` replays the files of one run id in start-time order; a file whose
    run record says `resume` is appended to the run (its steps start after the run's last)
    instead of starting the run again."""
    first, resumed = folders(attempts)
    run_id = (attempts / "wandb_id").read_text().strip()
    before, after = read_run(first), read_run(resumed)
    assert before["id"] == after["id"] == run_id
    assert before["run"].resume and after["run"].resume  # resume="allow": created, then appended
    assert after["run"].start_time.ToDatetime() > before["run"].start_time.ToDatetime()
    assert config_of(after)["model"]["generator_iterations"] == 4  # the attempt's own settings
    evaluated = [row["generator_iteration"] for record in (before, after)
                 for row in record["history"] if "eval/fid" in row]
    assert evaluated == [2, 4]  # each iteration once, over both attempts


def test_a_refused_start_leaves_no_wandb_run_or_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The W&B run is created before the data is read: an empty image folder is found after it."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    from giugan.training import run_directory

    # A fresh process, as from the console (a fit earlier in this process set it).
    monkeypatch.setattr(run_directory, "_TRAINING_STARTED", [False])
    # A Ctrl-C stop of an earlier command in this process is not this command's: its start
    # is still refused whole.
    from giugan.training.callbacks import signals

    monkeypatch.setattr(signals, "LAST_STOP", [object()])
    (tmp_path / "empty").mkdir()
    data = tmp_path / "data.yaml"
    data.write_text("data:\n  class_path: giugan.data.ImageFolderDataModule\n"
                    f"  init_args: {{root: {tmp_path / 'empty'}, image_size: 32, batch_size: 4}}\n")
    assert fit(tmp_path, "--config", str(data), "--model.generator_iterations", "2") == 2
    assert "No image files found" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # no run folder, wandb/ or wandb_id
