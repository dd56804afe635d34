"""Fixtures shared by the profiling tests."""

from __future__ import annotations

import pytest

from giugan.profiling.profile import ProfileCache


@pytest.fixture(scope="module")
def cache() -> ProfileCache:
    """One cache per test module: each preset is built and counted once."""
    return ProfileCache()
