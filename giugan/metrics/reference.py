"""Real-image statistics: their key, the cache file, and loading/saving/sharding them over ranks.

A reference file holds what the enabled scores need from the real images (FID: feature sum,
feature outer-product sum and count; KID: the real features themselves; ...) together with the
*key* that produced them: everything that changes those numbers (reference split, every extractor
those scores consume with its identity: weights hash, resolution, layer; resize, feature
dimension, number of images, quantisation, library versions). The file name is derived from a hash of the key and the key is stored inside the file;
a file whose stored key differs, that cannot be read, or whose numbers are not finite is never
trusted: :func:`read_reference_file` warns and returns ``None`` so the caller recomputes.
Files are written atomically (temporary file in the same folder, then ``os.replace``); the
temporaries a killed writer left are removed by the next command that reads or writes the cache
(those of dead processes of this host, or older than an hour: the cache is shared between runs).

:class:`ReferenceStatistics` is the cache of one :class:`~giugan.metrics.GenerativeMetrics`: it
builds keys, and loads and saves the real statistics of the enabled scores (every rank calls it;
the ranks agree on hits and writes, and loaded statistics are sharded so that a DDP sum/gather
counts them exactly once).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from giugan.atomic_files import glob_escape, remove_stale_temporaries, temporary_name
from giugan.messages import first_line
from giugan.metrics.distributed import all_ranks_agree, rank_and_world
from giugan.metrics.features import FeatureExtractors
from giugan.metrics.quantize import QUANTISATION
from giugan.metrics.score import Score

#: Bump when the file layout changes; files of another format are recomputed.
REFERENCE_FORMAT = 1


def key_digest(key: dict[str, Any]) -> str:
    """sha256 (hex) of the key's canonical JSON form."""
    return hashlib.sha256(_canonical(key).encode()).hexdigest()


def _canonical(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)


def reference_file_path(cache_dir: str | Path, key: dict[str, Any]) -> Path:
    """Where the statistics for ``key`` live: ``<cache_dir>/<reference_id>-<hash16>.pt``."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", str(key.get("reference_id", "reference")))[:80]
    return Path(cache_dir).expanduser() / f"{readable}-{key_digest(key)[:16]}.pt"


def write_reference_file(path: str | Path, key: dict[str, Any], stats: dict[str, Any]) -> Path:
    """Atomically write ``stats`` (tensors, moved to CPU) with ``key`` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": REFERENCE_FORMAT,
        "key": json.loads(_canonical(key)),
        "stats": {name: value.detach().cpu() for name, value in stats.items()},
    }
    remove_stale_temporaries(path.parent, f".{glob_escape(path.name)}.*.tmp")
    # ``.<name>.<host>-<pid>.<random>.tmp``: the owner is in the name, so a later command can
    # tell a temporary a killed writer left from one a live writer (another run) is filling.
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=temporary_name(path.name).removesuffix("tmp"), suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read_reference_file(
    path: str | Path,
    key: dict[str, Any],
    required: dict[str, tuple[int | None, ...]],
) -> dict[str, Tensor] | None:
    """Read and validate the statistics for ``key``; ``None`` (with a warning) if not trusted.

    Args:
        path: the reference file (a missing file returns ``None`` silently: an ordinary miss).
        key: the key the caller expects; the file's stored key must equal it.
        required: statistic name -> expected shape (``None`` for any size along a dimension);
            every listed tensor must be present, of that shape, and finite.

    Returns:
        The statistics (CPU tensors), or ``None`` when the file is absent, unreadable, written
        for another key or format, or holds wrong shapes / non-finite values.
    """
    path = Path(path)
    if not path.is_file():
        return None

    def distrust(why: str) -> None:
        warnings.warn(
            f"Ignoring the cached real-image statistics '{path}': {why}. They will be "
            "recomputed from the real images and the file overwritten.",
            stacklevel=3,
        )

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is a miss (warned), never trusted
        distrust(
            f"the file cannot be read ({type(err).__name__}: {first_line(err)})"
        )
        return None
    if not isinstance(payload, dict) or payload.get("format") != REFERENCE_FORMAT:
        distrust(f"it is not a giugan reference file of format {REFERENCE_FORMAT}")
        return None
    if payload.get("key") != json.loads(_canonical(key)):
        distrust(
            f"it was written for another key (stored {payload.get('key')!r}, expected "
            f"{json.loads(_canonical(key))!r})"
        )
        return None
    stats = payload.get("stats")
    if not isinstance(stats, dict):
        distrust("it holds no statistics")
        return None
    for name, shape in required.items():
        value = stats.get(name)
        if not isinstance(value, Tensor):
            distrust(f"statistic '{name}' is missing")
            return None
        if value.dim() != len(shape) or any(
            want is not None and have != want for have, want in zip(value.shape, shape)
        ):
            distrust(f"statistic '{name}' has shape {tuple(value.shape)}, expected {shape}")
            return None
        if value.is_floating_point() and not torch.isfinite(value).all():
            distrust(f"statistic '{name}' contains NaN or inf")
            return None
    return stats


def library_versions() -> dict[str, str | None]:
    """Versions of torch, torchmetrics and torch-fidelity (part of keys and protocols)."""
    import torchmetrics

    try:
        import torch_fidelity

        fidelity: str | None = torch_fidelity.__version__
    except ImportError:  # pragma: no cover - torch-fidelity is a pinned dependency
        fidelity = None
    return {
        "torch": torch.__version__,
        "torchmetrics": torchmetrics.__version__,
        "torch_fidelity": fidelity,
    }


class ReferenceStatistics:
    """The real-statistics cache of one metric suite: key, load, save and shard over ranks.

    Args:
        cache_dir: folder of the cache files.
        extractors: the suite's extractors; those of the scores that need real statistics enter
            the key (:meth:`FeatureExtractors.key_entries`).
    """

    def __init__(self, cache_dir: str, extractors: FeatureExtractors) -> None:
        self.cache_dir = cache_dir
        self.extractors = extractors
        # Statistics loaded outside torch.distributed, re-sharded if a process group appears
        # later (see reshard); and the (rank, world) they were applied for.
        self._loaded: dict[str, Tensor] | None = None
        self._layout: tuple[int, int] | None = None

    def key(self, reference_id: str, num_real: int, scores: list[Score]) -> dict[str, Any]:
        """Everything that determines the real statistics, as a JSON-serialisable dict.

        Args:
            reference_id: dataset, split and image size, e.g. ``"cifar10-train-32"`` (given by
                the data module).
            num_real: number of real images the statistics are computed on.
            scores: the scores that need real statistics (their extractors enter the key).
        """
        if not isinstance(reference_id, str) or not reference_id.strip():
            raise ValueError(
                f"reference_key: `reference_id` must be a non-empty string naming the dataset, "
                f"split and image size (e.g. 'cifar10-train-32'); got {reference_id!r}."
            )
        if isinstance(num_real, bool) or not isinstance(num_real, int) or num_real < 2:
            raise ValueError(
                f"reference_key: `num_real` must be an integer >= 2 (FID needs a covariance); "
                f"got {num_real!r}."
            )
        versions = library_versions()
        return {
            "format": REFERENCE_FORMAT,
            "reference_id": reference_id,
            "num_real": num_real,
            **self.extractors.key_entries(score.extractor for score in scores),
            "quantisation": QUANTISATION,
            "torchmetrics": versions["torchmetrics"],
            "torch_fidelity": versions["torch_fidelity"],
        }

    def path(self, key: dict[str, Any]) -> Path:
        """The cache file for ``key`` (it may not exist yet)."""
        return reference_file_path(self.cache_dir, key)

    def check(self, key: dict[str, Any], scores: list[Score]) -> None:
        """Raise ``ValueError`` unless ``key`` is one :meth:`key` makes for ``scores``."""
        num_real = key.get("num_real")
        expected = self.key(str(key.get("reference_id")), num_real, scores)  # type: ignore[arg-type]
        if key != expected:
            raise ValueError(
                "The reference key was not made by this GenerativeMetrics (extractor, weights, "
                f"resize or library versions differ): got {key!r}, expected {expected!r}. Build "
                "keys with `metrics.reference_key(reference_id, num_real)`."
            )

    def load(self, key: dict[str, Any], scores: list[Score]) -> bool:
        """Load the cached statistics of ``scores`` (those needing real images); all ranks call it.

        Returns True on a hit. On a miss (no file, or a file that cannot be read, was written
        for another key, holds NaN/inf or the wrong number of images: warned) the real states are
        emptied and False is returned. The answer is the same on every rank.
        """
        self.check(key, scores)
        path = self.path(key)
        if rank_and_world()[0] == 0:
            remove_stale_temporaries(path.parent, ".*.pt.*.tmp")  # killed writers, any key
        required: dict[str, tuple[int | None, ...]] = {}
        for score in scores:
            required.update(score.reference_shapes())
        stats = read_reference_file(path, key, required)
        if stats is not None:
            counts = [score.reference_count(stats) for score in scores]
            if any(count != key["num_real"] for count in counts):
                warnings.warn(
                    f"Ignoring the cached real-image statistics '{path}': they hold {counts} "
                    f"images, the key says {key['num_real']}. They will be recomputed.",
                    stacklevel=3,
                )
                stats = None
        if not all_ranks_agree(stats is not None):
            self.reset(scores)  # a clean slate for update_real
            return False
        assert stats is not None
        _, world = rank_and_world()
        self._apply(stats, scores)
        self._loaded = stats if world == 1 else None
        return True

    def save(self, key: dict[str, Any], scores: list[Score]) -> Path:
        """Write the rank-synchronised statistics of ``scores``; every rank calls it.

        Only rank 0 writes (atomically); all ranks then agree that the write succeeded, so the
        file exists for everyone when this returns.

        Raises:
            ValueError: the number of real images seen differs from ``key["num_real"]``.
            RuntimeError: rank 0 could not write the file.
        """
        self.check(key, scores)
        stats: dict[str, Tensor] = {}
        counts: dict[str, int] = {}
        for score in scores:
            exported = score.export_reference()
            stats.update(exported)
            counts[score.label] = score.reference_count(exported)
        for which, count in counts.items():
            if count != key["num_real"]:
                raise ValueError(
                    f"save_reference: the {which} real statistics hold {count} images over all "
                    f"ranks but the key says num_real={key['num_real']}. Feed each real image "
                    "exactly once (a DistributedSampler pads by repeating images: use a sampler "
                    "without padding, or state the true count), or call reset_real() and start "
                    "again."
                )
        rank, _ = rank_and_world()
        path = self.path(key)
        error: BaseException | None = None
        if rank == 0:
            try:
                write_reference_file(path, key, stats)
            except Exception as err:  # noqa: BLE001 - re-raised below once every rank knows
                error = err
        if not all_ranks_agree(error is None):
            if error is not None:
                raise error
            raise RuntimeError(
                f"save_reference: rank 0 failed to write '{path}'; see rank 0's error message."
            )
        return path

    def reshard(self, scores: list[Score]) -> None:
        """Re-split statistics loaded before torch.distributed started over the ranks now."""
        if self._loaded is not None and self._layout != rank_and_world():
            self._apply(self._loaded, scores)

    def forget(self) -> None:
        """The states no longer hold exactly the loaded statistics (real images were added)."""
        self._loaded = None
        self._layout = None

    def reset(self, scores: list[Score]) -> None:
        """Empty the real states of ``scores`` and forget what was loaded."""
        for score in scores:
            score.reset_real()
        self.forget()

    def _apply(self, stats: dict[str, Tensor], scores: list[Score]) -> None:
        rank, world = rank_and_world()
        for score in scores:
            score.load_reference(stats, rank, world)
        self._layout = (rank, world)


__all__ = [
    "REFERENCE_FORMAT",
    "ReferenceStatistics",
    "key_digest",
    "library_versions",
    "read_reference_file",
    "reference_file_path",
    "write_reference_file",
]
