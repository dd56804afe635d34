"""FID, Inception Score and KID behind one object, with a pinned and written-down protocol.

:class:`GenerativeMetrics` only coordinates: the scores are the entries of
:data:`giugan.metrics.registry.SCORES`, the real-statistics cache is
:class:`~giugan.metrics.reference.ReferenceStatistics`, everything across processes is in
:mod:`giugan.metrics.distributed`, and the shared extractor (run once per batch for all scores)
in :mod:`giugan.metrics.features`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from giugan.metrics.distributed import SUBSET_SEED, make_states_updatable
from giugan.metrics.extractors import ExtractorName
from giugan.metrics.features import (
    check_on_missing_weights,
    extract_features,
    extractor_protocol,
    shared_extractor,
)
from giugan.metrics.quantize import QUANTISATION
from giugan.metrics.reference import ReferenceStatistics, library_versions
from giugan.metrics.registry import build_scores, scores_protocol
from giugan.metrics.score import Score, ScoreSettings, require_int


class GenerativeMetrics(nn.Module):
    """FID, IS and KID of generated images on one shared feature extractor.

    An ``nn.Module`` the training module owns as a child: it follows its device, and its states
    are synchronised across DDP ranks by :meth:`compute` and :meth:`save_reference` (called on
    **every** rank). The extractor is kept *outside* the module tree: its weights (~95 MB for
    Inception) are never written into checkpoints nor broadcast by DDP, and ``half()``/bf16 never
    touch it (:meth:`_apply` moves it to the device, in float32). :meth:`protocol` writes the
    whole measurement protocol down.

    The Inception extractor found by the default lookup (``weights_path`` None: the environment
    variable, torch's hub cache, or a download) is built only when something is first measured or
    asked about (``available``, ``scores``, ``reference``, ...), so a model holding these metrics
    can be built, loaded from a checkpoint and sampled from on a machine without the weights or a
    network. A ``weights_path`` given explicitly, and the stand-in, are checked at once: a wrong
    file is a config error, reported before anything runs.

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
        precision_recall: compute improved precision/recall and density/coverage (keeps all
            real and fake features in memory; docs/metrics.md).
        precision_recall_k: the k-th nearest neighbour radius of precision/recall (3 in
            Kynkäänniemi et al. 2019).
        density_coverage_k: the k-th nearest neighbour radius of density/coverage (5 in Naeem
            et al. 2020).
        resize: how images reach Inception's 299x299 input: "tensorflow" (bilinear, no
            antialiasing, as the TF FID code; the published protocol) or "clean" (PIL bicubic
            with antialiasing, as clean-fid). The stand-in extractor does not resize.
        fid: compute the Fréchet Inception Distance.
        inception_score: compute the Inception Score.
        kid: compute the Kernel Inception Distance (keeps all real and fake features in memory).
        shapes_judge: compute the shapes judge's scores (built-in shapes data only; its own
            network, whatever ``extractor`` is): ``recognisable``, ``modes_covered``,
            ``mode_balance``, ``judge_frechet`` (see ``giugan.metrics.shapes_metric``).
        kid_subset_size: samples per KID subset; needs at least this many real and fake images.
        kid_subsets: number of KID subsets.
        inception_score_splits: number of IS splits (10 in the literature).
        num_fake: number of generated images the protocol prescribes (recorded in
            :meth:`protocol`; the training module generates them).
        cache_dir: folder of the real-statistics cache.
        on_missing_weights: "error" raises ``InceptionWeightsUnavailable`` on missing weights;
            "warn" warns once and disables the metrics (``available`` False, ``unavailable_reason``
            says why, every method a no-op, :meth:`compute` returns ``{}``).
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
        precision_recall: bool = False,
        precision_recall_k: int = 3,
        density_coverage_k: int = 5,
        resize: Literal["tensorflow", "clean"] = "tensorflow",
        shapes_judge: bool = False,
    ) -> None:
        super().__init__()
        self.settings = ScoreSettings(
            extractor, inception_score_splits, kid_subset_size, kid_subsets,
            precision_recall_k, density_coverage_k,
        )
        require_int("num_fake", num_fake, 1)
        self.extractor_name: ExtractorName = extractor
        self.weights_path = weights_path
        self.enabled = {
            "fid": fid,
            "inception_score": inception_score,
            "kid": kid,
            "precision_recall": precision_recall,
            "shapes_judge": shapes_judge,
        }
        self.use_fid, self.use_inception_score, self.use_kid = fid, inception_score, kid
        self.kid_subset_size = kid_subset_size
        self.kid_subsets = kid_subsets
        self.inception_score_splits = inception_score_splits
        self.num_fake = num_fake
        self.cache_dir = cache_dir
        self.on_missing_weights = on_missing_weights
        self.resize = resize
        #: Sample counts seen by the last :meth:`compute` (synchronised over ranks).
        self.last_counts: dict[str, int] = {}
        self.register_buffer("_device_anchor", torch.zeros(0), persistent=False)
        check_on_missing_weights(on_missing_weights)
        self.weights_sha256 = weights_sha256
        self._built = False
        if not (extractor == "inception" and weights_path is None):
            self._build()

    def _build(self) -> None:
        """Build the extractor, the scores and the reference store (once).

        ``_built`` is set only once everything exists: a build that raises (e.g. the Inception
        weights cannot be had) leaves a suite that Lightning's teardown can still move to the CPU.
        """
        network, self.unavailable_reason = shared_extractor(
            self.extractor_name, self.weights_path, self.weights_sha256, self.on_missing_weights, self.resize
        )
        if network is not None:
            network.to(device=self.device)
        # Kept in a tuple so that nn.Module does not register it as a child (see class doc).
        self._extractor_box: tuple[nn.Module | None] = (network,)
        self.available = network is not None
        self.reference = ReferenceStatistics(self.cache_dir, self.extractor_name, network)
        self.scores = nn.ModuleDict(build_scores(self.settings, self.enabled, network)).to(self.device)
        self._built = True

    def __getattr__(self, name: str) -> Any:
        if name in _BUILT_ON_FIRST_USE and not self.__dict__.get("_built", True):
            self._build()
            return getattr(self, name)
        return super().__getattr__(name)

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

    @property
    def fid_metric(self) -> Metric | None:
        """torchmetrics' ``FrechetInceptionDistance`` holding the FID states (or ``None``)."""
        return self.scores["fid"].metric if "fid" in self.scores else None

    @property
    def is_metric(self) -> Metric | None:
        """torchmetrics' ``InceptionScore`` holding the IS states (or ``None``)."""
        return self.scores["inception_score"].metric if "inception_score" in self.scores else None

    @property
    def kid_metric(self) -> Metric | None:
        """torchmetrics' ``KernelInceptionDistance`` holding the KID states (or ``None``)."""
        return self.scores["kid"].metric if "kid" in self.scores else None

    def _apply(self, fn: Any, recurse: bool = True) -> GenerativeMetrics:
        super()._apply(fn, recurse)
        network = self._extractor_box[0] if self._built else None
        if network is not None:  # follow the device, never the dtype: features stay float32
            network.to(device=self.device)
        return self

    def extra_repr(self) -> str:
        return (
            f"extractor={self.extractor_name!r}, "
            f"available={self.available if self._built else 'not built yet'}, fid={self.use_fid}, "
            f"inception_score={self.use_inception_score}, kid={self.use_kid}"
        )

    def _features(self, images: Tensor) -> dict[str, Tensor]:
        assert self.extractor is not None
        consumed = {score.consumes for score in self.scores.values()}
        outputs = extract_features(self.extractor, images, self.device, consumed)
        outputs["images"] = images.to(self.device)  # for scores running a network of their own
        make_states_updatable(score.metric for score in self.scores.values())
        return outputs

    def reference_key(self, reference_id: str, num_real: int) -> dict[str, Any]:
        """Everything that determines the real statistics (see ``ReferenceStatistics.key``)."""
        return self.reference.key(reference_id, num_real)

    def reference_path(self, key: dict[str, Any]) -> Path:
        """The cache file for ``key`` (it may not exist yet)."""
        return self.reference.path(key)

    def load_reference(self, key: dict[str, Any]) -> bool:
        """Load the cached real statistics for ``key``; every rank calls it.

        True on a hit, or when no real statistics are needed (metrics unavailable, or only IS);
        False (real states emptied) when they must be computed (:meth:`update_real`, then
        :meth:`save_reference`). See ``ReferenceStatistics.load``.
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
        """Write the rank-synchronised real statistics; every rank calls it.

        Returns the file path, or ``None`` when none are needed. ``ValueError`` when the image
        count differs from ``key["num_real"]``. See ``ReferenceStatistics.save``.
        """
        if not self.needs_real:
            return None
        return self.reference.save(key, self._real_scores())

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
        """Scores over all ranks (``fid, is_mean, is_std, kid_mean, kid_std, precision, recall,
        density, coverage`` as enabled; ``{}`` if off).

        Every rank must call it (calling it on rank 0 only hangs); all get the same numbers.
        Raises ``ValueError`` on too few samples, ``RuntimeError`` on NaN/inf statistics.
        """
        if not self.available:
            return {}
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            self.reference.reshard(self._real_scores())  # loaded before DDP started
            results = [score.compute() for score in self.scores.values()]
        self.last_counts = {name: n for _, counts in results for name, n in counts.items()}
        return {name: value for values, _ in results for name, value in values.items()}

    def protocol(self) -> dict[str, Any]:
        """The measurement protocol, to be logged with every result."""
        versions = library_versions()
        protocol = extractor_protocol(self.extractor_name, self.extractor)
        protocol["quantisation"] = QUANTISATION
        protocol.update(scores_protocol(self.settings, self.enabled))
        protocol.update(
            subset_seed=SUBSET_SEED,
            num_fake=self.num_fake,
            available=self.available,
            unavailable_reason=self.unavailable_reason,
        )
        protocol.update({f"{name}_version": version for name, version in versions.items()})
        return protocol


__all__ = ["SUBSET_SEED", "GenerativeMetrics"]


#: Attributes that exist once :meth:`GenerativeMetrics._build` ran; reading one builds.
_BUILT_ON_FIRST_USE = frozenset({"_extractor_box", "available", "unavailable_reason", "reference", "scores"})
