"""Two CPU processes (gloo) give the same scores as one process on all images."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from giugan.metrics import GenerativeMetrics

from . import ddp_worker


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    preloaded_cache = str(tmp_path / "single-cache")
    expected = ddp_worker.single_process(preloaded_cache)

    context = mp.start_processes(
        ddp_worker.run,
        args=(2, str(tmp_path / "init"), str(tmp_path), preloaded_cache),
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
    assert written["kid_real_features"].shape == single["kid_real_features"].shape
    for name in single:
        torch.testing.assert_close(written[name], single[name], rtol=1e-5, atol=1e-5)
    # ... and loads in a single process to the same FID
    metrics = GenerativeMetrics(
        cache_dir=str(Path(results[0]["path"]).parent), **ddp_worker.OPTIONS
    )
    assert metrics.load_reference(metrics.reference_key("ddp-test", ddp_worker.NUM_IMAGES))
    metrics.update_fake(ddp_worker.images()[1])
    assert metrics.compute()["fid"] == pytest.approx(expected["fid"], rel=1e-4)
