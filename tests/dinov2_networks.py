"""timm's DINOv2 ViT layout shrunk for command-line and score tests, and its release checkpoint."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn


def tiny_dinov2(image_size: int = 224) -> nn.Module:
    """timm's DINOv2 ViT layout (LayerScale, class token, patch 14) at one block of width 24, its
    LayerScale at 1 (as torch.hub builds DINOv2) so that the class token depends on the image."""
    torch.manual_seed(0)
    return timm.create_model(
        "vit_small_patch14_dinov2", pretrained=False, num_classes=0, img_size=image_size,
        embed_dim=24, depth=1, num_heads=2, init_values=1.0,
    )  # fmt: skip


def release_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """A DINOv2 checkpoint in the release's layout: 518-pixel (37x37) positions, a mask token."""
    state = tiny_dinov2(518).state_dict()
    state["mask_token"] = torch.zeros(1, 24)
    torch.save(state, path)
    return state
