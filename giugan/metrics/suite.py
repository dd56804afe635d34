"""FID, Inception Score and KID behind one object, with a pinned and written-down protocol.

:class:`GenerativeMetrics` is the ``nn.Module`` the training module owns as a child: it moves to
the training device with it, and its torchmetrics states are synchronised across DDP ranks when
:meth:`GenerativeMetrics.compute` (called on **every** rank) or
:meth:`GenerativeMetrics.save_reference` runs.

Sharing one extractor between FID, IS and KID. The extractor (TF-compatible Inception or the
stand-in) is run **once per batch** by this class, which returns the pool features and the logits
together; the three torchmetrics objects are built with an identity module as their ``feature``
network (``FrechetInceptionDistance(feature=_PrecomputedFeatures(d))`` etc.) and are updated with
those features. Why this and not the alternatives:

* torchmetrics' ``FeatureShare`` shares a network only when every metric asks for the *same*
  output, but FID/KID need the 2048-d pool features and IS the 1008-d logits; its
  ``lru_cache`` is keyed by tensor identity and keeps every input batch alive.
* A caching wrapper ("run the backbone once, return the requested head") relies on the three
  metrics being updated with the very same tensor object in a fixed order; an identity module
  relies on nothing but the documented ``feature: nn.Module`` argument.
* Features in hand also let us check them for NaN/inf once, with a useful error.

The extractor itself is kept *outside* the module tree (not a registered child): its weights
(~95 MB for Inception) are neither written into every training checkpoint nor broadcast by DDP,
checkpoints stay loadable when the extractor changes, and ``module.half()``/bf16 never touch it —
:meth:`GenerativeMetrics._apply` moves it to the module's device and keeps it in float32.

Random parts of the metrics (IS shuffles before splitting, KID draws subsets) run under a forked
CPU generator seeded with :data:`SUBSET_SEED`, so results are reproducible, identical on every
rank, and the training RNG is left untouched.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities.data import dim_zero_cat

from giugan.metrics.extractors import (
    ExtractorName,
    InceptionWeightsUnavailable,
    build_extractor,
)
from giugan.metrics.quantize import QUANTISATION, quantize_images
from giugan.metrics.reference import (
    REFERENCE_FORMAT,
    read_reference_file,
    reference_file_path,
    write_reference_file,
)

#: Seed of the CPU generator used for IS shuffling and KID subset sampling.
SUBSET_SEED = 0


def _library_versions() -> dict[str, str | None]:
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


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_ranks_agree(flag: bool) -> bool:
    """``flag`` on one process; the AND of every rank's ``flag`` under torch.distributed."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    backend = str(dist.get_backend())
    device = torch.device("cpu")
    if "nccl" in backend and "gloo" not in backend:
        device = torch.device("cuda", torch.cuda.current_device())
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


class _PrecomputedFeatures(nn.Module):
    """Identity ``feature`` network: the torchmetrics objects receive features, not images."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


@contextlib.contextmanager
def _synchronised(metric: Metric, width: int) -> Iterator[Metric]:
    """Sync ``metric``'s states across ranks for the block; restore local states afterwards.

    List states (KID/IS features) are first concatenated into one ``(n, width)`` tensor per rank
    (an empty one where a rank has none): torchmetrics gathers list states with
    ``dist_reduce_fx=None`` element by element, which would hang when ranks hold different
    numbers of batches. Unlike ``Metric.sync_context`` this also unsyncs when the block raises.
    """
    for name, default in metric._defaults.items():
        if isinstance(default, list):
            parts = getattr(metric, name)
            if parts:
                merged = torch.cat([p.reshape(-1, width) for p in parts], dim=0)
            else:
                merged = torch.empty(0, width, device=metric.device)
            setattr(metric, name, [merged])
    metric.sync(should_sync=True)
    try:
        yield metric
    finally:
        if metric._is_synced:
            metric.unsync()


def _rows(parts: list[Tensor]) -> int:
    return sum(int(p.shape[0]) for p in parts)


class GenerativeMetrics(nn.Module):
    """FID, IS and KID of generated images on one shared feature extractor.

    Protocol (DESIGN.md "Metrics"): generator output is quantised by
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
        self.use_fid = bool(fid)
        self.use_inception_score = bool(inception_score)
        self.use_kid = bool(kid)
        self.kid_subset_size = kid_subset_size
        self.kid_subsets = kid_subsets
        self.inception_score_splits = inception_score_splits
        self.num_fake = num_fake
        self.cache_dir = cache_dir
        self.on_missing_weights = on_missing_weights
        self.available = True
        self.unavailable_reason: str | None = None
        #: Sample counts seen by the last :meth:`compute` (synchronised over ranks).
        self.last_counts: dict[str, int] = {}
        self.register_buffer("_device_anchor", torch.zeros(0), persistent=False)
        # Kept in a tuple so that nn.Module does not register it as a child (see module doc).
        self._extractor_box: tuple[nn.Module | None] = (None,)
        # Reference statistics loaded outside torch.distributed, re-sharded if a process group
        # appears later (see _apply_reference); and the (rank, world) they were applied for.
        self._reference_stats: dict[str, Tensor] | None = None
        self._reference_layout: tuple[int, int] | None = None

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

        self.fid_metric: FrechetInceptionDistance | None = None
        self.is_metric: InceptionScore | None = None
        self.kid_metric: KernelInceptionDistance | None = None
        if network is None:
            return
        network.eval()
        network.requires_grad_(False)
        self._extractor_box = (network,)
        num_features, num_classes = network.num_features, network.num_classes
        with warnings.catch_warnings():  # torchmetrics' "features kept in memory" notices
            warnings.simplefilter("ignore", UserWarning)
            if self.use_fid:
                self.fid_metric = FrechetInceptionDistance(
                    feature=_PrecomputedFeatures(num_features),
                    reset_real_features=False,
                    normalize=False,
                )
            if self.use_inception_score:
                self.is_metric = InceptionScore(
                    feature=_PrecomputedFeatures(num_classes),
                    splits=inception_score_splits,
                    normalize=False,
                )
            if self.use_kid:
                self.kid_metric = KernelInceptionDistance(
                    feature=_PrecomputedFeatures(num_features),
                    subsets=kid_subsets,
                    subset_size=kid_subset_size,
                    reset_real_features=False,
                    normalize=False,
                )

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
        return self.available and (self.use_fid or self.use_kid)

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
    def _features(self, images: Tensor) -> tuple[Tensor, Tensor]:
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
        for what, value, used in (
            ("pool features", features, self.use_fid or self.use_kid),
            ("logits", logits, self.use_inception_score),
        ):
            if used and not torch.isfinite(value).all():
                raise RuntimeError(
                    f"The {self.extractor_name} extractor returned NaN/inf {what} for "
                    f"{int((~torch.isfinite(value)).any(dim=1).sum())} of {value.shape[0]} images. "
                    "FID/IS/KID would be NaN; check the extractor weights (a corrupt file?) and "
                    "the images passed in."
                )
        return features, logits

    def _metrics(self) -> list[Metric]:
        return [m for m in (self.fid_metric, self.is_metric, self.kid_metric) if m is not None]

    def _make_states_updatable(self) -> None:
        """Clone states created under ``torch.inference_mode`` before updating them outside it.

        Lightning evaluates under inference mode; a state reset or loaded there is an inference
        tensor, and updating it in place later outside inference mode would raise.
        """
        if torch.is_inference_mode_enabled():
            return
        for metric in self._metrics():
            for name in metric._defaults:
                value = getattr(metric, name)
                if isinstance(value, Tensor) and value.is_inference():
                    setattr(metric, name, value.clone())

    # ------------------------------------------------------------------ real statistics
    def reference_key(self, reference_id: str, num_real: int) -> dict[str, Any]:
        """Everything that determines the real statistics, as a JSON-serialisable dict.

        Args:
            reference_id: dataset, split and image size, e.g. ``"cifar10-train-32"`` (given by
                the data module).
            num_real: number of real images the statistics are computed on.
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
        network = self.extractor
        versions = _library_versions()
        return {
            "format": REFERENCE_FORMAT,
            "reference_id": reference_id,
            "num_real": num_real,
            "extractor": self.extractor_name,
            "extractor_identity": getattr(network, "identity", "unavailable"),
            "weights_sha256": getattr(network, "weights_sha256", None),
            "resize": getattr(network, "resize", "unavailable"),
            "feature_dim": getattr(network, "num_features", None),
            "quantisation": QUANTISATION,
            "torchmetrics": versions["torchmetrics"],
            "torch_fidelity": versions["torch_fidelity"],
        }

    def reference_path(self, key: dict[str, Any]) -> Path:
        """The cache file for ``key`` (it may not exist yet)."""
        return reference_file_path(self.cache_dir, key)

    def _check_key(self, key: dict[str, Any]) -> None:
        expected = self.reference_key(str(key.get("reference_id")), key.get("num_real"))  # type: ignore[arg-type]
        if key != expected:
            raise ValueError(
                "The reference key was not made by this GenerativeMetrics (extractor, weights, "
                f"resize or library versions differ): got {key!r}, expected {expected!r}. Build "
                "keys with `metrics.reference_key(reference_id, num_real)`."
            )

    def _required_stats(self) -> dict[str, tuple[int | None, ...]]:
        assert self.extractor is not None
        width = self.extractor.num_features
        required: dict[str, tuple[int | None, ...]] = {}
        if self.use_fid:
            required["fid_features_sum"] = (width,)
            required["fid_features_cov_sum"] = (width, width)
            required["fid_num_samples"] = ()
        if self.use_kid:
            required["kid_real_features"] = (None, width)
        return required

    def load_reference(self, key: dict[str, Any]) -> bool:
        """Load cached real statistics for ``key`` into the metric states; every rank calls it.

        Returns True on a cache hit (or when no real statistics are needed: metrics unavailable,
        or only IS enabled); False when they must be computed (:meth:`update_real` then
        :meth:`save_reference`), in which case the real states have been emptied. A file that cannot be read, was written for another key, holds
        NaN/inf or the wrong number of images is ignored with a warning. Under torch.distributed
        the answer is the same on every rank (a miss anywhere is a miss everywhere), and the real
        statistics are split across ranks so that synchronisation counts them exactly once.
        """
        if not self.needs_real:
            return True
        self._check_key(key)
        path = self.reference_path(key)
        stats = read_reference_file(path, key, self._required_stats())
        if stats is not None:
            counts = []
            if self.use_fid:
                counts.append(int(stats["fid_num_samples"]))
            if self.use_kid:
                counts.append(int(stats["kid_real_features"].shape[0]))
            if any(count != key["num_real"] for count in counts):
                warnings.warn(
                    f"Ignoring the cached real-image statistics '{path}': they hold {counts} "
                    f"images, the key says {key['num_real']}. They will be recomputed.",
                    stacklevel=2,
                )
                stats = None
        if not _all_ranks_agree(stats is not None):
            self.reset_real()  # a clean slate for update_real
            return False
        assert stats is not None
        _, world = _rank_and_world()
        self._apply_reference(stats)
        self._reference_stats = stats if world == 1 else None
        return True

    def _apply_reference(self, stats: dict[str, Tensor]) -> None:
        """Put real statistics into the states, shared so that a DDP sum/gather restores them."""
        rank, world = _rank_and_world()
        device = self.device
        if self.fid_metric is not None:
            metric = self.fid_metric
            keep = rank == 0  # sum-reduced states: rank 0 holds them, the others zeros
            total = stats["fid_features_sum"].to(device, torch.float64)
            cov = stats["fid_features_cov_sum"].to(device, torch.float64)
            count = stats["fid_num_samples"].to(device, torch.long)
            metric.real_features_sum = total if keep else torch.zeros_like(total)
            metric.real_features_cov_sum = cov if keep else torch.zeros_like(cov)
            metric.real_features_num_samples = count if keep else torch.zeros_like(count)
            metric._computed = None
        if self.kid_metric is not None:
            features = stats["kid_real_features"]
            n = features.shape[0]  # contiguous shards: the gather restores the original order
            shard = features[rank * n // world : (rank + 1) * n // world]
            self.kid_metric.real_features = [shard.to(device, torch.float32)]
            self.kid_metric._computed = None
        self._reference_layout = (rank, world)

    def reset_real(self) -> None:
        """Forget the real statistics (before recomputing them)."""
        if self.fid_metric is not None:
            metric = self.fid_metric
            metric.real_features_sum = torch.zeros_like(metric.real_features_sum)
            metric.real_features_cov_sum = torch.zeros_like(metric.real_features_cov_sum)
            metric.real_features_num_samples = torch.zeros_like(metric.real_features_num_samples)
            metric._computed = None
        if self.kid_metric is not None:
            self.kid_metric.real_features = []
            self.kid_metric._computed = None
        self._reference_stats = None
        self._reference_layout = None

    def update_real(self, images_uint8: Tensor) -> None:
        """Add real images (uint8 ``(B, 3, H, W)``) to the real statistics of FID/KID."""
        if not self.needs_real:
            return
        features, _ = self._features(images_uint8)
        self._make_states_updatable()
        self._reference_stats = None  # the states are no longer exactly the loaded reference
        self._reference_layout = None
        if self.fid_metric is not None:
            self.fid_metric.update(features, real=True)
        if self.kid_metric is not None:
            self.kid_metric.update(features, real=True)

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
        self._check_key(key)
        assert self.extractor is not None
        stats: dict[str, Tensor] = {}
        counts: dict[str, int] = {}
        if self.fid_metric is not None:
            with _synchronised(self.fid_metric, self.extractor.num_features) as metric:
                stats["fid_features_sum"] = metric.real_features_sum.detach().cpu().clone()
                stats["fid_features_cov_sum"] = metric.real_features_cov_sum.detach().cpu().clone()
                stats["fid_num_samples"] = metric.real_features_num_samples.detach().cpu().clone()
            counts["FID"] = int(stats["fid_num_samples"])
        if self.kid_metric is not None:
            with _synchronised(self.kid_metric, self.extractor.num_features) as metric:
                stats["kid_real_features"] = (
                    dim_zero_cat(metric.real_features).detach().cpu().clone()
                )
            counts["KID"] = int(stats["kid_real_features"].shape[0])
        for which, count in counts.items():
            if count != key["num_real"]:
                raise ValueError(
                    f"save_reference: the {which} real statistics hold {count} images over all "
                    f"ranks but the key says num_real={key['num_real']}. Feed each real image "
                    "exactly once (a DistributedSampler pads by repeating images: use a sampler "
                    "without padding, or state the true count), or call reset_real() and start "
                    "again."
                )
        rank, _ = _rank_and_world()
        path = self.reference_path(key)
        error: BaseException | None = None
        if rank == 0:
            try:
                write_reference_file(path, key, stats)
            except Exception as err:  # noqa: BLE001 - re-raised below once every rank knows
                error = err
        if not _all_ranks_agree(error is None):
            if error is not None:
                raise error
            raise RuntimeError(
                f"save_reference: rank 0 failed to write '{path}'; see rank 0's error message."
            )
        return path

    # ------------------------------------------------------------------ generated images
    def update_fake(self, images_uint8: Tensor) -> None:
        """Add generated images (uint8 ``(B, 3, H, W)``, see ``quantize_images``)."""
        if not self.available or not (self.use_fid or self.use_kid or self.use_inception_score):
            return
        features, logits = self._features(images_uint8)
        self._make_states_updatable()
        if self.fid_metric is not None:
            self.fid_metric.update(features, real=False)
        if self.kid_metric is not None:
            self.kid_metric.update(features, real=False)
        if self.is_metric is not None:
            self.is_metric.update(logits)

    def reset_fake(self) -> None:
        """Forget the generated images (the real statistics are kept)."""
        for metric in self._metrics():
            metric.reset()

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
            return self._compute()

    def _compute(self) -> dict[str, float]:
        assert self.extractor is not None
        if self._reference_stats is not None and self._reference_layout != _rank_and_world():
            self._apply_reference(self._reference_stats)  # loaded before DDP started: re-shard
        width, classes = self.extractor.num_features, self.extractor.num_classes
        scores: dict[str, float] = {}
        counts: dict[str, int] = {}
        if self.fid_metric is not None:
            with _synchronised(self.fid_metric, width) as metric:
                n_real = int(metric.real_features_num_samples)
                n_fake = int(metric.fake_features_num_samples)
                counts.update(real=n_real, fake=n_fake)
                if n_real < 2 or n_fake < 2:
                    raise ValueError(
                        f"FID needs at least 2 real and 2 generated images (a covariance), but "
                        f"has {n_real} real and {n_fake} generated over all ranks. "
                        + self._fewer_samples_hint(n_real, n_fake)
                    )
                for name in ("real_features_sum", "real_features_cov_sum",
                             "fake_features_sum", "fake_features_cov_sum"):  # fmt: skip
                    if not torch.isfinite(getattr(metric, name)).all():
                        raise RuntimeError(
                            f"FID statistic '{name}' contains NaN/inf; the features were not "
                            "finite. Recompute the real statistics (reset_real) and check the "
                            "extractor and the images."
                        )
                metric.orig_dtype = torch.float64  # return the float64 result
                value = float(FrechetInceptionDistance.compute(metric))  # synced already
            if not math.isfinite(value):
                raise RuntimeError(f"FID evaluated to {value} from finite statistics.")
            scores["fid"] = value
        if self.is_metric is not None:
            with _synchronised(self.is_metric, classes) as metric:
                n_fake = _rows(metric.features)
                counts["fake"] = n_fake
                if n_fake < self.inception_score_splits:
                    raise ValueError(
                        f"The Inception Score needs at least inception_score_splits="
                        f"{self.inception_score_splits} generated images, but has {n_fake} over "
                        "all ranks. Generate more images (`num_fake`) or lower "
                        "`metrics.init_args.inception_score_splits`."
                    )
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(SUBSET_SEED)
                    mean, std = InceptionScore.compute(metric)
            scores["is_mean"] = float(mean)
            scores["is_std"] = float(std) if self.inception_score_splits > 1 else 0.0
        if self.kid_metric is not None:
            with _synchronised(self.kid_metric, width) as metric:
                n_real, n_fake = _rows(metric.real_features), _rows(metric.fake_features)
                counts.update(real=n_real, fake=n_fake)
                if n_real < self.kid_subset_size or n_fake < self.kid_subset_size:
                    raise ValueError(
                        f"KID draws subsets of kid_subset_size={self.kid_subset_size} images but "
                        f"has {n_real} real and {n_fake} generated over all ranks. Lower "
                        "`metrics.init_args.kid_subset_size` (at most the smaller count) or use "
                        "more images."
                    )
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(SUBSET_SEED)
                    mean, std = KernelInceptionDistance.compute(metric)
            scores["kid_mean"] = float(mean)
            scores["kid_std"] = float(std)
        for name, value in scores.items():
            if not math.isfinite(value):
                raise RuntimeError(
                    f"Metric '{name}' evaluated to {value}; the features are invalid."
                )
        self.last_counts = counts
        return scores

    @staticmethod
    def _fewer_samples_hint(n_real: int, n_fake: int) -> str:
        if n_real < 2:
            return (
                "Load or compute the real statistics first (load_reference, or update_real then "
                "save_reference)."
            )
        return "Call update_fake with more generated images (`num_fake`) before compute()."

    # ------------------------------------------------------------------ protocol
    def protocol(self) -> dict[str, Any]:
        """The measurement protocol, to be logged with every result."""
        network = self.extractor
        versions = _library_versions()
        return {
            "extractor": self.extractor_name,
            "extractor_identity": getattr(network, "identity", None),
            "comparable_with_papers": self.extractor_name == "inception",
            "weights_file": getattr(network, "weights_path", None),
            "weights_sha256": getattr(network, "weights_sha256", None),
            "resize": getattr(network, "resize", None),
            "quantisation": QUANTISATION,
            "feature_dim": getattr(network, "num_features", None),
            "num_classes": getattr(network, "num_classes", None),
            "fid": self.use_fid,
            "inception_score": self.use_inception_score,
            "kid": self.use_kid,
            "inception_score_splits": self.inception_score_splits,
            "inception_score_logits": "logits_unbiased"
            if self.extractor_name == "inception"
            else "logits",
            "inception_score_std": "torchmetrics: std over splits with ddof=1, samples shuffled",
            "kid_subset_size": self.kid_subset_size,
            "kid_subsets": self.kid_subsets,
            "kid_kernel": "polynomial, degree 3, gamma 1/feature_dim, coef 1",
            "subset_seed": SUBSET_SEED,
            "num_fake": self.num_fake,
            "available": self.available,
            "unavailable_reason": self.unavailable_reason,
            "torch_version": versions["torch"],
            "torchmetrics_version": versions["torchmetrics"],
            "torch_fidelity_version": versions["torch_fidelity"],
        }


def _to_uint8(batch: Any) -> Tensor:
    if isinstance(batch, (list, tuple)):  # (images, labels) from a DataLoader
        batch = batch[0]
    if not isinstance(batch, Tensor):
        raise TypeError(
            f"Expected image tensors (or (images, labels) pairs), got {type(batch).__name__}."
        )
    if batch.dtype == torch.uint8:
        return batch
    if not batch.is_floating_point():
        raise TypeError(f"Images must be uint8 or floating point in [-1, 1], got {batch.dtype}.")
    low, high = float(batch.min()), float(batch.max())
    if low < -1.001 or high > 1.001:
        raise ValueError(
            f"Real images must be floats in [-1, 1] (or uint8), got values in [{low:.3f}, "
            f"{high:.3f}]. Check the data module's normalisation."
        )
    return quantize_images(batch)


def compute_reference_statistics(
    metrics: GenerativeMetrics,
    images: Iterable[Tensor | tuple | list],
    reference_id: str,
    num_real: int,
) -> Path:
    """Compute and cache the real statistics for ``reference_id`` (the ``giugan stats`` command).

    Uses the first ``num_real`` images of ``images`` (batches of uint8 or float in [-1, 1]
    images, or ``(images, labels)`` pairs); on a cache hit nothing is computed. Meant for one
    process; under DDP use :meth:`GenerativeMetrics.update_real`/``save_reference`` directly.

    Returns:
        The cache file path (not written when neither FID nor KID is enabled: IS needs no real
        statistics).

    Raises:
        RuntimeError: the metrics are unavailable (missing weights with ``on_missing_weights``
            set to "warn").
        ValueError: ``images`` holds fewer than ``num_real`` images.
    """
    if not metrics.available:
        raise RuntimeError(
            "Cannot compute reference statistics: the metrics are unavailable. "
            + str(metrics.unavailable_reason)
        )
    key = metrics.reference_key(reference_id, num_real)
    path = metrics.reference_path(key)
    if metrics.load_reference(key):
        return path
    metrics.reset_real()
    seen = 0
    for batch in images:
        if seen >= num_real:
            break
        uint8 = _to_uint8(batch)[: num_real - seen]
        metrics.update_real(uint8)
        seen += int(uint8.shape[0])
    if seen < num_real:
        raise ValueError(
            f"compute_reference_statistics: asked for num_real={num_real} real images of "
            f"'{reference_id}' but the images ran out after {seen}. Lower num_real or use a "
            "larger split."
        )
    metrics.save_reference(key)
    return path


__all__ = ["SUBSET_SEED", "GenerativeMetrics", "compute_reference_statistics"]
