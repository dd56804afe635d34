"""``giugan inspect``: D-feature maps and the 64-sample sheet from a tiny checkpoint, read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from giugan.cli import main

ROOT = Path(__file__).resolve().parents[2]
#: A 4-wide quickstart GIU-GAN trained for 2 generator iterations (D blocks: 4x16x16, 8x8x8, 16x4x4).
TINY_RUN = """
model:
  generator: {init_args: {conv_dim: 4, inserts: {1: {init_args: {channels: 16}}}}}
  discriminator: {init_args: {conv_dim: 4}}
  generator_iterations: 2
  eval_every: 0
  metrics: null
data: {init_args: {batch_size: 4, num_images: 16, eval_batch_size: 8}}
checkpoint: {every_n_generator_iterations: 2}
samples: {every: 2, num_samples: 4}
trainer:
  enable_progress_bar: false
  enable_model_summary: false
  logger:
    - class_path: giugan.training.loggers.CSVLogger
      init_args: {save_dir: runs, name: tiny, version: ""}
"""

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``runs/tiny/checkpoints/last.ckpt`` of a real ``giugan fit`` (in a temporary folder)."""
    folder = tmp_path_factory.mktemp("inspect")
    (folder / "tiny.yaml").write_text(TINY_RUN)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "disabled")
        patch.chdir(folder)
        assert main(["fit", "--config", str(ROOT / "configs" / "quickstart.yaml"),
                     "--config", str(folder / "tiny.yaml")]) == 0
    return folder / "runs" / "tiny" / "checkpoints" / "last.ckpt"


def grid_size(count: int, side: int, columns: int = 8, padding: int = 2) -> tuple[int, int]:
    """(width, height) of a grid of ``count`` squares of ``side`` pixels, 8 a row, 2-pixel gaps."""
    columns = min(columns, count)
    rows = -(-count // columns)
    return columns * (side + padding) + padding, rows * (side + padding) + padding


def read(path: Path) -> tuple[Image.Image, np.ndarray]:
    image = Image.open(path)
    return image, np.asarray(image)


def test_maps_and_sheet_from_the_runs_own_data(checkpoint: Path) -> None:
    assert main(["inspect", str(checkpoint)]) == 0
    folder = checkpoint.parent.parent / "inspect"  # the default: <run dir>/inspect/
    for name in ("maps_real.png", "maps_fake.png"):
        image, pixels = read(folder / name)
        # 16 maps of D block 2 (8x8), enlarged 8x to 64 pixels, 8 a row
        assert image.mode == "L" and image.size == grid_size(16, 64)
        tile = pixels[2:66, 2:66]
        assert tile.std() > 0 and tile.min() == 0 and tile.max() == 255  # min-max scaled, not flat
        assert (tile[::8, ::8].repeat(8, 0).repeat(8, 1) == tile).all()  # pixel repetition
    sheet, pixels = read(folder / "samples_64.png")
    assert sheet.mode == "RGB" and sheet.size == grid_size(64, 32)
    assert pixels.std() > 0
    real, _ = read(folder / "images_real.png")
    assert real.size == grid_size(16, 32)


def test_images_folder_layer_seed_and_output(checkpoint: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = tmp_path / "real"
    images.mkdir()
    for index in range(3):  # any size: resized and centre-cropped to 32x32
        Image.fromarray(rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)).save(images / f"{index}.png")
    args = ["inspect", str(checkpoint), "--images", str(images), "--layer", "blocks.0",
            "--num-images", "5", "--seed", "3"]
    assert main([*args, "--output", str(tmp_path / "a")]) == 0
    image, pixels = read(tmp_path / "a" / "maps_real.png")
    assert image.mode == "L" and image.size == grid_size(3, 64)  # 3 images; 16x16 maps, 4x
    assert pixels[2:66, 2:66].std() > 0
    assert read(tmp_path / "a" / "maps_fake.png")[0].size == grid_size(5, 64)

    assert main([*args, "--output", str(tmp_path / "b")]) == 0
    assert main([*args[:-1], "4", "--output", str(tmp_path / "c")]) == 0
    sheets = [read(tmp_path / name / "samples_64.png")[1] for name in "abc"]
    np.testing.assert_array_equal(sheets[0], sheets[1])  # the seed fixes the samples
    assert not np.array_equal(sheets[0], sheets[2])


def test_bad_layer_lists_the_feature_layers(checkpoint: Path, tmp_path: Path, capsys) -> None:
    assert main(["inspect", str(checkpoint), "--layer", "block.1", "--output", str(tmp_path)]) == 2
    message = capsys.readouterr().err
    assert "'block.1'" in message
    assert "blocks.0 (4x16x16)" in message and "blocks.1 (8x8x8)" in message
    assert "blocks.2 (16x4x4)" in message and "output (" not in message  # D's 1x1 score: no map
    assert not list(tmp_path.iterdir())  # nothing written


def test_missing_inputs_are_one_paragraph_errors(checkpoint: Path, tmp_path: Path, capsys) -> None:
    assert main(["inspect", str(tmp_path / "none.ckpt")]) == 2
    assert "none.ckpt does not exist" in capsys.readouterr().err
    assert main(["inspect", str(checkpoint), "--images", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["inspect", str(checkpoint), "--images", str(tmp_path / "empty")]) == 2
    assert "holds no image files" in capsys.readouterr().err
    (tmp_path / "other.ckpt").write_bytes(b"not a checkpoint")
    assert main(["inspect", str(tmp_path / "other.ckpt")]) == 2
    assert "other.ckpt is not a PyTorch checkpoint" in capsys.readouterr().err
    assert main(["inspect", str(checkpoint), "--num-images", "0"]) == 2
    assert "--num-images is 0" in capsys.readouterr().err


def test_config_of_another_image_size_is_refused(checkpoint: Path, capsys) -> None:
    config = ROOT / "configs" / "celeba" / "giu_gan.yaml"  # 64x64 data, composed with __base__
    assert main(["inspect", str(checkpoint), "--config", str(config)]) == 2
    assert "64x64 images but the checkpoint's discriminator takes 32x32" in capsys.readouterr().err


def test_help_names_every_option(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--layer", "--images", "--config", "--num-images", "--seed", "--output", "--device"):
        assert option in text
