"""FID, Inception Score and KID behind one object, with a pinned and written-down protocol.

:class:`GenerativeMetrics` is the ``nn.Module`` the training module owns as a child: it moves to
the training device with it, and its torchmetrics states are synchronised across DDP ranks when
:meth:`GenerativeMetrics.compute` (called on **every** rank) or
:meth:`GenerativeMetrics.save_reference` runs. It only coordinates: the scores are the entries of
:data:`giugan.metrics.registry.SCORES`, the real-statistics cache is
:class:`~giugan.metrics.reference.ReferenceStatistics`, and everything across processes is in
:mod:`giugan.metrics.distributed`.

The extractor runs once per batch for all scores (see
:class:`~giugan.metrics.score.PrecomputedFeatures` for why). The extractor itself is kept *outside* the module tree (not a registered child): its weights
(~95 MB for Inception) are neither written into every training checkpoint nor broadcast by DDP,
checkpoints stay loadable when the extractor changes, and ``module.half()``/bf16 never touch it —
:meth:`GenerativeMetrics._apply` moves it to the module's device and keeps it in float32.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from giugan.metrics.distributed import SUBSET_SEED, make_states_updatable
from giugan.metrics.extractors import ExtractorName, InceptionWeightsUnavailable, build_extractor
from giugan.metrics.quantize import QUANTISATION
from giugan.metrics.reference import ReferenceStatistics, library_versions
from giugan.metrics.registry import SCORES
from giugan.metrics.score import Score, ScoreSettings


class GenerativeMetrics(nn.Module):
    """FID, IS and KID of generated images on one shared feature extractor.

    Protocol: generator output is quantised by
    :func:`~giugan.metrics.quantize_images`; the TF-compatible InceptionV3 resizes with bilinear
    ``antialias=False`` to 299x299; FID uses the 2048-d pool features, IS the 1008 unbiased
    logits with ``inception_score_splits`` splits (torchmetrics: samples shuffled, unbiased std),
    KID the pool features with a cubic polynomial kernel. :meth:`protocol` writes all of it down.

    Typical use by a training module (every call on every rank)::

        key = metrics.reference_key("cifar10-train-32", num_real=50_000)
        if not metrics.load_reference(key):
            for real in real_loader:
                metrics.update_real(real_uint8)
            metrics.save_reference(key)
        metrics.reset_fake()
        for _ in range(...):
            metrics.update_fake(quantize_images(generator(z)))
        scores = metrics.compute()          # {"fid": ..., "is_mean": ..., "is_std": ...}

    Args:
        extractor: "inception" (the published protocol) or "standin" (tests/quickstart only;
            numbers not comparable with papers).
        weights_path: local Inception weights file; ``None`` uses ``$GIUGAN_INCEPTION_WEIGHTS``,
            the torch hub cache, or a download.
        weights_sha256: optional hex prefix the weights file's sha256 must start with.
        fid: compute the Fréchet Inception Distance.
        inception_score: compute the Inception Score.
        kid: compute the Kernel Inception Distance (keeps all real and fake features in memory).
        kid_subset_size: samples per KID subset; needs at least this many real and fake images.
        kid_subsets: number of KID subsets.
        inception_score_splits: number of IS splits (10 in the literature).
        num_fake: number of generated images the protocol prescribes (recorded in
            :meth:`protocol`; the training module generates them).
        cache_dir: folder of the real-statistics cache.
        on_missing_weights: "error" raises :class:`InceptionWeightsUnavailable` when the weights
            are missing; "warn" warns once and disables the metrics (:attr:`available` is False,
            :attr:`unavailable_reason` says why, every method becomes a no-op, :meth:`compute`
            returns ``{}``).
    """

    def __init__(
        self,
        extractor: Literal["inception", "standin"] = "inception",
        weights_path: str | None = None,
        fid: bool = True,
        inception_score: bool = True,
        kid: bool = False,
        kid_subset_size: int = 1000,
        kid_subsets: int = 100,
        inception_score_splits: int = 10,
        num_fake: int = 50000,
        cache_dir: str = "~/.cache/giugan/reference",
        on_missing_weights: Literal["error", "warn"] = "error",
        weights_sha256: str | None = None,
    ) -> None:
        super().__init__()
        for name, value, minimum in (
            ("kid_subset_size", kid_subset_size, 2),
            ("kid_subsets", kid_subsets, 1),
            ("inception_score_splits", inception_score_splits, 1),
            ("num_fake", num_fake, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"GenerativeMetrics: `{name}` must be an integer >= {minimum}, got {value!r}; "
                    f"set `metrics.init_args.{name}` accordingly."
                )
        if on_missing_weights not in ("error", "warn"):
            raise ValueError(
                f"GenerativeMetrics: `on_missing_weights` must be 'error' or 'warn', got "
                f"{on_missing_weights!r}."
            )
        self.extractor_name: ExtractorName = extractor
        self.weights_path = weights_path
        self.enabled = {
            "fid": bool(fid),
            "inception_score": bool(inception_score),
            "kid": bool(kid),
        }
        self.use_fid, self.use_inception_score, self.use_kid = self.enabled.values()
        self.kid_subset_size = kid_subset_size
        self.kid_subsets = kid_subsets
        self.inception_score_splits = inception_score_splits
        self.num_fake = num_fake
        self.cache_dir = cache_dir
        self.on_missing_weights = on_missing_weights
        self.settings = ScoreSettings(
            extractor, inception_score_splits, kid_subset_size, kid_subsets
        )
        self.available = True
        self.unavailable_reason: str | None = None
        #: Sample counts seen by the last :meth:`compute` (synchronised over ranks).
        self.last_counts: dict[str, int] = {}
        self.register_buffer("_device_anchor", torch.zeros(0), persistent=False)
        # Kept in a tuple so that nn.Module does not register it as a child (see module doc).
        self._extractor_box: tuple[nn.Module | None] = (None,)
        self.scores = nn.ModuleDict()
        try:
            network = build_extractor(extractor, weights_path, weights_sha256)
        except InceptionWeightsUnavailable as err:
            if on_missing_weights == "error":
                raise
            self.available = False
            self.unavailable_reason = str(err)
            warnings.warn(
                "FID/IS/KID are disabled (on_missing_weights='warn'). " + str(err),
                stacklevel=2,
            )
            network = None
        self.reference = ReferenceStatistics(cache_dir, extractor, network)
        if network is None:
            return
        network.eval()
        network.requires_grad_(False)
        self._extractor_box = (network,)
        width = {"features": network.num_features, "logits": network.num_classes}
        with warnings.catch_warnings():  # torchmetrics' "features kept in memory" notices
            warnings.simplefilter("ignore", UserWarning)
            for name, score_class in SCORES.items():
                if self.enabled[name]:
                    self.scores[name] = score_class(self.settings, width[score_class.consumes])

    # ------------------------------------------------------------------ module plumbing
    @property
    def extractor(self) -> nn.Module | None:
        """The shared feature extractor (``None`` when the metrics are unavailable)."""
        return self._extractor_box[0]

    @property
    def device(self) -> torch.device:
        """Device of the metric states and the extractor."""
        return self._device_anchor.device

    @property
    def needs_real(self) -> bool:
        """Whether real-image statistics are needed (FID or KID enabled and available)."""
        return bool(self._real_scores())

    def _real_scores(self) -> list[Score]:
        return [score for score in self.scores.values() if score.needs_real]

    def _metric(self, name: str) -> Metric | None:
        return self.scores[name].metric if name in self.scores else None

    @property
    def fid_metric(self) -> Metric | None:
        """torchmetrics' ``FrechetInceptionDistance`` holding the FID states (or ``None``)."""
        return self._metric("fid")

    @property
    def is_metric(self) -> Metric | None:
        """torchmetrics' ``InceptionScore`` holding the IS states (or ``None``)."""
        return self._metric("inception_score")

    @property
    def kid_metric(self) -> Metric | None:
        """torchmetrics' ``KernelInceptionDistance`` holding the KID states (or ``None``)."""
        return self._metric("kid")

    def _apply(self, fn: Any, recurse: bool = True) -> GenerativeMetrics:
        super()._apply(fn, recurse)
        network = self.extractor
        if network is not None:  # follow the device, never the dtype: features stay float32
            network.to(device=self.device)
        return self

    def extra_repr(self) -> str:
        return (
            f"extractor={self.extractor_name!r}, available={self.available}, fid={self.use_fid}, "
            f"inception_score={self.use_inception_score}, kid={self.use_kid}"
        )

    # ------------------------------------------------------------------ features
    def _features(self, images: Tensor) -> dict[str, Tensor]:
        if not isinstance(images, Tensor) or images.dtype != torch.uint8:
            raise TypeError(
                "GenerativeMetrics takes uint8 images in [0, 255]; got "
                + (f"dtype {images.dtype}" if isinstance(images, Tensor) else type(images).__name__)
                + ". Quantise generator output (floats in [-1, 1]) with "
                "giugan.metrics.quantize_images first; never pass floats in [0, 1]."
            )
        if images.dim() != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
            raise ValueError(
                "GenerativeMetrics takes a non-empty batch of images of shape (B, 3, H, W) or "
                f"(B, 1, H, W); got {tuple(images.shape)}."
            )
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        network = self.extractor
        assert network is not None
        # No autograd, and no autocast: a mixed-precision trainer must not run the extractor in
        # fp16/bf16 (the protocol is float32 features).
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            features, logits = network(images.to(self.device))
        features, logits = features.float(), logits.float()
        consumed = {score.consumes for score in self.scores.values()}
        for what, value, used in (
            ("pool features", features, "features" in consumed),
            ("logits", logits, "logits" in consumed),
        ):
            if used and not torch.isfinite(value).all():
                raise RuntimeError(
                    f"The {self.extractor_name} extractor returned NaN/inf {what} for "
                    f"{int((~torch.isfinite(value)).any(dim=1).sum())} of {value.shape[0]} images. "
                    "FID/IS/KID would be NaN; check the extractor weights (a corrupt file?) and "
                    "the images passed in."
                )
        make_states_updatable(score.metric for score in self.scores.values())
        return {"features": features, "logits": logits}

    # ------------------------------------------------------------------ real statistics
    def reference_key(self, reference_id: str, num_real: int) -> dict[str, Any]:
        """Everything that determines the real statistics (see ``ReferenceStatistics.key``)."""
        return self.reference.key(reference_id, num_real)

    def reference_path(self, key: dict[str, Any]) -> Path:
        """The cache file for ``key`` (it may not exist yet)."""
        return self.reference.path(key)

    def load_reference(self, key: dict[str, Any]) -> bool:
        """Load cached real statistics for ``key`` into the metric states; every rank calls it.

        Returns True on a cache hit (or when no real statistics are needed: metrics unavailable,
        or only IS enabled); False when they must be computed (:meth:`update_real` then
        :meth:`save_reference`), in which case the real states have been emptied. A file that
        cannot be read, was written for another key, holds NaN/inf or the wrong number of images
        is ignored with a warning. Under torch.distributed the answer is the same on every rank
        (a miss anywhere is a miss everywhere), and the real statistics are split across ranks so
        that synchronisation counts them exactly once.
        """
        if not self.needs_real:
            return True
        return self.reference.load(key, self._real_scores())

    def reset_real(self) -> None:
        """Forget the real statistics (before recomputing them)."""
        self.reference.reset(self._real_scores())

    def update_real(self, images_uint8: Tensor) -> None:
        """Add real images (uint8 ``(B, 3, H, W)``) to the real statistics of FID/KID."""
        if not self.needs_real:
            return
        outputs = self._features(images_uint8)
        self.reference.forget()  # the states are no longer exactly the loaded reference
        for score in self._real_scores():
            score.update(outputs[score.consumes], real=True)

    def save_reference(self, key: dict[str, Any]) -> Path | None:
        """Write the (rank-synchronised) real statistics to the cache; every rank calls it.

        Only rank 0 writes (atomically); all ranks then agree that the write succeeded, so the
        file exists for everyone when this returns. Returns the file path, or ``None`` when no
        real statistics are needed (see :meth:`load_reference`).

        Raises:
            ValueError: the number of real images seen differs from ``key["num_real"]`` (e.g. a
                ``DistributedSampler`` that pads by repeating images).
            RuntimeError: rank 0 could not write the file.
        """
        if not self.needs_real:
            return None
        return self.reference.save(key, self._real_scores())

    # ------------------------------------------------------------------ generated images
    def update_fake(self, images_uint8: Tensor) -> None:
        """Add generated images (uint8 ``(B, 3, H, W)``, see ``quantize_images``)."""
        if not self.scores:
            return
        outputs = self._features(images_uint8)
        for score in self.scores.values():
            score.update(outputs[score.consumes], real=False)

    def reset_fake(self) -> None:
        """Forget the generated images (the real statistics are kept)."""
        for score in self.scores.values():
            score.reset_fake()

    def compute(self) -> dict[str, float]:
        """Scores over all ranks: keys among ``fid, is_mean, is_std, kid_mean, kid_std``.

        Every rank must call it (the states are synchronised inside; calling it on rank 0 only
        hangs). All ranks get the same numbers. Returns ``{}`` when the metrics are unavailable.

        Raises:
            ValueError: too few samples (FID: < 2 real or fake; KID: fewer than
                ``kid_subset_size``; IS: fewer than ``inception_score_splits``).
            RuntimeError: the statistics or the result are NaN/inf.
        """
        if not self.available:
            return {}
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            self.reference.reshard(self._real_scores())  # loaded before DDP started
            values: dict[str, float] = {}
            counts: dict[str, int] = {}
            for score in self.scores.values():
                score_values, score_counts = score.compute()
                values.update(score_values)
                counts.update(score_counts)
        for name, value in values.items():
            if not math.isfinite(value):
                raise RuntimeError(
                    f"Metric '{name}' evaluated to {value}; the features are invalid."
                )
        self.last_counts = counts
        return values

    # ------------------------------------------------------------------ protocol
    def protocol(self) -> dict[str, Any]:
        """The measurement protocol, to be logged with every result."""
        network = self.extractor
        versions = library_versions()
        protocol: dict[str, Any] = {
            "extractor": self.extractor_name,
            "extractor_identity": getattr(network, "identity", None),
            "comparable_with_papers": self.extractor_name == "inception",
            "weights_file": getattr(network, "weights_path", None),
            "weights_sha256": getattr(network, "weights_sha256", None),
            "resize": getattr(network, "resize", None),
            "quantisation": QUANTISATION,
            "feature_dim": getattr(network, "num_features", None),
            "num_classes": getattr(network, "num_classes", None),
        }
        for name, score_class in SCORES.items():
            protocol.update(score_class.protocol(self.settings, self.enabled[name]))
        protocol.update(
            subset_seed=SUBSET_SEED,
            num_fake=self.num_fake,
            available=self.available,
            unavailable_reason=self.unavailable_reason,
            torch_version=versions["torch"],
            torchmetrics_version=versions["torchmetrics"],
            torch_fidelity_version=versions["torch_fidelity"],
        )
        return protocol


__all__ = ["SUBSET_SEED", "GenerativeMetrics"]
