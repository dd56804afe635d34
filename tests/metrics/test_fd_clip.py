"""FD-CLIP: torch-fidelity's CLIP encoder (from its registry) behind the ``clip`` extractor, its
weights found offline, the Fréchet distance equal to torch-fidelity's on the same features.

The CLIP release is a one-block ViT in OpenAI's TorchScript layout (``clip_networks``): the
pretrained files cannot be fetched here, and torch-fidelity reads the architecture from the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from clip_networks import release_file
from score_runs import score_sets, torch_fidelity_frechet

from giugan.metrics import GenerativeMetrics
from giugan.metrics.clip import (
    CLIP_MODELS,
    CLIPWeightsUnavailable,
    build_clip_extractor,
    resolve_clip_weights,
)
from giugan.metrics.registry import best_criterion
from giugan.training.callbacks.checkpoints import BestCheckpoint

pytestmark = pytest.mark.usefixtures("single_thread")

REAL = torch.randint(0, 256, (24, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
FAKE = (REAL[:20].int() + torch.randint(0, 90, (20, 3, 16, 16), generator=torch.Generator().manual_seed(2))).clamp(0, 255).to(torch.uint8)


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    return release_file(tmp_path / "ViT-B-32.pt")


def suite(weights: Path, cache: Path, **switches: bool) -> GenerativeMetrics:
    options = {"fid": False, "inception_score": False, "fd_clip": True} | switches
    return GenerativeMetrics(
        extractor="standin", clip_weights_path=str(weights), num_fake=20, cache_dir=str(cache),
        **options,  # type: ignore[arg-type]
    )  # fmt: skip




def test_the_encoders_are_torch_fidelitys() -> None:
    from torch_fidelity.feature_extractor_clip import MODEL_URLS

    assert set(CLIP_MODELS) == set(MODEL_URLS)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")  # theirs, built directly
def test_features_equal_torch_fidelitys_extractor_on_the_same_file(weights: Path) -> None:
    from torch_fidelity.feature_extractor_clip import FeatureExtractorCLIP

    ours = build_clip_extractor("clip-vit-b-32", weights)
    theirs = FeatureExtractorCLIP("clip-vit-b-32", ["clip"], feature_extractor_weights_path=str(weights))
    for images in (REAL[:5], torch.randint(0, 256, (3, 3, 48, 40), dtype=torch.uint8)):
        (expected,) = theirs(images)
        (features,) = ours(images)
        assert features.shape == (images.shape[0], 16) and torch.equal(features, expected)
    assert not torch.equal(ours(REAL[:1])[0], ours(REAL[1:2])[0])  # the embedding depends on the image


def test_equals_torch_fidelity_frechet_distance_on_the_same_features(weights: Path, tmp_path: Path) -> None:
    metrics = suite(weights, tmp_path / "cache")
    values = score_sets(metrics, REAL, FAKE)
    assert list(values) == ["fd_clip"]
    network = metrics.extractors.network("clip")
    assert network is not None and metrics.extractor is None  # no Inception role: not built
    assert values["fd_clip"] == pytest.approx(torch_fidelity_frechet(network, REAL, FAKE), rel=1e-6)
    assert values["fd_clip"] > 1e-3  # the sets differ (the same set: ~0, below)


def test_a_set_against_itself_is_zero(weights: Path, tmp_path: Path) -> None:
    assert score_sets(suite(weights, tmp_path / "cache"), REAL, REAL)["fd_clip"] == pytest.approx(0.0, abs=1e-6)


def test_cache_key_and_protocol_name_the_clip_weights(weights: Path, tmp_path: Path) -> None:
    first = suite(weights, tmp_path / "cache", fd_dinov2=False, fid=True)
    values = score_sets(first, REAL, FAKE)
    assert list(values) == ["fid", "fd_clip"]
    key = first.reference_key("shapes-test-16", 24)
    assert key["extractors"] == {"clip": first.extractors.network("clip").identity}
    stored = torch.load(first.reference_path(key), weights_only=True)["stats"]
    assert int(stored["fd_clip_num_samples"]) == 24
    second = suite(weights, tmp_path / "cache", fid=True)
    assert second.load_reference(key) and score_sets(second, REAL, FAKE) == pytest.approx(values)
    protocol = first.protocol()
    assert protocol["fd_clip"] is True and protocol["clip_model"] == "clip-vit-b-32"
    assert protocol["clip_weights_file"] == str(weights) and protocol["clip_feature_dim"] == 16
    assert protocol["clip_resize"].endswith("64x64")
    other = suite(release_file(tmp_path / "other.pt", seed=1), tmp_path / "cache").reference_key("shapes-test-16", 24)
    assert other["extractors"] != key["extractors"]  # other weights: another cache entry


def test_the_hub_cache_is_used_without_a_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("downloaded"))
    cached = resolve_clip_weights.__globals__["_hub_cache_path"]("clip-vit-b-32")
    cached.parent.mkdir(parents=True)
    release_file(cached)
    assert cached.name.startswith("clip-vit-b-32-") and cached.suffix == ".pt"  # torch-fidelity's name
    assert build_clip_extractor("clip-vit-b-32").weights_path == str(cached)


def test_offline_without_weights_is_one_paragraph_naming_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(url: str, destination: str, **kwargs: object) -> None:
        assert url.endswith("/ViT-B-32.pt") and kwargs.get("hash_prefix")
        raise OSError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(CLIPWeightsUnavailable) as caught:
        build_clip_extractor("clip-vit-b-32")
    message = caught.value.message("--metrics.")
    assert "downloading it to" in message and "Name or service not known" in message
    assert "`--metrics.clip_weights_path /path/to/ViT-B-32.pt`" in message and "fd_clip: false" in message
    with pytest.raises(CLIPWeightsUnavailable, match="absent.pt"):
        resolve_clip_weights("clip-vit-b-32", tmp_path / "absent.pt")


def test_a_file_that_is_not_a_clip_release_is_named(tmp_path: Path) -> None:
    wrong = tmp_path / "ViT-B-32.pt"
    wrong.write_text("not a model")
    with pytest.raises(ValueError, match=r"ViT-B-32.pt' does not load into torch-fidelity's clip-vit-b-32"):
        build_clip_extractor("clip-vit-b-32", wrong)
    with pytest.raises(ValueError, match="`clip_model` must be one of clip-vit-b-32, .*got 'clip-vit-b-33'"):
        GenerativeMetrics(extractor="standin", fd_clip=True, clip_model="clip-vit-b-33", cache_dir=str(tmp_path))  # type: ignore[arg-type]


def test_missing_weights_warn_mode_disables_the_suite(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="CLIP weights needed for FD-CLIP are unavailable"):
        metrics = GenerativeMetrics(
            extractor="standin", fd_clip=True, clip_weights_path=str(tmp_path / "absent.pt"),
            on_missing_weights="warn", cache_dir=str(tmp_path),
        )  # fmt: skip
    assert not metrics.available and metrics.compute() == {}


def test_it_decides_the_best_after_fd_dinov2_and_before_the_judge() -> None:
    assert best_criterion({"fd_clip": 3.0, "judge_frechet": 1.0}) == "fd_clip"
    assert best_criterion({"fd_clip": 3.0, "fd_dinov2": 1.0}) == "fd_dinov2"
    best = BestCheckpoint.for_metrics({"fid": False, "fd_clip": True, "shapes_judge": True})
    assert best is not None and (best.monitor, best.mode) == ("eval/fd_clip", "min")
