"""FID, IS, KID, FD-DINOv2 and the others behind one object, with a pinned and written-down
protocol.

:class:`GenerativeMetrics` only coordinates: the scores are the entries of
:data:`giugan.metrics.registry.SCORES`, the extractors those of
:data:`giugan.metrics.extractor_registry.EXTRACTORS` (built when an enabled score consumes one,
run once per batch for all of its scores: :mod:`giugan.metrics.features`), the real-statistics
cache is :class:`~giugan.metrics.reference.ReferenceStatistics`, and everything across processes
is in :mod:`giugan.metrics.distributed`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from giugan.metrics.clip import CLIP_MODELS
from giugan.metrics.dinov2 import DINOV2_ARCHITECTURES
from giugan.metrics.distributed import SUBSET_SEED, make_states_updatable
from giugan.metrics.extractor_registry import EXTRACTORS, ExtractorOptions
from giugan.metrics.extractors import ExtractorName
from giugan.metrics.features import (
    INCEPTION_ROLE,
    FeatureExtractors,
    build_extractors,
    check_on_missing_weights,
)
from giugan.metrics.quantize import QUANTISATION
from giugan.metrics.reference import ReferenceStatistics, library_versions
from giugan.metrics.registry import SCORES, build_scores, needed_extractors, scores_protocol
from giugan.metrics.score import Score, ScoreSettings, require_int

DINOv2Name = Literal["vit_large_patch14_dinov2", "vit_base_patch14_dinov2", "vit_small_patch14_dinov2"]
CLIPName = Literal[
    "clip-vit-b-32", "clip-vit-b-16", "clip-vit-l-14", "clip-vit-l-14-336px",
    "clip-rn50", "clip-rn101", "clip-rn50x4", "clip-rn50x16", "clip-rn50x64",
]  # fmt: skip


class GenerativeMetrics(nn.Module):
    """The enabled scores of generated images, each extractor run once per batch for its scores.

    An ``nn.Module`` the training module owns as a child: it follows its device, and its states
    are synchronised across DDP ranks by :meth:`compute` and :meth:`save_reference` (called on
    **every** rank). Only the extractors that an enabled score consumes are built, and they are
    kept *outside* the module tree: their weights (~95 MB for Inception, ~1.2 GB for DINOv2
    ViT-L) are never written into checkpoints nor broadcast by DDP, and ``half()``/bf16 never
    touch them (:meth:`_apply` moves them to the device, in float32). :meth:`protocol` writes the
    whole measurement protocol down.

    When an extractor's weights are left to the default lookup (Inception's ``weights_path`` or
    ``dinov2_weights_path`` None: the environment variable, torch's hub cache, or a download),
    the extractors are built only when something is first measured or asked about
    (``available``, ``scores``, ``reference``, ...), so a model holding these metrics can be
    built, loaded from a checkpoint and sampled from on a machine without the weights or a
    network. Weights files given explicitly, and the stand-in, are checked at once: a wrong file
    is a config error, reported before anything runs.

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
        fd_dinov2: compute FD-DINOv2, the Fréchet distance in DINOv2 ViT-L/14 features (Stein
            et al. 2023; docs/metrics.md).
        dinov2_weights_path: local DINOv2 checkpoint (``dinov2_vitl14_pretrain.pth``); ``None``
            uses the torch hub cache or a download.
        dinov2_model: the DINOv2 architecture (timm name): ViT-L/14, the protocol of Stein et
            al.; ViT-B/14 and ViT-S/14 give numbers comparable only with themselves.
        fd_clip: compute FD-CLIP, the Fréchet distance in CLIP ViT-B/32 image embeddings
            (Kynkäänniemi et al. 2023; docs/metrics.md), by torch-fidelity's CLIP encoder.
        clip_weights_path: local OpenAI CLIP release file (``ViT-B-32.pt``); ``None`` uses the
            torch hub cache or a download.
        clip_model: the CLIP encoder (torch-fidelity's name): ViT-B/32, the choice of
            Kynkäänniemi et al.; the others give numbers comparable only with themselves.
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
        fd_dinov2: bool = False,
        dinov2_weights_path: str | None = None,
        dinov2_model: DINOv2Name = "vit_large_patch14_dinov2",
        fd_clip: bool = False,
        clip_weights_path: str | None = None,
        clip_model: CLIPName = "clip-vit-b-32",
    ) -> None:
        super().__init__()
        arguments = locals()
        self.settings = ScoreSettings(
            extractor, inception_score_splits, kid_subset_size, kid_subsets,
            precision_recall_k, density_coverage_k,
        )
        require_int("num_fake", num_fake, 1)
        _check_choice("extractor", extractor, ("inception", "standin"))
        _check_choice("dinov2_model", dinov2_model, tuple(DINOV2_ARCHITECTURES))
        _check_choice("clip_model", clip_model, CLIP_MODELS)
        self.extractor_name: ExtractorName = extractor
        self.weights_path = weights_path
        #: Score switch -> on (the registry's scores, each a boolean argument above).
        self.enabled = {name: bool(arguments[name]) for name in SCORES}
        self.options = ExtractorOptions(
            extractor, weights_path, weights_sha256, resize, dinov2_weights_path, dinov2_model,
            clip_weights_path, clip_model,
        )
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
        self.needed = needed_extractors(self.enabled)
        names = [self.extractor_name if n == INCEPTION_ROLE else n for n in self.needed]
        if not any(EXTRACTORS[name].finds_weights(self.options) for name in names):
            self._build()

    def _build(self) -> None:
        """Build the needed extractors, the scores and the reference store (once).

        ``_built`` is set only once everything exists: a build that raises (e.g. the Inception
        weights cannot be had) leaves a suite that Lightning's teardown can still move to the CPU.
        """
        extractors, self.unavailable_reason = build_extractors(
            self.needed, self.options, self.on_missing_weights
        )
        extractors.to(self.device)
        # Not an nn.Module: nn.Module does not register it, its weights stay out of the tree.
        self._extractors = extractors
        self.available = self.unavailable_reason is None
        self.reference = ReferenceStatistics(self.cache_dir, extractors)
        scores = build_scores(self.settings, self.enabled, extractors) if self.available else {}
        self.scores = nn.ModuleDict(scores).to(self.device)
        self._built = True

    def __getattr__(self, name: str) -> Any:
        if name in _BUILT_ON_FIRST_USE and not self.__dict__.get("_built", True):
            self._build()
            return getattr(self, name)
        return super().__getattr__(name)

    @property
    def extractors(self) -> FeatureExtractors:
        """The built extractors (none when the metrics are unavailable)."""
        return self._extractors

    @property
    def extractor(self) -> nn.Module | None:
        """The network the ``extractor`` option chose (Inception or the stand-in), when an
        enabled score consumes it (else ``None``)."""
        return self.extractors.network(INCEPTION_ROLE)

    @property
    def device(self) -> torch.device:
        """Device of the metric states and the extractor."""
        return self._device_anchor.device

    @property
    def needs_real(self) -> bool:
        """Whether real-image statistics are needed (a score that needs them enabled and available)."""
        return bool(self._real_scores())

    def _real_scores(self) -> list[Score]:
        return [score for score in self.scores.values() if score.needs_real]

    def _apply(self, fn: Any, recurse: bool = True) -> GenerativeMetrics:
        super()._apply(fn, recurse)
        if self._built:  # follow the device, never the dtype: features stay float32
            self.extractors.to(self.device)
        return self

    def extra_repr(self) -> str:
        switches = ", ".join(f"{name}={on}" for name, on in self.enabled.items())
        return (
            f"extractor={self.extractor_name!r}, "
            f"available={self.available if self._built else 'not built yet'}, {switches}"
        )

    def _update(self, images: Tensor, scores: list[Score], real: bool) -> None:
        """Run each extractor the ``scores`` consume once on ``images``, then update them."""
        consumed: dict[str, set[str]] = {}
        for score in scores:
            outputs = (score.consumes,) if isinstance(score.consumes, str) else score.consumes
            consumed.setdefault(score.extractor, set()).update(outputs)
        results = self.extractors.run(images, self.device, consumed)
        make_states_updatable(score.metric for score in scores)
        for score in scores:
            named = results[score.extractor]
            if isinstance(score.consumes, str):
                score.update(named[score.consumes], real=real)
            else:
                score.update(tuple(named[output] for output in score.consumes), real=real)

    def check_reference(self, reference_id: str) -> None:
        """Raise ``ValueError`` when an enabled score cannot measure against ``reference_id``
        (the shapes judge on other data, say)."""
        for name, score in SCORES.items():
            if self.enabled.get(name, False):
                score.check_reference(reference_id)

    def reference_key(self, reference_id: str, num_real: int) -> dict[str, Any]:
        """Everything that determines the real statistics (see ``ReferenceStatistics.key``)."""
        if isinstance(reference_id, str):
            self.check_reference(reference_id)
        return self.reference.key(reference_id, num_real, self._real_scores())

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
        self.reference.forget()  # the states are no longer exactly the loaded reference
        self._update(images_uint8, self._real_scores(), real=True)

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
        self._update(images_uint8, list(self.scores.values()), real=False)

    def reset_fake(self) -> None:
        """Forget the generated images (the real statistics are kept)."""
        for score in self.scores.values():
            score.reset_fake()

    def compute(self) -> dict[str, float]:
        """Scores over all ranks: the ``logged`` keys of the enabled scores, in table order
        (``{}`` if off).

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
        protocol = self.extractors.protocol()
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
_BUILT_ON_FIRST_USE = frozenset({"_extractors", "available", "unavailable_reason", "reference", "scores"})


def _check_choice(key: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(
            f"GenerativeMetrics: `{key}` must be one of {', '.join(choices)}, got {value!r}; set "
            f"`metrics.init_args.{key}` accordingly."
        )
