"""Validation of ``GANModule``'s settings: one-paragraph ``ValueError``s naming key and allowed values."""

from __future__ import annotations

import math
from typing import Any

import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import nn

from giugan.losses import LOSS_CLASSES, AdversarialLoss, WassersteinLoss
from giugan.messages import first_few
from giugan.nets.presets import build_preset, check_preset_name
from giugan.ops import RepresentativeBatchNorm2d
from giugan.validation import check_choice, check_int, check_number


def check_learning_rates(factory: OptimizerCallable, name: str) -> None:
    probe = nn.Parameter(torch.zeros(1))
    try:
        optimizer = factory([probe])
    except ValueError as error:
        raise ValueError(
            f"GANModule: model.init_args.{name} is invalid: {error}. Optimiser settings must be "
            f"valid for it: a positive number for lr (the papers use 1e-4 to 4e-4), betas in [0, 1)."
        ) from error
    for group in optimizer.param_groups:
        lr = group.get("lr")
        if isinstance(lr, (int, float)) and not (lr > 0 and math.isfinite(lr)):
            raise ValueError(
                f"GANModule: model.init_args.{name} has lr={lr}; the learning rate must be a "
                f"positive number (the papers use 1e-4 to 4e-4)."
            )


def resolve_loss(loss: Any) -> AdversarialLoss:
    """The loss object; None = WGAN-GP (GIU-GANs eq. 14); anything else a one-paragraph error."""
    if loss is None:
        return WassersteinLoss()
    if isinstance(loss, AdversarialLoss):
        return loss
    known = ", ".join(f"{cls.__module__}.{cls.__qualname__}" for cls in LOSS_CLASSES.values())
    raise ValueError(
        f"GANModule: model.init_args.loss={loss!r} is not a loss object; give one of {known} "
        f"(in YAML as `loss: {{class_path: giugan.losses.HingeLoss, init_args: {{gp_weight: 0.0}}}}`; "
        f"in Python as `loss=HingeLoss(gp_weight=0.0)`), or a subclass of "
        f"giugan.losses.AdversarialLoss. docs/configs.md, \"Losses\"."
    )


def validate_settings(**s: Any) -> None:
    """Check the GANModule settings; one-paragraph ``ValueError`` naming the key and allowed values."""

    def key(name: str) -> dict[str, str]:
        return {"name": f"model.init_args.{name}", "owner": "GANModule"}

    check_int(**key("n_critic"), value=s["n_critic"], minimum=1,
              hint="It counts discriminator steps per generator step.")
    check_int(**key("generator_iterations"), value=s["generator_iterations"], minimum=1,
              hint="It is the training length in generator iterations.")
    check_choice(**key("lr_schedule"), value=s["lr_schedule"], allowed=("constant", "linear", "exponential"))
    check_number(**key("lr_decay_rate"), value=s["lr_decay_rate"], minimum=0, maximum=1, include_minimum=False,
                 hint="It must lie in (0, 1].")
    check_int(**key("lr_decay_every"), value=s["lr_decay_every"], minimum=1, hint="It counts generator iterations.")
    if s["ema_decay"] is not None:
        check_number(**key("ema_decay"), value=s["ema_decay"], minimum=0, maximum=1, include_minimum=False,
                     include_maximum=False, hint="It must lie strictly between 0 and 1 (e.g. 0.999), or be null for no EMA.")
    check_int(**key("ema_start"), value=s["ema_start"], minimum=0)
    check_int(**key("eval_every"), value=s["eval_every"], minimum=0, hint="0 evaluates only at the end of fit.")


def refuse_replaced_representative_norms(module: nn.Module, rbn_layers: list[str]) -> None:
    """Stop when something (``trainer.sync_batchnorm``) swapped RBN layers for plain BatchNorm.

    ``SyncBatchNorm.convert_sync_batchnorm`` converts every ``_BatchNorm`` subclass, so RBN
    (GIU-GANs section 4) would silently become a plain synchronised BN and drop its calibration parameters.
    """
    replaced = [
        name for name in rbn_layers
        if not isinstance(module.get_submodule(name), RepresentativeBatchNorm2d)
    ]
    if replaced:
        raise ValueError(
            f"GANModule: RepresentativeBatchNorm2d layers ({first_few(replaced)}) were replaced by "
            f"{type(module.get_submodule(replaced[0])).__name__} before training, which would "
            f"silently train a different network without RBN's calibration (GIU-GANs section 4). "
            f"This is what trainer.sync_batchnorm=true does under DDP; set it to false (the "
            f"default: batch statistics per rank), or use a preset without RBN."
        )


def metrics_ready(metrics: Any, required: bool) -> bool:
    """Whether ``metrics`` can measure now; with ``required``, say why not in one paragraph."""
    if metrics is None:
        if required:
            raise ValueError(
                "No metrics are configured, so there is nothing to validate or test. Set "
                "model.init_args.metrics (class_path: giugan.metrics.GenerativeMetrics) in the "
                "config; see configs/quickstart.yaml."
            )
        return False
    if not metrics.available:
        if required:
            raise RuntimeError(f"Cannot evaluate: {metrics.unavailable_reason}")
        return False
    return True


def resolve_networks(
    generator: nn.Module | None, discriminator: nn.Module | None, preset: str | None
) -> tuple[nn.Module, nn.Module]:
    """The given ``(G, D)``, or the preset's; refuse half a pair or a G without ``z_dim``."""
    if preset is not None:
        check_preset_name(preset)  # also when networks are given: a typo must not pass silently
    if (generator is None) != (discriminator is None):
        raise ValueError(
            "GANModule: give both model.init_args.generator and model.init_args.discriminator, "
            "or neither together with model.init_args.preset."
        )
    if generator is None:
        if preset is None:
            raise ValueError(
                "GANModule: no networks given. Set model.init_args.preset (e.g. giu_gan_32; "
                "`giugan profile --all` lists them) or both generator and discriminator."
            )
        generator, discriminator = build_preset(preset)
    if not isinstance(getattr(generator, "z_dim", None), int):
        raise ValueError(
            f"GANModule: the generator {type(generator).__name__} has no integer attribute "
            f"`z_dim`; a generator must say how long its latent vector is."
        )
    return generator, discriminator
