"""A CLIP release file in OpenAI's layout (a TorchScript archive holding the image and text
towers), shrunk for score and command-line tests: torch-fidelity reads the architecture from the
weights, so a one-block ViT of width 64 at 64 pixels loads as its ``clip-vit-b-32`` encoder."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn


class _Release(nn.Module):
    """The keys of an OpenAI CLIP checkpoint: ``visual.*`` and the text tower torch-fidelity drops."""

    def __init__(self, embed_dim: int) -> None:
        from torch_fidelity.feature_extractor_clip import CLIPVisual

        super().__init__()
        self.visual = CLIPVisual(embed_dim, 64, 1, 64, 32).visual
        self.text_projection = nn.Parameter(torch.randn(32, embed_dim))
        self.positional_embedding = nn.Parameter(torch.randn(8, 32))
        self.token_embedding = nn.Embedding(10, 32)
        self.ln_final = nn.LayerNorm(32)
        self.logit_scale = nn.Parameter(torch.ones([]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def release_file(path: Path, seed: int = 0, embed_dim: int = 16) -> Path:
    """Write a tiny CLIP release (TorchScript archive) to ``path``."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; the releases are in it
        torch.jit.save(torch.jit.trace(_Release(embed_dim), torch.zeros(1)), str(path))
    return path
