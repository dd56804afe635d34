"""Shared test fixtures (keep minimal; other test packages may add theirs)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    """Every test starts from the same global RNG state (deterministic CPU tests)."""
    torch.manual_seed(0)
