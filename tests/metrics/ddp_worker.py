"""Worker of the 2-process gloo test (a module of its own so that spawned children import it)."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from clip_networks import release_file
from dinov2_networks import release_checkpoint, tiny_dinov2

from giugan.metrics import GenerativeMetrics, dinov2

from .conftest import make_images

NUM_IMAGES = 120
# Uneven shares, and different numbers of update batches per rank (rank 0: 3, rank 1: 2).
SHARES = {0: [(0, 30), (30, 55), (55, 70)], 1: [(70, 100), (100, 120)]}
OPTIONS = {
    "extractor": "standin",
    "kid": True,
    "kid_subset_size": 40,
    "kid_subsets": 5,
    "inception_score_splits": 4,
    "precision_recall": True,
    "fd_dinov2": True,
    "dinov2_model": "vit_small_patch14_dinov2",
    "fd_clip": True,
}


def write_weights(folder: str | Path) -> None:
    """The tiny DINOv2 and CLIP files the scores on their own extractors read (written once)."""
    release_checkpoint(Path(folder) / "dinov2.pth")
    release_file(Path(folder) / "clip.pt")


def options(folder: str | Path) -> dict:
    """:data:`OPTIONS` with the weights of :func:`write_weights` (DINOv2's network shrunk to one
    block by the caller: ``monkeypatch`` in the test, :func:`run` in a spawned child)."""
    return OPTIONS | {"dinov2_weights_path": str(Path(folder) / "dinov2.pth"),
                      "clip_weights_path": str(Path(folder) / "clip.pt")}  # fmt: skip


def images() -> tuple[torch.Tensor, torch.Tensor]:
    return make_images(NUM_IMAGES, seed=20), make_images(NUM_IMAGES, seed=21, shift=0.1)


def single_process(cache_dir: str, weights: str) -> dict:
    """Reference numbers: one process sees every image (and writes the reference cache)."""
    real, fake = images()
    metrics = GenerativeMetrics(cache_dir=cache_dir, **options(weights))
    key = metrics.reference_key("ddp-test", NUM_IMAGES)
    metrics.update_real(real)
    metrics.save_reference(key)
    metrics.update_fake(fake)
    return metrics.compute()


def run(rank: int, world_size: int, init_file: str, out_dir: str, preloaded_cache: str, weights: str) -> None:
    torch.set_num_threads(1)
    dinov2.dinov2_network = lambda architecture: tiny_dinov2()  # a spawned child of its own
    settings = options(weights)
    real, fake = images()
    # Loaded before the process group exists (world of 1): compute() must re-shard it.
    early = GenerativeMetrics(cache_dir=preloaded_cache, **settings)
    early_hit = early.load_reference(early.reference_key("ddp-test", NUM_IMAGES))

    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size,
        timeout=timedelta(seconds=60),
    )  # fmt: skip
    try:
        cache = os.path.join(out_dir, "ddp-cache")
        fresh = GenerativeMetrics(cache_dir=cache, **settings)
        key = fresh.reference_key("ddp-test", NUM_IMAGES)
        fresh_hit = fresh.load_reference(key)
        for lo, hi in SHARES[rank]:
            fresh.update_real(real[lo:hi])
        path = fresh.save_reference(key)
        for lo, hi in SHARES[rank]:
            fresh.update_fake(fake[lo:hi])
        fresh_scores = fresh.compute()
        fresh_counts = fresh.last_counts

        loaded = GenerativeMetrics(cache_dir=cache, **settings)
        loaded_hit = loaded.load_reference(key)
        early_fake = [(lo, hi) for lo, hi in SHARES[rank]]
        for lo, hi in early_fake:
            loaded.update_fake(fake[lo:hi])
            early.update_fake(fake[lo:hi])
        result = {
            "rank": rank,
            "path": str(path),
            "fresh_hit": fresh_hit,
            "loaded_hit": loaded_hit,
            "early_hit": early_hit,
            "fresh": fresh_scores,
            "fresh_counts": fresh_counts,
            "loaded": loaded.compute(),
            "early": early.compute(),
        }
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as handle:
            json.dump(result, handle)
    finally:
        dist.destroy_process_group()
