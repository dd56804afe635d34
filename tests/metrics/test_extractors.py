"""Extractors: the deterministic stand-in, and the TF-compatible Inception path without weights."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch

from giugan.metrics import (
    INCEPTION_WEIGHTS_FILENAME,
    INCEPTION_WEIGHTS_URL,
    WEIGHTS_ENV_VAR,
    InceptionExtractor,
    InceptionWeightsUnavailable,
    InvalidInceptionWeights,
    StandInExtractor,
    build_extractor,
    extractors,
    resolve_inception_weights,
)

from .conftest import make_images


# --------------------------------------------------------------------------- stand-in
def test_standin_is_deterministic_and_seeded() -> None:
    images = make_images(6, seed=0)
    first, second = StandInExtractor(), StandInExtractor()
    for a, b in zip(first(images), second(images)):
        assert torch.equal(a, b)
    other = StandInExtractor(seed=1)(images)[0]
    assert not torch.allclose(other, first(images)[0])
    assert first.identity == "standin-seed0-features64-classes10"


def test_standin_shapes_any_image_size_and_batch_independence() -> None:
    extractor = StandInExtractor(num_features=32, num_classes=7)
    images = make_images(10, seed=1, size=24)
    features, logits = extractor(images)
    assert features.shape == (10, 32) and logits.shape == (10, 7)
    parts = [extractor(images[i : i + 3])[0] for i in range(0, 10, 3)]
    torch.testing.assert_close(torch.cat(parts), features, rtol=1e-5, atol=1e-6)
    assert extractor(make_images(2, seed=1, size=64))[0].shape == (2, 32)


def test_standin_logits_depend_on_image_content() -> None:
    # The IS of the stand-in must not be ~1 for every input: diverse images spread the classes.
    _, logits = StandInExtractor()(make_images(200, seed=2))
    marginal = logits.softmax(1).mean(0)
    assert (logits.softmax(1).max(1).values > 0.5).float().mean() > 0.2
    assert (marginal > 0.02).sum() >= 3


def test_extractors_require_uint8_rgb() -> None:
    extractor = StandInExtractor()
    with pytest.raises(TypeError, match="uint8"):
        extractor(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        extractor(torch.zeros(2, 4, 8, 8, dtype=torch.uint8))


def test_build_extractor_names() -> None:
    assert isinstance(build_extractor("standin"), StandInExtractor)
    with pytest.warns(UserWarning, match="ignored"):
        build_extractor("standin", weights_path="/some/file.pth")
    with pytest.raises(ValueError, match="'inception'.*'standin'"):
        build_extractor("vgg")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- missing weights
def _assert_one_paragraph_naming_the_fix(message: str) -> None:
    assert "\n" not in message
    for needle in (
        INCEPTION_WEIGHTS_FILENAME,
        INCEPTION_WEIGHTS_URL,
        WEIGHTS_ENV_VAR,
        "metrics.init_args.weights_path",
        "on_missing_weights",
    ):
        assert needle in message, needle


def test_missing_file_names_file_url_env_var_and_config_key(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / INCEPTION_WEIGHTS_FILENAME
    with pytest.raises(InceptionWeightsUnavailable) as info:
        build_extractor("inception", weights_path=missing)
    _assert_one_paragraph_naming_the_fix(str(info.value))
    assert str(missing) in str(info.value)


def test_env_var_is_used_when_no_path_is_given(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(WEIGHTS_ENV_VAR, str(tmp_path / "absent.pth"))
    with pytest.raises(InceptionWeightsUnavailable, match=WEIGHTS_ENV_VAR):
        resolve_inception_weights()
    present = tmp_path / "present.pth"
    present.write_bytes(b"x")
    monkeypatch.setenv(WEIGHTS_ENV_VAR, str(present))
    assert resolve_inception_weights() == present
    assert resolve_inception_weights(tmp_path / "present.pth") == present  # argument wins


def test_no_network_and_no_cache_gives_the_paragraph(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(WEIGHTS_ENV_VAR, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    calls = []

    def offline(url: str, destination: Path, hash_prefix: str | None = None) -> None:
        calls.append((url, destination))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(extractors, "_download_weights", offline)
    with pytest.raises(InceptionWeightsUnavailable) as info:
        InceptionExtractor()
    cached = tmp_path / "hub" / "checkpoints" / INCEPTION_WEIGHTS_FILENAME
    assert calls == [(INCEPTION_WEIGHTS_URL, cached)]
    _assert_one_paragraph_naming_the_fix(str(info.value))
    assert "URLError" in str(info.value)
    assert isinstance(info.value.__cause__, urllib.error.URLError)
    # a file already in the torch hub cache is used without any download
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert resolve_inception_weights() == cached and len(calls) == 1


def test_an_empty_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / INCEPTION_WEIGHTS_FILENAME
    empty.write_bytes(b"")
    with pytest.raises(InvalidInceptionWeights, match=r"EOFError: the file is empty or ends early") as info:
        InceptionExtractor(empty)
    assert INCEPTION_WEIGHTS_URL in str(info.value)


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    garbage = tmp_path / INCEPTION_WEIGHTS_FILENAME
    garbage.write_bytes(b"<html>404 Not Found</html>" * 10)
    with pytest.raises(
        InvalidInceptionWeights, match="cannot be read as a PyTorch state dict"
    ) as info:
        InceptionExtractor(garbage)
    assert INCEPTION_WEIGHTS_URL in str(info.value)
    not_a_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_a_dict)
    with pytest.raises(InvalidInceptionWeights, match="not a state dict"):
        InceptionExtractor(not_a_dict)


def test_wrong_keys_or_shapes_are_a_clear_error(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(10, 2048)}, wrong)
    with pytest.raises(InvalidInceptionWeights, match="not a valid InceptionV3 state dict"):
        InceptionExtractor(wrong)


# --------------------------------------------------------------------------- real network
@pytest.mark.slow
def test_inception_wrapper_preprocessing_and_outputs(random_inception, monkeypatch) -> None:
    """uint8 in; TF-compatible bilinear resize (antialias=False) to 299; 2048 + 1008 out."""
    path, reference = random_inception
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity_inception

    resize_calls = []
    original_resize = fidelity_inception.interpolate_bilinear_2d_like_tensorflow1x

    def spy(x, size, align_corners):
        resize_calls.append((x.dtype, tuple(size), align_corners))
        return original_resize(x, size=size, align_corners=align_corners)

    monkeypatch.setattr(fidelity_inception, "interpolate_bilinear_2d_like_tensorflow1x", spy)
    extractor = InceptionExtractor(path, weights_sha256=None)
    # torch-fidelity's public extractor: the TF-1.x resize is its only resize (no antialias)
    assert type(extractor.network) is fidelity_inception.FeatureExtractorInceptionV3
    images = make_images(1, seed=3, size=32)  # one image: a 299x299 Inception pass is slow on CPU
    features, logits = extractor(images)
    assert features.shape == (1, 2048) and logits.shape == (1, 1008)
    assert resize_calls == [(torch.float32, (299, 299), False)]
    # bit-identical to torch-fidelity's own InceptionV3 forward (the TF-compatible reference)
    expected_features, expected_logits = reference(images)
    torch.testing.assert_close(features, expected_features, rtol=0, atol=0)
    torch.testing.assert_close(logits, expected_logits, rtol=0, atol=0)
    assert features.abs().mean() > 1e-3  # the random network is not degenerate
    assert extractor.weights_sha256 == extractors.sha256_of_file(path)
    assert extractor.identity.endswith(extractor.weights_sha256)
    assert extractor.resize.startswith("bilinear, antialias=False, 299x299")
    # evaluation mode is permanent and no parameter wants gradients
    extractor.train()
    assert not extractor.training and not extractor.network.training
    assert not any(p.requires_grad for p in extractor.parameters())


def test_sha256_prefix_mismatch_is_a_clear_error(random_inception) -> None:
    path, _ = random_inception
    with pytest.raises(
        InvalidInceptionWeights, match="does not start with the expected '6726825d'"
    ):
        InceptionExtractor(path, weights_sha256="6726825d")


# --------------------------------------------------------------------------- resize: clean
def test_clean_resize_is_pil_bicubic_per_channel_in_float() -> None:
    import numpy as np
    from PIL import Image

    images = make_images(2, seed=5, size=32)
    resized = extractors.clean_resize(images, 64)
    assert resized.dtype == torch.uint8 and resized.shape == (2, 3, 64, 64)
    plane = images[1, 2].numpy().astype(np.float32)
    expected = np.asarray(Image.fromarray(plane).resize((64, 64), resample=Image.BICUBIC))
    expected = np.rint(np.clip(expected, 0, 255)).astype(np.uint8)
    assert np.array_equal(resized[1, 2].numpy(), expected)
    # bicubic overshoots at edges and antialiasing averages: not the TF bilinear resize
    from torch_fidelity.interpolate_compat_tensorflow import (
        interpolate_bilinear_2d_like_tensorflow1x as tensorflow_resize,
    )

    bilinear = tensorflow_resize(images.float(), size=(64, 64), align_corners=False).round()
    assert not torch.equal(bilinear.to(torch.uint8), resized)


@pytest.mark.slow
def test_inception_with_clean_resize_feeds_the_network_299_pixels(random_inception) -> None:
    path, reference = random_inception
    extractor = InceptionExtractor(path, resize="clean")
    assert extractor.resize.startswith("clean: PIL bicubic with antialias")
    images = make_images(1, seed=3, size=32)
    features, _ = extractor(images)
    # the TF resize of an image already 299x299 is the identity, so this is exactly the network
    # on the clean-resized pixels
    expected, _ = reference(extractors.clean_resize(images, 299))
    torch.testing.assert_close(features, expected, rtol=0, atol=0)


def test_unknown_resize_and_clean_stand_in_are_refused() -> None:
    with pytest.raises(ValueError, match=r"Unknown resize 'lanczos'.*'tensorflow'.*'clean'"):
        InceptionExtractor(resize="lanczos")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"resize: clean` applies to the Inception extractor"):
        build_extractor("standin", resize="clean")
