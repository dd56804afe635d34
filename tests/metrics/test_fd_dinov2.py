"""FD-DINOv2 as a score of GenerativeMetrics: torch-fidelity's Fréchet distance on the same
features, zero on a set against itself, its own cache entries and key, its protocol, best.ckpt.

The network is timm's DINOv2 ViT layout shrunk to one block (ViT-L/14 equality with
torch-fidelity is in ``test_dinov2.py``), its random weights saved as a release checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from dinov2_networks import release_checkpoint, tiny_dinov2
from score_runs import score_sets, torch_fidelity_frechet

from giugan.metrics import GenerativeMetrics, dinov2
from giugan.metrics.registry import best_criterion
from giugan.training.callbacks.checkpoints import BestCheckpoint

pytestmark = pytest.mark.usefixtures("single_thread")

REAL = torch.randint(0, 256, (24, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
FAKE = (REAL[:20].int() + torch.randint(0, 60, (20, 3, 16, 16), generator=torch.Generator().manual_seed(2))).clamp(0, 255).to(torch.uint8)


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A one-block DINOv2 ViT as ``dinov2_model``'s network, and its release-layout checkpoint."""
    monkeypatch.setattr(dinov2, "dinov2_network", lambda architecture: tiny_dinov2())
    path = tmp_path / "dinov2_vits14_pretrain.pth"
    release_checkpoint(path)
    return path


def suite(weights: Path, cache: Path, **switches: bool) -> GenerativeMetrics:
    options = {"fid": False, "inception_score": False, "fd_dinov2": True} | switches
    return GenerativeMetrics(
        extractor="standin", dinov2_weights_path=str(weights), dinov2_model="vit_small_patch14_dinov2",
        num_fake=20, cache_dir=str(cache), **options,  # type: ignore[arg-type]
    )  # fmt: skip




def test_equals_torch_fidelity_frechet_distance_on_the_same_features(weights: Path, tmp_path: Path) -> None:
    metrics = suite(weights, tmp_path / "cache")
    values = score_sets(metrics, REAL, FAKE)
    assert list(values) == ["fd_dinov2"]
    network = metrics.extractors.network("dinov2")
    assert network is not None and metrics.extractor is None  # no Inception role: not built
    assert values["fd_dinov2"] == pytest.approx(torch_fidelity_frechet(network, REAL, FAKE), rel=1e-6)
    assert values["fd_dinov2"] > 0.1  # the sets differ (the same set: ~0, below)
    assert metrics.last_counts == {"real": 24, "fake": 20}


def test_a_set_against_itself_is_zero(weights: Path, tmp_path: Path) -> None:
    assert score_sets(suite(weights, tmp_path / "cache"), REAL, REAL)["fd_dinov2"] == pytest.approx(0.0, abs=1e-6)


def test_cache_entries_key_and_protocol_name_the_dinov2_network(weights: Path, tmp_path: Path) -> None:
    first = suite(weights, tmp_path / "cache", fid=True)
    values = score_sets(first, REAL, FAKE)
    assert list(values) == ["fid", "fd_dinov2"]
    key = first.reference_key("shapes-test-16", 24)
    identity = first.extractors.network("dinov2").identity
    assert key["extractors"] == {"dinov2": identity} and key["extractor"] == "standin"
    stored = torch.load(first.reference_path(key), weights_only=True)["stats"]
    assert int(stored["fd_dinov2_num_samples"]) == 24 and int(stored["fid_num_samples"]) == 24
    second = suite(weights, tmp_path / "cache", fid=True)
    assert second.load_reference(key)  # a hit: the same network and weights
    assert score_sets(second, REAL, FAKE) == pytest.approx(values)
    protocol = first.protocol()
    assert protocol["fd_dinov2"] is True and protocol["dinov2_model"] == "vit_small_patch14_dinov2"
    assert protocol["dinov2_weights_file"] == str(weights)
    assert protocol["dinov2_resize"].startswith("bilinear, antialias=False, 224x224")
    assert suite(weights, tmp_path / "c2", fd_dinov2=False, fid=True).protocol()["fd_dinov2"] is False


def test_other_weights_are_another_cache_file(weights: Path, tmp_path: Path) -> None:
    key = suite(weights, tmp_path / "cache").reference_key("shapes-test-16", 24)
    state = torch.load(weights, weights_only=True)
    state["norm.weight"] = state["norm.weight"] + 1
    retrained = tmp_path / "retrained.pth"
    torch.save(state, retrained)
    other = suite(retrained, tmp_path / "cache").reference_key("shapes-test-16", 24)
    assert other["extractors"] != key["extractors"]


def test_it_decides_the_best_after_fid_and_before_the_judge() -> None:
    assert best_criterion({"fd_dinov2": 3.0, "judge_frechet": 1.0, "is_mean": 2.0}) == "fd_dinov2"
    assert best_criterion({"fd_dinov2": 3.0, "fid": 1.0}) == "fid"
    best = BestCheckpoint.for_metrics({"fid": False, "fd_dinov2": True, "shapes_judge": True})
    assert best is not None and (best.monitor, best.mode) == ("eval/fd_dinov2", "min")


def test_missing_weights_warn_mode_disables_the_suite(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="DINOv2 weights needed for FD-DINOv2 are unavailable"):
        metrics = GenerativeMetrics(
            extractor="standin", fd_dinov2=True, dinov2_weights_path=str(tmp_path / "absent.pth"),
            on_missing_weights="warn", cache_dir=str(tmp_path),
        )  # fmt: skip
    assert not metrics.available and "absent.pth" in metrics.unavailable_reason
    assert metrics.compute() == {}
