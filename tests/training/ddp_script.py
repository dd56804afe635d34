"""Run by tests/training/test_ddp.py: a 2-process CPU (gloo) DDP fit of a tiny GAN.

Lightning's launcher re-executes this script once per extra rank. Each rank saves its final
parameters and the noise it drew at iteration 0, so the test can check that gradients were
synchronised (identical parameters) while the noise differed.
"""

from __future__ import annotations

import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(os.path.dirname(HERE)), HERE]

from helpers import tiny_data, tiny_module
from lightning.pytorch import Callback, Trainer

from giugan.seeding import step_generator


class SaveRankState(Callback):
    def __init__(self, out: str) -> None:
        self.out = out

    def on_train_end(self, trainer, pl_module) -> None:
        rank = trainer.global_rank
        noise = torch.randn(4, pl_module.z_dim, generator=step_generator(0, rank, 0, torch.device("cpu")))
        torch.save(
            {
                "state": {k: v.detach().cpu() for k, v in pl_module.state_dict().items()},
                "noise": noise,
                "iteration": pl_module.generator_iteration,
                "world_size": trainer.world_size,
            },
            os.path.join(self.out, f"rank{rank}.pt"),
        )


def main(out: str) -> None:
    torch.set_num_threads(1)
    module = tiny_module(n_critic=2, generator_iterations=3)
    trainer = Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_find_unused_parameters_true",
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[SaveRankState(out)],
    )
    trainer.fit(module, datamodule=tiny_data(n_critic=2, num_images=32))


if __name__ == "__main__":
    main(sys.argv[1])
