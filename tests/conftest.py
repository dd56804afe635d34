"""Shared test fixtures (keep minimal; other test packages may add theirs)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _giugan_cache_outside_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``giugan profile``'s counts cache goes to a temporary folder, never the user's ~/.cache."""
    import os

    os.environ["GIUGAN_CACHE_DIR"] = str(tmp_path_factory.mktemp("giugan-cache"))


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    """Every test starts from the same global RNG state (deterministic CPU tests)."""
    torch.manual_seed(0)


@pytest.fixture
def single_thread():
    """Run a test with one intra-op thread (opt in with ``pytest.mark.usefixtures``).

    Small CPU convolutions are faster on one thread than on a shared, oversubscribed pool, and the
    results do not depend on the machine's core count.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
