"""The FeatureMaps callback: D-feature maps written (and logged) at every evaluation of a real fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from giugan.cli import main
from giugan.training.callbacks.feature_maps import FeatureMaps

ROOT = Path(__file__).resolve().parents[2]
#: A 4-wide quickstart GIU-GAN, evaluated every 2 of 4 generator iterations, maps on.
TINY_WITH_MAPS = """
model:
  generator: {init_args: {conv_dim: 4, inserts: {1: {init_args: {channels: 16}}}}}
  discriminator: {init_args: {conv_dim: 4}}
  generator_iterations: 4
  eval_every: 2
  metrics: {init_args: {num_fake: 8, inception_score: false, cache_dir: cache}}
data: {init_args: {batch_size: 4, num_images: 16, eval_batch_size: 8}}
checkpoint: {every_n_generator_iterations: 4}
samples: {every: 4, num_samples: 4}
trainer:
  enable_progress_bar: false
  enable_model_summary: false
  logger:
    - class_path: giugan.training.loggers.CSVLogger
      init_args: {save_dir: runs, name: tiny, version: ""}
  callbacks:
    - class_path: giugan.training.callbacks.feature_maps.FeatureMaps
      init_args: {every_evaluation: true, layer: blocks.0, num_images: 3}
"""

pytestmark = pytest.mark.usefixtures("single_thread")


def test_fit_writes_maps_at_every_evaluation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(TINY_WITH_MAPS)
    assert main(["fit", "--config", str(ROOT / "configs" / "quickstart.yaml"),
                 "--config", str(tmp_path / "tiny.yaml")]) == 0
    folder = tmp_path / "runs" / "tiny" / "inspect"
    assert sorted(p.name for p in folder.iterdir()) == ["maps-00000002.png", "maps-00000004.png"]
    image = Image.open(folder / "maps-00000004.png")
    # 3 real + 3 sample maps of D block 1 (16x16, enlarged 4x to 64), in one row of 6
    assert image.mode == "L" and image.size == (6 * 66 + 2, 68)
    pixels = np.asarray(image)
    tiles = [pixels[2:66, 2 + 66 * i: 66 + 66 * i] for i in range(6)]
    assert all(tile.min() == 0 and tile.max() == 255 for tile in tiles)  # each map min-max scaled
    assert not np.array_equal(tiles[0], tiles[3])  # a real image's map is not a sample's


class ImageLogger:
    """Stands in for W&B: records what ``log_image`` receives."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def log_image(self, **kwargs) -> None:
        self.calls.append(kwargs)


def test_draw_logs_the_png_and_refuses_a_bad_layer(tmp_path: Path) -> None:
    from giugan.nets import Discriminator, Generator

    class Module:
        generator_iteration = 7
        z_dim = 8
        discriminator = Discriminator(32, conv_dim=4)
        _generator = Generator(32, z_dim=8, conv_dim=4)

        def generate(self, latents: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return self._generator.eval()(latents)

    class Loader:
        def reference_dataloader(self) -> list[torch.Tensor]:
            return [torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1]

    logger = ImageLogger()
    trainer = type("Trainer", (), {"is_global_zero": True, "log_dir": str(tmp_path),
                                   "loggers": [logger], "datamodule": Loader()})()
    callback = FeatureMaps(num_images=3)
    callback.setup(trainer, Module(), "fit")
    assert callback.layer == "blocks.1"  # the default: D block 2
    path = callback.draw(trainer, Module())
    assert path == str(tmp_path / "inspect" / "maps-00000007.png")
    assert Image.open(path).size == (6 * 66 + 2, 68)  # 8x8 maps, enlarged 8x
    (call,) = logger.calls
    assert call["key"] == "feature_maps" and call["images"] == [path] and call["step"] == 7

    with pytest.raises(ValueError, match=r"'blocks\.9'.*blocks\.0 \(4x16x16\)"):
        FeatureMaps(layer="blocks.9").setup(trainer, Module(), "fit")
    with pytest.raises(ValueError, match="num_images"):
        FeatureMaps(num_images=0)
