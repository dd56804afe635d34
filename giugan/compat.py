"""Every use of a private Lightning, torchmetrics or torch-fidelity name, in one place.

The versions are pinned in ``pyproject.toml``; each seam below has a test in
``tests/test_compat.py`` that fails loudly when an upgrade moves or changes it, so a version bump
is reviewed here and nowhere else.
"""

from __future__ import annotations

from typing import Any

# ---------------------------------------------------------------------------------- Lightning


def built_by_lightning_cli() -> bool:
    """True while LightningCLI instantiates a module from its parsed config.

    Seam: ``lightning.pytorch.core.mixins.hparams_mixin._given_hyperparameters`` (a ContextVar
    LightningCLI sets around model instantiation). Without it, the safe answer is False (the
    networks are then not saved as hyperparameters).
    """
    try:
        from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
    except ImportError:
        return False
    return _given_hyperparameters.get() is not None


def use_module_for_evaluation_data(trainer: Any, module: Any) -> None:
    """Make the validation and test loops take their batches from ``module``, not the data module.

    Lightning asks the data module for ``val_dataloader``/``test_dataloader`` whenever one is
    attached; giugan's evaluation batches are sample counts that the module defines, while the data
    module's ``val_dataloader`` is the real reference split (read once, for the cached
    statistics). Seam: the loops' ``_data_source.instance`` (``_DataLoaderSource``).
    """
    loops = (trainer.fit_loop.epoch_loop.val_loop, trainer.validate_loop, trainer.test_loop)
    for loop in loops:
        loop._data_source.instance = module


# -------------------------------------------------------------------------------- torchmetrics

# ------------------------------------------------------------------------------ torch-fidelity
