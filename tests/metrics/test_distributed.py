"""Two CPU processes (gloo) give the same scores as one process on all images, FD-DINOv2 and
FD-CLIP (on tiny networks of their layouts) included."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from dinov2_networks import tiny_dinov2

from giugan.metrics import GenerativeMetrics, dinov2

from . import ddp_worker


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dinov2, "dinov2_network", lambda architecture: tiny_dinov2())
    preloaded_cache = str(tmp_path / "single-cache")
    ddp_worker.write_weights(tmp_path)
    expected = ddp_worker.single_process(preloaded_cache, str(tmp_path))
    assert {"fid", "kid_mean", "fd_dinov2", "fd_clip"} <= expected.keys()

    context = mp.start_processes(
        ddp_worker.run,
        args=(2, str(tmp_path / "init"), str(tmp_path), preloaded_cache, str(tmp_path)),
        nprocs=2,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + 150
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the 2-process metrics test hung (a collective not called on every rank?)")

    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for result in results:
        assert result["fresh_hit"] is False
        assert result["loaded_hit"] is True and result["early_hit"] is True
        assert result["fresh_counts"] == {
            "real": ddp_worker.NUM_IMAGES,
            "fake": ddp_worker.NUM_IMAGES,
        }
        for variant in ("fresh", "loaded", "early"):
            scores = result[variant]
            assert scores.keys() == expected.keys()
            for name, value in expected.items():
                assert scores[name] == pytest.approx(value, rel=1e-4, abs=1e-6), (variant, name)
    assert results[0]["fresh"] == results[1]["fresh"]  # every rank reports the same numbers

    # The reference written under DDP holds the statistics of all images, exactly once.
    single = torch.load(next(Path(preloaded_cache).glob("*.pt")), weights_only=True)["stats"]
    written = torch.load(results[0]["path"], weights_only=True)["stats"]
    assert int(written["fid_num_samples"]) == ddp_worker.NUM_IMAGES
    assert int(written["fd_dinov2_num_samples"]) == int(written["fd_clip_num_samples"]) == ddp_worker.NUM_IMAGES
    assert written["kid_real_features"].shape == single["kid_real_features"].shape
    for name in single:
        torch.testing.assert_close(written[name], single[name], rtol=1e-5, atol=1e-5)
    # ... and loads in a single process to the same FID
    metrics = GenerativeMetrics(
        cache_dir=str(Path(results[0]["path"]).parent), **ddp_worker.options(tmp_path)
    )
    assert metrics.load_reference(metrics.reference_key("ddp-test", ddp_worker.NUM_IMAGES))
    metrics.update_fake(ddp_worker.images()[1])
    assert metrics.compute()["fid"] == pytest.approx(expected["fid"], rel=1e-4)


# --------------------------------------------------------------------------- single process
def test_helpers_outside_a_process_group() -> None:
    from giugan.metrics.distributed import all_ranks_agree, rank_and_world, rows

    assert rank_and_world() == (0, 1)
    assert all_ranks_agree(True) is True and all_ranks_agree(False) is False
    assert rows([torch.zeros(3, 2), torch.zeros(4, 2)]) == 7 and rows([]) == 0


def test_synchronised_merges_list_states_and_restores_them() -> None:
    from torchmetrics.image.kid import KernelInceptionDistance

    from giugan import compat
    from giugan.metrics.distributed import synchronised
    from giugan.metrics.score import PrecomputedFeatures

    kid = KernelInceptionDistance(feature=PrecomputedFeatures(2), subset_size=2)
    kid.update(torch.ones(3, 2), real=True)
    kid.update(torch.zeros(1, 2), real=True)
    with pytest.raises(KeyError), synchronised(kid, 2) as metric:
        assert [tuple(part.shape) for part in metric.real_features] == [(4, 2)]
        assert metric.fake_features[0].shape == (0, 2)  # an empty (0, width) part, never []
        raise KeyError("the block raises")
    assert not compat.is_synced(kid)


def test_seeded_is_reproducible_and_restores_the_generator() -> None:
    from giugan.metrics.distributed import seeded

    torch.manual_seed(5)
    with seeded():
        first = torch.rand(2)
    after = torch.rand(2)
    with seeded():
        assert torch.equal(torch.rand(2), first)
    torch.manual_seed(5)
    assert torch.equal(torch.rand(2), after)


def test_make_states_updatable_clones_inference_tensors() -> None:
    from giugan.metrics.distributed import make_states_updatable

    metrics = GenerativeMetrics(extractor="standin", kid=False, inception_score=False)
    with torch.inference_mode():
        metrics.reset_real()
    fid = metrics.scores["fid"].metric
    assert fid.real_features_sum.is_inference()
    make_states_updatable([fid])
    assert not fid.real_features_sum.is_inference()
