"""The real-statistics cache (ReferenceStatistics) through GenerativeMetrics: hits, misses, trust."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from giugan.metrics import GenerativeMetrics, compute_reference_statistics

from .conftest import FAKE, REAL, real_state


def test_cache_hit_gives_identical_statistics_and_scores(standin_metrics) -> None:
    computed = standin_metrics()
    key = computed.reference_key("shapes-train-16", 160)
    assert computed.load_reference(key) is False
    for real in REAL.split(40):
        computed.update_real(real)
    path = computed.save_reference(key)
    assert path == computed.reference_path(key) and path.is_file()
    assert path.name.startswith("shapes-train-16-")
    assert not list(path.parent.glob("*.tmp"))  # atomic write leaves no temporary file
    for fake in FAKE.split(40):
        computed.update_fake(fake)

    loaded = standin_metrics()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert loaded.load_reference(key) is True
    for a, b in zip(real_state(computed), real_state(loaded)):
        assert torch.equal(a, b)
    for fake in FAKE.split(40):
        loaded.update_fake(fake)
    assert loaded.compute() == computed.compute()


def test_changed_key_misses(standin_metrics, tmp_path: Path) -> None:
    metrics = standin_metrics()
    key = metrics.reference_key("shapes-train-16", 160)
    metrics.update_real(REAL)
    metrics.save_reference(key)
    fresh = standin_metrics()
    assert fresh.load_reference(fresh.reference_key("shapes-test-16", 160)) is False
    assert metrics.load_reference(metrics.reference_key("shapes-test-16", 160)) is False
    assert int(metrics.scores["fid"].metric.real_features_num_samples) == 0  # a miss empties the states
    assert metrics.scores["kid"].metric.real_features == []
    assert fresh.load_reference(fresh.reference_key("shapes-train-16", 150)) is False
    other = GenerativeMetrics(extractor="standin", cache_dir=str(tmp_path / "cache"))
    # same reference, other extractor identity (seed/dims) -> other key -> other file
    other.extractor.identity = "standin-seed1-features64-classes10"
    other_key = other.reference_key("shapes-train-16", 160)
    assert other_key != key and other.reference_path(other_key) != metrics.reference_path(key)
    assert other.load_reference(other_key) is False


def test_corrupt_cache_file_is_recomputed_with_a_warning(standin_metrics) -> None:
    metrics = standin_metrics()
    key = metrics.reference_key("shapes-train-16", 160)
    path = compute_reference_statistics(metrics, REAL.split(40), "shapes-train-16", 160)
    expected = real_state(metrics)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
    again = standin_metrics()
    with pytest.warns(UserWarning, match="cannot be read"):
        assert again.load_reference(key) is False
    with pytest.warns(UserWarning, match="cannot be read"):
        compute_reference_statistics(again, REAL.split(40), "shapes-train-16", 160)
    for a, b in zip(expected, real_state(again)):
        torch.testing.assert_close(a, b)
    assert standin_metrics().load_reference(key) is True  # rewritten, valid again


def test_an_empty_cache_file_is_recomputed_with_a_warning(standin_metrics) -> None:
    metrics = standin_metrics()
    key = metrics.reference_key("shapes-train-16", 160)
    path = compute_reference_statistics(metrics, REAL.split(40), "shapes-train-16", 160)
    path.write_bytes(b"")  # e.g. a copy that stopped at once, or a full disk
    with pytest.warns(UserWarning, match=r"cannot be read \(EOFError: the file is empty or ends early\)"):
        assert standin_metrics().load_reference(key) is False


def test_cache_file_of_another_key_is_not_trusted(standin_metrics) -> None:
    metrics = standin_metrics()
    train = compute_reference_statistics(metrics, [REAL], "shapes-train-16", 160)
    test_key = metrics.reference_key("shapes-test-16", 160)
    metrics.reference_path(test_key).write_bytes(train.read_bytes())  # copied by hand
    with pytest.warns(UserWarning, match="written for another key"):
        assert standin_metrics().load_reference(test_key) is False


def test_cache_with_nan_or_wrong_count_is_not_trusted(standin_metrics) -> None:
    metrics = standin_metrics()
    key = metrics.reference_key("shapes-train-16", 160)
    path = compute_reference_statistics(metrics, [REAL], "shapes-train-16", 160)
    payload = torch.load(path, weights_only=True)
    payload["stats"]["fid_features_sum"][0] = float("nan")
    torch.save(payload, path)
    with pytest.warns(UserWarning, match="NaN"):
        assert standin_metrics().load_reference(key) is False
    payload["stats"]["fid_features_sum"][0] = 0.0
    payload["stats"]["fid_num_samples"] = torch.tensor(150)
    torch.save(payload, path)
    with pytest.warns(UserWarning, match="hold"):
        assert standin_metrics().load_reference(key) is False


def test_cache_without_kid_features_misses_when_kid_is_enabled(standin_metrics) -> None:
    fid_only = standin_metrics(kid=False)
    key = fid_only.reference_key("shapes-train-16", 160)
    compute_reference_statistics(fid_only, [REAL], "shapes-train-16", 160)
    assert standin_metrics(kid=False).load_reference(key) is True
    with pytest.warns(UserWarning, match="kid_real_features"):
        assert standin_metrics(kid=True).load_reference(key) is False


def test_save_reference_checks_the_image_count(standin_metrics) -> None:
    metrics = standin_metrics()
    metrics.update_real(REAL)
    metrics.update_real(REAL[:8])  # e.g. a DistributedSampler padding with repeats
    with pytest.raises(ValueError, match="168 images.*num_real=160.*DistributedSampler"):
        metrics.save_reference(metrics.reference_key("shapes-train-16", 160))


def test_keys_from_another_suite_are_rejected(standin_metrics) -> None:
    key = standin_metrics().reference_key("shapes-train-16", 160)
    key["extractor_identity"] = "something else"
    with pytest.raises(ValueError, match="reference_key"):
        standin_metrics().load_reference(key)


# --------------------------------------------------------------------------- sharding over ranks
def test_loaded_statistics_are_shared_so_a_sum_or_gather_restores_them(standin_metrics) -> None:
    """FID sums sit on rank 0 (zeros elsewhere); KID features are cut in contiguous shards."""
    metrics = standin_metrics()
    metrics.update_real(REAL)
    stats = {}
    for score in metrics.scores.values():
        stats.update(score.export_reference())
    fid, kid = metrics.scores["fid"], metrics.scores["kid"]
    sums, shards = [], []
    for rank in range(3):
        fid.load_reference(stats, rank, 3)
        kid.load_reference(stats, rank, 3)
        sums.append(int(fid.metric.real_features_num_samples))
        shards.append(kid.metric.real_features[0])
    assert sums == [160, 0, 0]
    assert [len(shard) for shard in shards] == [53, 53, 54]
    assert torch.equal(torch.cat(shards), stats["kid_real_features"])


def test_reference_statistics_key_rejects_bad_arguments(standin_metrics) -> None:
    metrics = standin_metrics()
    reference, scores = metrics.reference, list(metrics.scores.values())
    with pytest.raises(ValueError, match="non-empty string"):
        reference.key("  ", 10, scores)
    with pytest.raises(ValueError, match="integer >= 2"):
        reference.key("shapes-train-16", 1, scores)
    key = reference.key("shapes-train-16", 160, scores)
    assert key["feature_dim"] == 64 and key["extractor"] == "standin"
    assert reference.path(key).name.startswith("shapes-train-16-")
