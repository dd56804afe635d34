"""The shipped quickstart shrunk for command-line tests: tiny networks and data, CPU.

Command-line tests add their own cadences (evaluation, grids, checkpoints) and switches to this.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "configs" / "quickstart.yaml")
#: Networks of width 4 (GIU of 16 channels), 96 images in batches of 8, 48 samples per evaluation.
TINY_QUICKSTART = [
    "--trainer.accelerator", "cpu",
    "--model.generator.init_args.conv_dim", "4",
    "--model.generator.init_args.inserts.1.init_args.channels", "16",
    "--model.discriminator.init_args.conv_dim", "4",
    "--data.init_args.batch_size", "8",
    "--data.init_args.num_images", "96",
    "--data.init_args.eval_batch_size", "16",
    "--model.metrics.init_args.num_fake", "48",
    "--trainer.log_every_n_steps", "1",
]
