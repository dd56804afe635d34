"""The Lightning seams of ``giugan.compat``: each fails loudly when the pinned Lightning changes it."""

from __future__ import annotations

import contextvars

import lightning.pytorch as pl
import torch

from giugan import compat


def test_given_hyperparameters_is_still_the_context_variable_lightning_cli_sets() -> None:
    from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters

    assert isinstance(_given_hyperparameters, contextvars.ContextVar)
    assert compat.built_by_lightning_cli() is False
    token = _given_hyperparameters.set({"model": "x"})
    try:
        assert compat.built_by_lightning_cli() is True
    finally:
        _given_hyperparameters.reset(token)


class _Module(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)

    def val_dataloader(self):  # the module's own evaluation batches
        return torch.utils.data.DataLoader([7, 7], batch_size=None)

    def validation_step(self, batch, batch_idx):
        self.seen.append(int(batch))


class _Data(pl.LightningDataModule):
    def val_dataloader(self):  # real images: must not reach the validation loop
        return torch.utils.data.DataLoader([torch.zeros(3)], batch_size=None)


def test_evaluation_loops_read_the_module_not_the_data_module() -> None:
    trainer = pl.Trainer(
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu",
    )
    module, data = _Module(), _Data()
    module.seen = []
    loops = (trainer.fit_loop.epoch_loop.val_loop, trainer.validate_loop, trainer.test_loop)
    assert all(hasattr(loop._data_source, "instance") for loop in loops)

    class _Reroute(pl.Callback):
        def setup(self, trainer, pl_module, stage):
            compat.use_module_for_evaluation_data(trainer, pl_module)

    trainer.callbacks.append(_Reroute())
    trainer.validate(module, datamodule=data, verbose=False)
    assert module.seen == [7, 7]
    assert all(loop._data_source.instance is module for loop in loops)


def test_every_private_lightning_member_giugan_relies_on_still_exists() -> None:
    assert compat.missing_lightning_private_members() == []


def test_a_renamed_private_member_is_reported(monkeypatch) -> None:
    fake = (*compat.LIGHTNING_PRIVATE_MEMBERS, ("lightning.pytorch.callbacks", "ModelCheckpoint", "_gone"))
    monkeypatch.setattr(compat, "LIGHTNING_PRIVATE_MEMBERS", fake)
    assert compat.missing_lightning_private_members() == [
        "lightning.pytorch.callbacks.ModelCheckpoint._gone"
    ]


def test_compile_errors_cover_dynamo_and_inductor_failures() -> None:
    import torch._dynamo.exc as dynamo_errors
    from torch._inductor.exc import InductorError

    errors = compat.compile_errors()
    assert dynamo_errors.TorchDynamoException in errors
    assert InductorError in errors
