"""Real-image statistics on disk, and the Fréchet distance as a pure function.

A reference file holds what FID and KID need from the real images (FID: feature sum,
feature outer-product sum and count; KID: the real features themselves) together with the
*key* that produced them: everything that changes those numbers (reference split, extractor
and its weights hash, resize, feature dimension, number of images, quantisation, library
versions). The file name is derived from a hash of the key and the key is stored inside the file;
a file whose stored key differs, that cannot be read, or whose numbers are not finite is never
trusted: :func:`read_reference_file` warns and returns ``None`` so the caller recomputes.
Files are written atomically (temporary file in the same folder, then ``os.replace``).
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

import numpy as np
import torch
from torch import Tensor

#: Bump when the file layout changes; files of another format are recomputed.
REFERENCE_FORMAT = 1

ArrayLike = np.ndarray | Tensor | list | tuple


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    r"""Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2), in float64.

    :math:`d^2 = \lVert\mu_1-\mu_2\rVert^2 + \operatorname{tr}(\Sigma_1 + \Sigma_2
    - 2(\Sigma_1\Sigma_2)^{1/2})` (Heusel et al. 2017, the FID). The trace of the matrix square
    root is computed by the symmetric eigen method: :math:`\operatorname{tr}(\Sigma_1\Sigma_2)^{1/2}
    = \sum_i \sqrt{\lambda_i(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})}`, with eigenvalues clipped
    at zero, which stays real and stable for the singular covariances of few samples.

    Args:
        mu1, mu2: means, shape ``(d,)``.
        sigma1, sigma2: covariances, shape ``(d, d)``, symmetric positive semi-definite.

    Returns:
        The squared Fréchet distance as a Python float.

    Raises:
        ValueError: shapes disagree or an input contains NaN/inf.
    """
    arrays = []
    for name, value in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if isinstance(value, Tensor):
            value = value.detach().cpu().double().numpy()
        array = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"frechet_distance: {name} contains NaN or inf values.")
        arrays.append(array)
    m1, s1, m2, s2 = arrays
    d = m1.shape[0] if m1.ndim == 1 else -1
    if m1.shape != (d,) or m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            "frechet_distance expects mu1, mu2 of shape (d,) and sigma1, sigma2 of shape (d, d); "
            f"got {m1.shape}, {m2.shape}, {s1.shape}, {s2.shape}."
        )
    s1 = (s1 + s1.T) / 2
    s2 = (s2 + s2.T) / 2
    eigenvalues, eigenvectors = np.linalg.eigh(s1)
    s1_root = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T
    inner = s1_root @ s2 @ s1_root
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0.0, None)).sum()
    diff = m1 - m2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt)


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
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
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
            f"the file cannot be read ({type(err).__name__}: {str(err).splitlines()[0][:200]})"
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


__all__ = [
    "REFERENCE_FORMAT",
    "frechet_distance",
    "key_digest",
    "read_reference_file",
    "reference_file_path",
    "write_reference_file",
]
