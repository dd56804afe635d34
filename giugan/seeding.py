"""Stateless per-(seed, rank, step) random generators: samples are reproducible from the triple.

Each training step draws its noise from a fresh ``torch.Generator`` seeded by mixing the run's
seed, the process rank and the generator iteration. Nothing has to be checkpointed for the noise
to continue identically after a resume, and every DDP rank draws different noise
(``seed_everything`` alone gives every rank the same noise).
"""

from __future__ import annotations

import hashlib

import torch


def mixed_seed(*parts: int | str) -> int:
    """A 63-bit seed from any tuple of ints/strings (stable across runs and platforms)."""
    digest = hashlib.blake2b("/".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def step_generator(seed: int, rank: int, step: int | str, device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded from ``(seed, rank, step)``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(mixed_seed(seed, rank, step))
    return generator
