"""Every use of a private Lightning, torchmetrics or torch-fidelity name, in one place.

The versions are pinned in ``pyproject.toml``; each seam below has a test in
``tests/test_compat.py`` that fails loudly when an upgrade moves or changes it, so a version bump
is reviewed here and nowhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the library is imported by its users; this module only names its types
    import torch
    from torchmetrics import Metric

# ---------------------------------------------------------------------------------- Lightning

# -------------------------------------------------------------------------------- torchmetrics


def is_synced(metric: Metric) -> bool:
    """Whether ``metric``'s states are currently the gathered (synchronised) ones.

    torchmetrics sets ``Metric._is_synced`` in ``sync()`` and clears it in ``unsync()``;
    ``unsync()`` raises when the states are not synced, so a ``finally`` block must ask first.
    """
    return bool(metric._is_synced)


def forget_computed(metric: Metric) -> None:
    """Drop the result ``metric.compute()`` cached, after its states were replaced by hand.

    torchmetrics caches the value of the wrapped ``compute()`` in ``Metric._computed`` and
    returns it until an ``update``/``reset`` clears it; assigning a state does not.
    """
    metric._computed = None


def compute_from_states(metric: Metric) -> Any:
    """Run the metric class's own ``compute`` on the states as they are now.

    torchmetrics replaces ``metric.compute`` on each instance by a wrapper that synchronises
    the states across processes, warns before any ``update`` and caches the result. The caller
    has synchronised already (see :func:`giugan.metrics.distributed.synchronised`), so this calls
    the unwrapped method of the class instead: no second sync, no cache, no warning.
    """
    return type(metric).compute(metric)


def set_fid_result_dtype(metric: Metric, dtype: torch.dtype) -> None:
    """Make ``FrechetInceptionDistance.compute`` return its float64 result in ``dtype``.

    torchmetrics computes FID in float64 and casts it to ``orig_dtype``, the dtype of the last
    features seen by ``update`` (float32 here); setting it keeps the float64 value.
    """
    metric.orig_dtype = dtype


# ------------------------------------------------------------------------------ torch-fidelity
# No private name is used: the Inception extractor is torch-fidelity's public
# ``torch_fidelity.feature_extractor_inceptionv3.FeatureExtractorInceptionV3`` (features
# "2048" and "logits_unbiased"); tests/test_compat.py pins the parts of it that the protocol
# relies on (feature names, the TF-1.x resize, float32 by default).


__all__ = ["compute_from_states", "forget_computed", "is_synced", "set_fid_result_dtype"]
