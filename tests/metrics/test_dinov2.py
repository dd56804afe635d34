"""The DINOv2 extractor: torch-fidelity's preprocessing and features, weights files, offline errors.

The pretrained weights cannot be fetched here: the real architectures run at random weights, and
torch-fidelity's extractor is given the same network through its ``torch.hub`` loader.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from dinov2_networks import release_checkpoint, tiny_dinov2
from torch import nn

from giugan.metrics import dinov2
from giugan.metrics.dinov2 import (
    DINOv2Extractor,
    DINOv2WeightsUnavailable,
    build_dinov2_extractor,
    dinov2_network,
    dinov2_position_embedding,
    dinov2_weights_filename,
)

pytestmark = pytest.mark.usefixtures("single_thread")

IMAGES = torch.randint(0, 256, (2, 3, 20, 20), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def torch_fidelity_extractor(monkeypatch: pytest.MonkeyPatch, network: nn.Module) -> nn.Module:
    """torch-fidelity's DINOv2 ViT-L/14 extractor, its hub loader returning ``network``."""
    from torch_fidelity.feature_extractor_dinov2 import FeatureExtractorDinoV2

    requested = []

    def load(repository: str, model: str) -> nn.Module:
        requested.append((repository, model))
        return network

    monkeypatch.setattr(torch.hub, "load", load)
    extractor = FeatureExtractorDinoV2("dinov2-vit-l-14", ["dinov2"])
    assert requested == [("facebookresearch/dinov2", "dinov2_vitl14")]
    return extractor


class Flatten(nn.Module):
    """A "network" that returns its input: what torch-fidelity feeds it, flattened."""

    num_features = 3 * 224 * 224

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def test_preprocessing_equals_torch_fidelity(monkeypatch: pytest.MonkeyPatch) -> None:
    theirs = torch_fidelity_extractor(monkeypatch, Flatten())
    ours = DINOv2Extractor(Flatten(), "vit_large_patch14_dinov2")
    for images in (IMAGES, torch.randint(0, 256, (3, 3, 64, 48), dtype=torch.uint8)):
        (expected,) = theirs(images)
        assert torch.equal(ours.preprocess(images).flatten(1), expected)
        assert ours.preprocess(images).shape[-2:] == (224, 224)


@pytest.mark.slow
def test_vit_l_features_equal_torch_fidelity_given_the_same_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """ViT-L/14 at random weights: 303M parameters, two images."""
    torch.manual_seed(0)
    network = dinov2_network("vit_large_patch14_dinov2")
    assert len(network.blocks) == 24 and network.num_features == 1024 and network.patch_embed.patch_size == (14, 14)
    ours = DINOv2Extractor(network, "vit_large_patch14_dinov2")
    (features,) = ours(IMAGES)
    assert features.shape == (2, 1024) and features.dtype == torch.float32
    (expected,) = torch_fidelity_extractor(monkeypatch, network)(IMAGES)
    torch.testing.assert_close(features, expected, rtol=0, atol=0)


def test_position_embedding_follows_the_dinov2_interpolation() -> None:
    torch.manual_seed(1)
    embedding = torch.randn(1, 1 + 37 * 37, 8)
    resized = dinov2_position_embedding(embedding, 16)
    assert resized.shape == (1, 1 + 16 * 16, 8)
    assert torch.equal(resized[:, 0], embedding[:, 0])  # the class token's position is kept
    grid = embedding[:, 1:].reshape(1, 37, 37, 8).permute(0, 3, 1, 2)
    expected = torch.nn.functional.interpolate(
        grid, mode="bicubic", antialias=False, scale_factor=(16.1 / 37, 16.1 / 37)
    ).permute(0, 2, 3, 1).reshape(1, 256, 8)  # fmt: skip
    assert torch.equal(resized[:, 1:], expected)
    assert dinov2_position_embedding(embedding, 37) is embedding
    with pytest.raises(ValueError, match="square grid"):
        dinov2_position_embedding(torch.zeros(1, 1 + 10, 8), 16)


def test_a_release_checkpoint_loads_with_interpolated_positions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dinov2, "dinov2_network", lambda architecture: tiny_dinov2())
    path = tmp_path / dinov2_weights_filename("vit_small_patch14_dinov2")
    state = release_checkpoint(path)
    extractor = build_dinov2_extractor("vit_small_patch14_dinov2", path)
    loaded = extractor.network.state_dict()
    assert torch.equal(loaded["pos_embed"], dinov2_position_embedding(state["pos_embed"], 16))
    assert torch.equal(loaded["blocks.0.ls1.gamma"], state["blocks.0.ls1.gamma"])
    assert extractor.weights_path == str(path) and len(extractor.weights_sha256) == 64
    assert extractor.identity.startswith(f"vit_small_patch14_dinov2/sha256:{extractor.weights_sha256}/224px")
    (features,) = extractor(IMAGES)
    assert features.shape == (2, 24) and torch.isfinite(features).all()


def test_a_wrong_file_names_itself_and_the_fix(tmp_path: Path) -> None:
    garbage = tmp_path / "dinov2.pth"
    torch.save({"something": torch.zeros(3)}, garbage)
    with pytest.raises(ValueError, match=r"'.*dinov2\.pth' does not load.*dinov2_model"):
        build_dinov2_extractor("vit_small_patch14_dinov2", garbage)


def test_offline_without_weights_is_one_paragraph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(url: str, destination: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        raise OSError("Network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(DINOv2WeightsUnavailable) as info:
        build_dinov2_extractor("vit_large_patch14_dinov2")
    message = str(info.value)
    assert "\n" not in message and "Network is unreachable" in message
    assert "dinov2_vitl14_pretrain.pth" in message and "metrics.init_args.dinov2_weights_path" in message
    assert str(tmp_path / "hub" / "checkpoints" / "dinov2_vitl14_pretrain.pth") in message
    missing = tmp_path / "absent.pth"
    with pytest.raises(DINOv2WeightsUnavailable, match="absent.pth', which is not an existing file"):
        build_dinov2_extractor("vit_large_patch14_dinov2", missing)
    assert "--metrics.dinov2_weights_path" in info.value.message(prefix="--metrics.")


def test_an_unknown_architecture_names_the_choices() -> None:
    with pytest.raises(ValueError, match="vit_large_patch14_dinov2"):
        dinov2_network("vit_huge")
