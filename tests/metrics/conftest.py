"""Fixtures for the metrics tests: deterministic images, filled suites, a random-weight Inception."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from giugan.metrics import GenerativeMetrics, StandInExtractor


def make_images(count: int, seed: int, size: int = 16, shift: float = 0.0) -> torch.Tensor:
    """``(count, 3, size, size)`` uint8 images: smooth random patterns (4x4 upsampled) + noise.

    ``shift`` moves the brightness so two sets can be told apart.
    """
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 4, 4, generator=generator)
    smooth = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    noise = 0.1 * torch.rand(count, 3, size, size, generator=generator)
    images = (smooth + noise + shift).clamp(0, 1) * 255
    return images.round().to(torch.uint8)


REAL = make_images(160, seed=10)
FAKE = make_images(160, seed=11, shift=0.15)


def filled(metrics: GenerativeMetrics, real=REAL, fake=FAKE, batch: int = 40) -> GenerativeMetrics:
    """``metrics`` after ``update_real``/``update_fake`` with ``real``/``fake`` in batches."""
    for i in range(0, len(real), batch):
        metrics.update_real(real[i : i + batch])
    for i in range(0, len(fake), batch):
        metrics.update_fake(fake[i : i + batch])
    return metrics


def gaussian(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the stand-in extractor's features of ``images``."""
    features = StandInExtractor()(images)[0].double().numpy()
    return features.mean(0), np.cov(features, rowvar=False)


def real_state(metrics: GenerativeMetrics) -> list[torch.Tensor]:
    """The FID sums and count and the KID real features of ``metrics``."""
    fid = metrics.scores["fid"].metric
    return [
        fid.real_features_sum.clone(),
        fid.real_features_cov_sum.clone(),
        fid.real_features_num_samples.clone(),
        torch.cat(metrics.scores["kid"].metric.real_features),
    ]


@pytest.fixture
def standin_metrics(tmp_path: Path) -> Callable[..., GenerativeMetrics]:
    """Factory of stand-in GenerativeMetrics caching into ``tmp_path / "cache"``."""

    def build(**overrides: object) -> GenerativeMetrics:
        options: dict[str, object] = {
            "extractor": "standin",
            "kid": True,
            "kid_subset_size": 50,
            "kid_subsets": 5,
            "inception_score_splits": 4,
            "num_fake": 160,
            "cache_dir": str(tmp_path / "cache"),
        }
        options.update(overrides)
        return GenerativeMetrics(**options)  # type: ignore[arg-type]

    return build


@pytest.fixture(scope="session")
def random_inception(tmp_path_factory: pytest.TempPathFactory):
    """torch-fidelity's InceptionV3 with random weights, and that state dict saved to a file.

    The real weights cannot be downloaded here, so this exercises the genuine network and its
    preprocessing with a structurally valid weights file. BatchNorm scales are raised so the
    random activations do not vanish over 90+ layers.
    """
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity_inception

    with (
        mock.patch.object(
            fidelity_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None
        ),
        mock.patch.object(fidelity_inception, "load_state_dict_from_url", lambda *a, **k: {}),
    ):
        torch.manual_seed(1234)
        network = fidelity_inception.FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048", "logits_unbiased"]
        )
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.fill_(2.45)
    path = tmp_path_factory.mktemp("inception") / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(network.state_dict(), path)
    return path, network.eval()
