"""Model settings of the form before loss objects, read in the current form (docs/configs.md).

Before the loss owned its penalty, a config, a saved ``config.yaml`` and a checkpoint's
hyperparameters said ``model.loss: wasserstein`` (a name), ``model.gp_weight`` and
``model.gp_mode``. They now say ``model.loss: {class_path: giugan.losses.WassersteinLoss,
init_args: {gp_weight: ..., gp_mode: ...}}``. :func:`migrate_model_settings` rewrites a model
section of either form (flat, or ``init_args`` of ``GANModule``) and says what it changed in one
line; the command line, ``giugan predict --ckpt_path``, resumes and
``GANModule.load_from_checkpoint`` all read old files through it.
"""

from __future__ import annotations

import copy
import io
import os
import pickle
import sys
from typing import IO, Any

from giugan.losses import LOSS_CLASSES

#: The keys that moved into ``model.loss.init_args``.
PENALTY_KEYS = ("gp_weight", "gp_mode")
#: The values ``model.loss`` took before loss objects.
LEGACY_LOSS_NAMES = ("non_saturating", "least_squares", "wasserstein", "hinge")


def loss_class_path(name: str) -> str:
    """``giugan.losses.HingeLoss`` for the old name ``hinge``."""
    cls = LOSS_CLASSES[name]
    return f"{cls.__module__}.{cls.__qualname__}"


def is_legacy_loss_name(value: Any) -> bool:
    """Whether ``value`` is an old loss name (``wasserstein``, ``hinge``, ...)."""
    return isinstance(value, str) and value in LEGACY_LOSS_NAMES


def _settings_of(model: dict[str, Any]) -> dict[str, Any]:
    """The dict holding GANModule's arguments: ``model`` or its ``init_args``."""
    init_args = model.get("init_args")
    return init_args if "class_path" in model and isinstance(init_args, dict) else model


def needs_migration(model: Any) -> bool:
    """Whether a model section (or hyperparameters) has a setting of the old form."""
    if not isinstance(model, dict):
        return False
    settings = _settings_of(model)
    return is_legacy_loss_name(settings.get("loss")) or any(key in settings for key in PENALTY_KEYS)


def migrate_model_settings(model: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """``model`` in the current form, and a one-line notice of the change (None: nothing old).

    An old name becomes the loss's ``class_path``; ``gp_weight``/``gp_mode`` become its
    ``init_args``. Without a name (a file that only changes ``gp_weight``), only ``init_args``
    are written, which jsonargparse merges into the loss of the files before.
    """
    if not needs_migration(model):
        return model, None
    migrated = copy.deepcopy(model)
    settings = _settings_of(migrated)
    old = {key: settings[key] for key in ("loss", *PENALTY_KEYS) if key in settings}
    loss = settings.get("loss")
    new: dict[str, Any]
    if is_legacy_loss_name(loss):
        new = {"class_path": loss_class_path(loss)}
    elif isinstance(loss, str):
        new = {"class_path": loss}
    elif isinstance(loss, dict):
        new = copy.deepcopy(loss)
    else:
        new = {}
    penalty = {key: settings.pop(key) for key in PENALTY_KEYS if key in settings}
    if penalty:
        new["init_args"] = {**(new.get("init_args") or {}), **penalty}
    settings["loss"] = new
    before = ", ".join(f"model.{key}: {value}" for key, value in old.items())
    notice = f"{before} (the form before loss objects) read as model.loss: {_inline(new)}"
    return migrated, notice


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_inline(item)}" for key, item in value.items()) + "}"
    return str(value)


def checkpoint_in_current_form(path: str | os.PathLike[str] | IO[bytes]) -> str | os.PathLike[str] | IO[bytes]:
    """``path`` itself, or for a checkpoint of the old form, an in-memory copy in the current form.

    For ``GANModule.load_from_checkpoint``, which rebuilds the module from the checkpoint's
    hyperparameters (an old ``loss: wasserstein`` would not parse, and Lightning drops arguments
    the constructor no longer has, such as ``gp_weight``).
    """
    import torch

    if not isinstance(path, (str, os.PathLike)):
        return path
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
        return path  # not a readable checkpoint: Lightning's own load says so
    if not isinstance(checkpoint, dict):
        return path
    hparams, notice = migrate_model_settings(checkpoint.get("hyper_parameters") or {})
    if notice is None:
        return path
    print(f"[giugan] checkpoint {os.fspath(path)}: {notice}.", file=sys.stderr, flush=True)
    checkpoint["hyper_parameters"] = hparams
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    return buffer
