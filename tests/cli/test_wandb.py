"""An offline W&B run of a tiny quickstart, read back from what wandb wrote (no mocks).

The offline run folder ``<run dir>/wandb/offline-run-*/`` holds ``run-<id>.wandb`` (wandb's
record log: a 7-byte header, then LevelDB-log-framed ``wandb.proto`` ``Record`` messages) and the
run's files (``files/``: media, saved files).
"""

from __future__ import annotations

import contextlib
import json
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from giugan.cli import main

ROOT = Path(__file__).resolve().parents[2]
RUN_NAME = "quickstart_tiny"
TINY = [
    "--model.generator.init_args.conv_dim", "4",
    "--model.generator.init_args.inserts.1.init_args.channels", "16",
    "--model.discriminator.init_args.conv_dim", "4",
    "--data.init_args.batch_size", "4",
    "--data.init_args.num_images", "16",
    "--data.init_args.eval_batch_size", "8",
    "--model.metrics.init_args.num_fake", "16",
    "--model.metrics.init_args.fid", "true",  # the quickstart's own metric is the shapes judge
    "--model.metrics.init_args.inception_score", "true",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
    "--trainer.log_every_n_steps", "1",
    "--model.eval_every", "2", "--samples.every", "2", "--checkpoint.every_n_generator_iterations", "2",
]
_BLOCK = 32768  # LevelDB log block size
_FULL, _LAST = 1, 4


def wandb_records(path: Path) -> Iterator[Any]:
    """The ``Record`` messages of a ``run-*.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, payload = 7, b""
    while position + 7 <= len(data):
        left = _BLOCK - position % _BLOCK
        if left < 7:  # a block's tail too short for a header is padding
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        if length == 0 and kind == 0:
            position += left
            continue
        payload += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (_FULL, _LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(payload)
            payload = b""
            yield record


def read_run(
    folder: Path, wait_seconds: float = 30.0, ready: Callable[[dict[str, Any]], bool] | None = None
) -> dict[str, Any]:
    """Run fields, metric definitions, history rows (values decoded) and artifact records of one
    offline run.

    wandb's service process may still be writing the file when the command returns (seen on a
    loaded CI machine): read again until ``ready`` holds (default: the run record is there), for
    up to ``wait_seconds``.
    """
    import time

    ready = ready or (lambda record: record["run"] is not None)
    deadline = time.monotonic() + wait_seconds
    while True:
        record = _read_run_once(folder)
        if ready(record) or time.monotonic() > deadline:
            return record
        time.sleep(0.5)


def _read_run_once(folder: Path) -> dict[str, Any]:
    (log,) = folder.glob("run-*.wandb")
    run, metrics, history, artifacts = None, [], [], []
    for record in wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
        elif kind == "metric":
            metrics.append(record.metric)
        elif kind == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.history.item})
        elif kind == "artifact":
            artifacts.append(record.artifact)
    return {"run": run, "metrics": metrics, "history": history, "artifacts": artifacts,
            "id": log.stem.removeprefix("run-")}


def fit(*extra: str) -> int:
    return main(["fit", "--config", str(ROOT / "configs" / "quickstart.yaml"), *TINY, "--run_name", RUN_NAME, *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 4-iteration offline run in ``runs/quickstart_tiny``, then resumed to 6 iterations."""
    tmp = tmp_path_factory.mktemp("wandb_run")
    with offline_wandb_in(tmp):
        assert fit("--model.generator_iterations", "4") == 0
        folder = tmp / "runs" / RUN_NAME
        (folder / "first_runs").write_text("\n".join(p.name for p in (folder / "wandb").glob("offline-run-*")))
        assert fit("--model.generator_iterations", "6", "--ckpt_path", "last") == 0
        yield folder


@contextlib.contextmanager
def offline_wandb_in(folder: Path) -> Iterator[None]:
    """In ``folder``, W&B offline (no WANDB_DIR of the caller) and one torch thread, then restored."""
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        patch.delenv("WANDB_DIR", raising=False)
        patch.chdir(folder)
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


def offline_runs(folder: Path) -> tuple[Path, list[Path]]:
    first_names = (folder / "first_runs").read_text().split()
    assert len(first_names) == 1
    first = folder / "wandb" / first_names[0]
    return first, sorted(p for p in (folder / "wandb").glob("offline-run-*") if p.name != first.name)


def test_one_name_sets_the_csv_wandb_and_checkpoint_folders(trained: Path) -> None:
    assert (trained / "metrics.csv").is_file() and (trained / "config.yaml").is_file()
    assert (trained / "checkpoints" / "last.ckpt").is_file() and (trained / "checkpoints" / "best.ckpt").is_file()
    assert list((trained / "wandb").glob("offline-run-*"))
    assert not (trained.parent / "quickstart").exists()  # the config's own name is replaced


def test_offline_run_has_the_generator_iteration_axis_group_and_tags(trained: Path) -> None:
    first, _ = offline_runs(trained)
    record = read_run(first)
    run = record["run"]
    assert run.display_name == RUN_NAME and run.project == "giugan"
    assert run.run_group == "quickstart" and run.job_type == "fit"
    assert list(run.tags) == ["shapes", "quickstart", RUN_NAME]
    definitions = {m.name or m.glob_name: m for m in record["metrics"]}
    assert "trainer/global_step" not in definitions
    assert definitions["*"].step_metric == "generator_iteration"
    assert definitions["eval/fid"].summary.min
    rows = [row for row in record["history"] if set(row) - {"_step", "_runtime", "_timestamp"}]
    assert rows and all("generator_iteration" in row for row in rows)
    assert sorted(r["generator_iteration"] for r in rows if "eval/fid" in r) == [2, 4]
    assert sorted(r["generator_iteration"] for r in rows if "samples/filenames" in r) == [2, 4]
    assert any("loss_d" in r for r in rows)


def test_sample_grids_in_wandb_equal_the_pngs_on_disk(trained: Path) -> None:
    first, _ = offline_runs(trained)
    grids = [r for r in read_run(first)["history"] if "samples/filenames" in r]
    assert len(grids) == 2
    for row in grids:
        (name,) = row["samples/filenames"]
        logged = np.asarray(Image.open(first / "files" / name).convert("RGB"))
        on_disk = np.asarray(Image.open(trained / "samples" / f"iter-{row['generator_iteration']:08d}.png"))
        assert logged.max() > 1  # not black
        np.testing.assert_array_equal(logged, on_disk)


def test_config_is_a_run_file_and_a_resume_continues_the_run(trained: Path) -> None:
    first, resumed = offline_runs(trained)
    saved = first / "files" / "giugan" / "config.yaml"
    assert saved.read_text() == (trained / "config.yaml").read_text()
    run_id = (trained / "wandb_id").read_text().strip()
    assert read_run(first)["id"] == run_id
    assert len(resumed) == 1 and read_run(resumed[0])["id"] == run_id  # `wandb sync` merges them
    later = [r["generator_iteration"] for r in read_run(resumed[0])["history"] if "eval/fid" in r]
    assert later == [6]


def test_test_command_is_an_evaluation_job_and_leaves_the_run_alone(trained: Path) -> None:
    history = (trained / "metrics.csv").read_bytes()
    run_id = (trained / "wandb_id").read_text()
    before = set((trained / "wandb").glob("offline-run-*"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        patch.chdir(trained.parent.parent)
        assert main(["test", "--config", str(trained / "config.yaml"), "--ckpt_path", "last"]) == 0
    assert (trained / "metrics.csv").read_bytes() == history
    assert (trained / "wandb_id").read_text() == run_id
    (job,) = set((trained / "wandb").glob("offline-run-*")) - before
    record = read_run(job)
    assert record["id"] != run_id.strip()
    assert record["run"].job_type == "test" and record["run"].run_group == "quickstart"
    assert record["run"].display_name == f"{RUN_NAME}-test"
    assert [r["generator_iteration"] for r in record["history"] if "fid" in r] == [6]
    report = json.loads((trained / "eval.json").read_text())
    assert json.loads((job / "files" / "giugan" / "eval.json").read_text()) == report


def test_checkpoints_are_model_artifacts_with_latest_and_best_aliases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``log_model: true`` (the default online) logs the checkpoints as model artifacts; offline
    they are kept in the offline run for ``wandb sync``, so they can be read back here."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    loggers = tmp_path / "loggers.yaml"
    # Absolute folders: wandb's service resolves relative ones against the directory it started
    # in, which is another test's when the module's fixture ran first.
    loggers.write_text(
        "trainer:\n  logger:\n"
        "    - class_path: giugan.training.loggers.CSVLogger\n"
        f"      init_args: {{save_dir: {tmp_path / 'runs'}, name: artifacts, version: ''}}\n"
        "    - class_path: giugan.training.loggers.WandbLogger\n"
        f"      init_args: {{save_dir: {tmp_path / 'runs' / 'artifacts'}, project: giugan, name: artifacts,"
        " log_model: true}\n"
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        args = ["fit", "--config", str(ROOT / "configs" / "quickstart.yaml"), "--config", str(loggers), *TINY,
                "--model.generator_iterations", "4"]
        assert main(args) == 0
    finally:
        torch.set_num_threads(threads)
    (offline_run,) = (tmp_path / "runs" / "artifacts" / "wandb").glob("offline-run-*")
    artifacts = read_run(offline_run, ready=lambda record: bool(record["artifacts"]))["artifacts"]
    assert artifacts and {a.type for a in artifacts} == {"model"}
    files = {a.metadata and json.loads(a.metadata).get("original_filename"): set(a.aliases) for a in artifacts}
    checkpoints = tmp_path / "runs" / "artifacts" / "checkpoints"
    assert set(files) <= {p.name for p in checkpoints.glob("*.ckpt")}
    assert any("latest" in aliases for aliases in files.values())
    assert any("best" in aliases for aliases in files.values())
    assert files.get("best.ckpt", set()) >= {"best"}

