"""Validation of ``GANModule``'s settings: one-paragraph ``ValueError``s naming key and allowed values."""

from __future__ import annotations

import math
from typing import Any

import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import nn

from giugan.losses import get_loss
from giugan.messages import first_few
from giugan.nets.presets import build_preset, check_preset_name
from giugan.ops import RepresentativeBatchNorm2d


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


def validate_settings(**s: Any) -> None:
    """Check the GANModule settings; one-paragraph ``ValueError`` naming the key and allowed values."""

    def fail(key: str, allowed: str) -> None:
        raise ValueError(f"GANModule: model.init_args.{key}={s[key]!r} is not allowed; {allowed}.")

    get_loss(s["loss"])
    if not isinstance(s["n_critic"], int) or isinstance(s["n_critic"], bool) or s["n_critic"] < 1:
        fail("n_critic", "it must be an integer >= 1 (discriminator steps per generator step)")
    if not isinstance(s["gp_weight"], (int, float)) or s["gp_weight"] < 0 or not math.isfinite(s["gp_weight"]):
        fail("gp_weight", "it must be a finite number >= 0 (WGAN-GP uses 10; 0 disables the penalty)")
    if s["gp_mode"] not in ("same_step", "separate_step"):
        fail("gp_mode", "use 'same_step' or 'separate_step'")
    if not isinstance(s["generator_iterations"], int) or s["generator_iterations"] < 1:
        fail("generator_iterations", "it must be an integer >= 1 (training length in generator iterations)")
    if s["lr_schedule"] not in ("constant", "linear", "exponential"):
        fail("lr_schedule", "use 'constant', 'linear' or 'exponential'")
    if not 0 < s["lr_decay_rate"] <= 1:
        fail("lr_decay_rate", "it must lie in (0, 1]")
    if not isinstance(s["lr_decay_every"], int) or s["lr_decay_every"] < 1:
        fail("lr_decay_every", "it must be an integer >= 1 (generator iterations)")
    if s["ema_decay"] is not None and not 0 < s["ema_decay"] < 1:
        fail("ema_decay", "it must lie strictly between 0 and 1 (e.g. 0.999), or be null for no EMA")
    if not isinstance(s["ema_start"], int) or s["ema_start"] < 0:
        fail("ema_start", "it must be an integer >= 0")
    if not isinstance(s["eval_every"], int) or s["eval_every"] < 0:
        fail("eval_every", "it must be an integer >= 0 (0 = evaluate only at the end)")


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
