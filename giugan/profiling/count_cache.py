"""A disk cache of ``giugan profile``'s counts, keyed by the sources that determine them.

Counting a preset means building its networks and tracing one forward (``docs/counting.md``);
the 41 paper rows need 26 presets, about 1.7 s on a 2-core CPU. The counts are a pure function
of the network, operator and counting code and of the torch version, so they are kept in
``<cache dir>/profile-counts-<key>.json``, where ``key`` is a sha256 of exactly those sources and
the torch version. A change to any of them gives a new key and a fresh count; an unreadable or
malformed file is ignored and counted again; a cache folder that cannot be written leaves the
command working and uncached. ``giugan profile --no-cache`` counts every preset anew and neither
reads nor writes the cache.

The cache folder is ``$GIUGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/giugan``, else
``~/.cache/giugan``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import torch

from giugan.atomic_files import write_json_atomically
from giugan.profiling.counting import PairCount

__all__ = ["cache_file", "load_counts", "save_counts", "source_key"]

PACKAGE = Path(__file__).resolve().parents[1]
#: What the counts depend on: the networks, their operators, the counting rules and validation.
SOURCES: tuple[Path, ...] = (
    PACKAGE / "nets",
    PACKAGE / "ops",
    PACKAGE / "profiling" / "counting.py",
    PACKAGE / "validation.py",
)


def source_key(sources: Iterable[Path] = SOURCES, torch_version: str = torch.__version__) -> str:
    """sha256 of every ``.py`` file under ``sources`` (paths and bytes) and the torch version."""
    digest = hashlib.sha256(f"torch {torch_version}\n".encode())
    for source in sources:
        files = sorted(source.rglob("*.py")) if source.is_dir() else [source]
        for path in files:
            digest.update(f"{path.relative_to(source.parent)}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_directory() -> Path:
    """``$GIUGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/giugan``, else ``~/.cache/giugan``."""
    if os.environ.get("GIUGAN_CACHE_DIR"):
        return Path(os.environ["GIUGAN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "giugan"


def cache_file(key: str | None = None) -> Path:
    """Where the counts for ``key`` (default: the installed sources') are kept."""
    return cache_directory() / f"profile-counts-{(key or source_key())[:20]}.json"


def load_counts(path: Path) -> dict[str, PairCount]:
    """The cached counts in ``path``; empty when it is missing, unreadable or malformed."""
    try:
        entries = json.loads(path.read_text())
        return {name: PairCount(**fields) for name, fields in entries.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def save_counts(path: Path, counts: dict[str, PairCount]) -> bool:
    """Write ``counts`` to ``path`` atomically; False (and nothing written) if that fails."""
    entries = {name: dataclasses.asdict(count) for name, count in sorted(counts.items())}
    try:
        write_json_atomically(path, entries, indent=1)
    except OSError:
        return False
    return True
