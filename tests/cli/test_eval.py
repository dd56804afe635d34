"""``giugan eval``: the same scores as the training path, the same eval.json, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from giugan.cli import main
from giugan.metrics import GenerativeMetrics


def pictures(count: int, seed: int, shift: int = 0, size: int = 16) -> np.ndarray:
    """uint8 ``(count, size, size, 3)``: smooth random colour patterns (+ ``shift`` brightness)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 200, size=(count, 4, 4, 3))
    smooth = coarse.repeat(size // 4, axis=1).repeat(size // 4, axis=2)
    noise = rng.uniform(0, 40, size=smooth.shape)
    return np.clip(smooth + noise + shift, 0, 255).round().astype(np.uint8)


def write_folder(folder: Path, images: np.ndarray) -> Path:
    for index, image in enumerate(images):  # class sub-folders, as an extracted archive has
        path = folder / f"class{index % 3}" / f"{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
    return folder


def decoded(folder: Path) -> torch.Tensor:
    """The folder's images in sorted path order, decoded by PIL independently of giugan eval."""
    files = sorted(folder.rglob("*.png"), key=lambda p: p.relative_to(folder).as_posix())
    pixels = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()  # as a DataLoader batch


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    real = write_folder(tmp_path / "real", pictures(60, seed=0))
    fake = write_folder(tmp_path / "fake", pictures(50, seed=1, shift=25))
    return real, fake


def options(tmp_path: Path) -> list[str]:
    return [
        "--metrics.extractor", "standin", "--metrics.precision_recall", "true",
        "--metrics.cache_dir", str(tmp_path / "cache"), "--device", "cpu", "--batch_size", "25",
    ]  # fmt: skip


def training_path(
    real: torch.Tensor, fake: torch.Tensor, cache: Path, batch: int = 25, **settings: object
) -> dict[str, float]:
    """The scores GenerativeMetrics gives with update_real/update_fake/compute, as in training.

    Batches as giugan eval's (float32 features of a batch depend slightly on its size).
    """
    metrics = GenerativeMetrics(
        extractor="standin", precision_recall=True, cache_dir=str(cache), **settings  # type: ignore[arg-type]
    )
    for batch_images in real.split(batch):
        metrics.update_real(batch_images)
    for batch_images in fake.split(batch):
        metrics.update_fake(batch_images)
    return metrics.compute()


def run_eval(*args: str) -> dict:
    assert main(["eval", *args]) == 0
    output = Path(args[args.index("--output") + 1])
    return json.loads((output / "eval.json").read_text())


def test_folder_against_folder_equals_the_training_path(folders, tmp_path: Path) -> None:
    real, fake = folders
    report = run_eval(str(fake), "--reference", str(real), "--output", str(tmp_path / "out"), *options(tmp_path))
    expected = training_path(decoded(real), decoded(fake), tmp_path / "other-cache")
    assert {name: report[name] for name in expected} == expected  # the same numbers, exactly
    protocol = report["protocol"]
    assert protocol["num_fake"] == 50 and protocol["num_real"] == 60
    assert protocol["precision_recall_k"] == 3 and protocol["density_coverage_k"] == 5
    assert protocol["reference"].startswith("images-") and protocol["reference_source"] == str(real)
    assert protocol["extractor"] == "standin" and protocol["quantisation"].startswith("clamp")
    assert report["samples"] == str(fake)
    assert len(list((tmp_path / "cache").glob("images-*.pt"))) == 1  # the shared reference cache


def test_a_config_data_section_is_the_reference_split(folders, tmp_path: Path) -> None:
    real, fake = folders
    config = tmp_path / "config.yaml"
    config.write_text(
        "model:\n  metrics:\n    class_path: giugan.metrics.GenerativeMetrics\n"
        f"    init_args: {{extractor: standin, kid: true, kid_subset_size: 10, cache_dir: {tmp_path / 'cache'}}}\n"
        "data:\n  class_path: giugan.data.ImageFolderDataModule\n"
        f"  init_args: {{root: {real}, image_size: 16, num_workers: 0}}\n"
    )
    report = run_eval(
        str(fake), "--config", str(config), "--metrics.precision_recall", "true",
        "--output", str(tmp_path / "out"), "--device", "cpu",
    )  # fmt: skip
    expected = training_path(
        decoded(real), decoded(fake), tmp_path / "other-cache", batch=250, kid=True, kid_subset_size=10
    )  # the data module's eval_batch_size and giugan eval's --batch_size are both 250
    assert {name: report[name] for name in expected} == expected
    assert report["protocol"]["kid"] is True and "kid_mean" in report  # the config's options
    assert report["protocol"]["reference"].startswith("folder-")
    assert report["protocol"]["num_real"] == 60


def test_npz_samples_score_as_the_folder(folders, tmp_path: Path) -> None:
    real, fake = folders
    npz = tmp_path / "images.npz"  # as `giugan predict --predictions.npz true` writes it
    np.savez(npz, index=np.arange(50), images=decoded(fake).permute(0, 2, 3, 1).numpy())
    from_npz = run_eval(str(npz), "--reference", str(real), "--output", str(tmp_path / "a"), *options(tmp_path))
    from_folder = run_eval(str(fake), "--reference", str(real), "--output", str(tmp_path / "b"), *options(tmp_path))
    assert from_npz["fid"] == from_folder["fid"] and from_npz["precision"] == from_folder["precision"]


def test_a_set_against_itself_has_precision_and_recall_one(folders, tmp_path: Path) -> None:
    real, _ = folders
    report = run_eval(str(real), "--reference", str(real), "--output", str(tmp_path / "out"), *options(tmp_path))
    assert report["precision"] == report["recall"] == report["coverage"] == 1.0
    assert report["fid"] == pytest.approx(0.0, abs=1e-9)


def test_the_inception_score_alone_needs_no_reference(folders, tmp_path: Path) -> None:
    _, fake = folders
    report = run_eval(
        str(fake), "--output", str(tmp_path / "out"), "--metrics.extractor", "standin",
        "--metrics.fid", "false", "--device", "cpu",
    )  # fmt: skip
    assert set(report) >= {"is_mean", "is_std"} and "fid" not in report
    assert report["protocol"]["reference"] is None and report["protocol"]["num_fake"] == 50


def test_every_option_has_help_text() -> None:
    from giugan.cli.evaluate import build_parser

    parser = build_parser()
    for action in parser._actions:  # argparse keeps no public list of its options
        if action.dest not in ("help",) and not action.dest.endswith(".help"):
            assert action.help, action.dest


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda r, f, t: [str(t / "missing"), "--reference", str(r)], r"The samples '.*missing' does not exist"),
        (lambda r, f, t: [str(f)], r"No reference\. Give --reference"),
        (lambda r, f, t: [str(t / "bad.npz"), "--reference", str(r)], r"has no array `images` \(it has pixels\)"),
        (lambda r, f, t: [str(t / "big"), "--reference", str(r)], r"The samples are 32x32 but the reference .* 16x16"),
        (lambda r, f, t: [str(f), "--reference", str(r), "--metrics.resize", "clean"], r"resize: clean` applies to the Inception"),
        (
            lambda r, f, t: [str(f), "--reference", str(r), "--metrics.weights_path", str(t / "none.pth")],
            r"Inception weights .* are unavailable.*`--metrics\.weights_path /path/to/",
        ),
    ],
    ids=["missing-samples", "no-reference", "npz-without-images", "size-mismatch", "clean-stand-in", "no-weights"],
)
def test_bad_input_is_one_paragraph_with_status_2(folders, tmp_path: Path, capsys, make_args, message) -> None:
    real, fake = folders
    np.savez(tmp_path / "bad.npz", pixels=np.zeros((2, 16, 16, 3), np.uint8))
    write_folder(tmp_path / "big", pictures(4, seed=2, size=32))
    argv = [*options(tmp_path), *make_args(real, fake, tmp_path), "--output", str(tmp_path / "out")]
    if "--metrics.weights_path" in argv:
        argv += ["--metrics.extractor", "inception"]
    assert main(["eval", *argv]) == 2
    error = capsys.readouterr().err
    assert error.startswith("giugan: ") and len(error.strip().splitlines()) == 2  # + the debug hint
    assert __import__("re").search(message, error), error
    assert "--model." not in error  # only options that `giugan eval` takes
    assert not (tmp_path / "out").exists()  # a refused command writes nothing
