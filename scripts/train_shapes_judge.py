"""Train the shapes judge (:mod:`giugan.metrics.shapes_judge`) deterministically on fresh renders.

    python scripts/train_shapes_judge.py                      # the packaged weights (~5 min, 1 thread)
    python scripts/train_shapes_judge.py --steps 20 --output /tmp/judge.pt

Training images are renders of the built-in shapes set with seed 1001 (the dataset's default seed
is 0; the held-out images use seed 2002), at 16, 32, 48 and 64 pixels, all resized to 32 by
:func:`~giugan.metrics.shapes_judge.prepare_images`. Inliers get a little Gaussian pixel noise.
Each batch also holds *outliers* with uniform targets (outlier exposure, Hendrycks et al. 2019,
"Deep Anomaly Detection with Outlier Exposure"), so that confidence means recognisable: renders
blurred by a Gaussian of sigma 1-3 px (uniform target for the shape head only: colour and
background stay visible) and noise images, white or smooth (uniform targets for every head).

One intra-op thread, fixed seeds and deterministic algorithms: the same command gives the same
weights on the same machine. Prints the held-out accuracy per head and image size as JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.functional import gaussian_blur

from giugan.data.shapes_render import render_labelled_shapes
from giugan.metrics.extractors import sha256_of_file
from giugan.metrics.shapes_judge import (
    HEAD_SIZES,
    SHAPES_JUDGE_WEIGHTS,
    ShapesJudge,
    judge_images,
    prepare_images,
)

TRAIN_SEED, HELD_OUT_SEED = 1001, 2002
TRAIN_SIZES = (16, 32, 48, 64)
HELD_OUT_SIZES = (16, 32, 48, 64, 128)
HEADS = ("shape", "colour", "background")


def render_pool(images_per_size: int, sizes: tuple[int, ...], seed: int) -> tuple[Tensor, Tensor]:
    """Renders at every size (distinct images per size), resized to the judge's side, as uint8."""
    images, labels = [], []
    for position, size in enumerate(sizes):
        batch, batch_labels = render_labelled_shapes(
            images_per_size, size, seed, start=position * images_per_size
        )
        images.append(((prepare_images(batch) + 1) * 127.5).round().to(torch.uint8))
        labels.append(batch_labels)
    return torch.cat(images), torch.cat(labels)


def make_outliers(inliers: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Blurred copies of the first half of ``inliers`` and noise images for the second half.

    Returns the images and a ``(N, 3)`` bool mask: True where a head's target is uniform.
    """
    half = inliers.shape[0] // 2
    sigma = float(1.0 + 2.0 * torch.rand((), generator=generator))
    kernel = 2 * math.ceil(3 * sigma) + 1
    blurred = gaussian_blur(inliers[:half], [kernel, kernel], [sigma, sigma])
    count = inliers.shape[0] - half
    white = torch.rand(count, 3, 32, 32, generator=generator) * 2 - 1
    coarse_side = int(torch.randint(2, 9, (), generator=generator))
    coarse = torch.rand(count, 3, coarse_side, coarse_side, generator=generator) * 2 - 1
    smooth = F.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)
    noise = torch.where(torch.rand(count, 1, 1, 1, generator=generator) < 0.5, white, smooth)
    uniform = torch.zeros(inliers.shape[0], 3, dtype=torch.bool)
    uniform[:half, 0] = True
    uniform[half:] = True
    return torch.cat([blurred, noise]), uniform


def judge_loss(logits: list[Tensor], labels: Tensor, uniform: Tensor) -> Tensor:
    """Cross-entropy per head against the label, or against the uniform target where masked."""
    total = logits[0].new_zeros(())
    for head, head_logits in enumerate(logits):
        log_probabilities = head_logits.log_softmax(dim=1)
        labelled = -log_probabilities.gather(1, labels[:, head : head + 1]).squeeze(1)
        total = total + torch.where(uniform[:, head], -log_probabilities.mean(1), labelled).mean()
    return total


def train(
    steps: int,
    batch_size: int = 128,
    images_per_size: int = 10000,
    seed: int = 0,
    learning_rate: float = 2e-3,
) -> ShapesJudge:
    """Adam with a cosine learning-rate schedule; ``batch_size`` inliers + a quarter outliers."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    images, labels = render_pool(images_per_size, TRAIN_SIZES, TRAIN_SEED)
    judge = ShapesJudge()
    optimiser = torch.optim.Adam(judge.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(steps, 1))
    for step in range(steps):
        index = torch.randint(images.shape[0], (batch_size,), generator=generator)
        inliers = prepare_images(images[index])
        noise_std = 0.1 * torch.rand(batch_size, 1, 1, 1, generator=generator)
        inliers = inliers + noise_std * torch.randn(inliers.shape, generator=generator)
        outliers, outlier_uniform = make_outliers(inliers[: batch_size // 4], generator)
        batch = torch.cat([inliers, outliers]).clamp(-1, 1)
        batch_labels = torch.cat([labels[index], labels[index[: batch_size // 4]]])
        uniform = torch.cat([torch.zeros(batch_size, 3, dtype=torch.bool), outlier_uniform])
        _, logits = judge(batch)
        loss = judge_loss(logits, batch_labels, uniform)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 250 == 0 or step == steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}", flush=True)
    return judge.eval().requires_grad_(False)


def held_out_accuracy(judge: ShapesJudge, images_per_size: int) -> dict[str, dict[str, float]]:
    """Accuracy per head and image size on renders with the held-out seed."""
    report: dict[str, dict[str, float]] = {}
    for size in HELD_OUT_SIZES:
        images, labels = render_labelled_shapes(images_per_size, size, HELD_OUT_SEED)
        outputs = judge_images(images, judge)
        report[str(size)] = {
            name: float((p.argmax(1) == labels[:, head]).float().mean())
            for head, (name, p) in enumerate(zip(HEADS, outputs.probabilities))
        }
    return report


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Train, write the state dict, print (and return) its sha256 and held-out accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=SHAPES_JUDGE_WEIGHTS)
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--images-per-size", type=int, default=10000)
    parser.add_argument("--held-out-per-size", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    judge = train(args.steps, args.batch_size, args.images_per_size, args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # Through a buffer: torch.save names the archive's root folder after a file, not a buffer, so
    # the bytes (and sha256) then depend on the weights only.
    buffer = io.BytesIO()
    torch.save(judge.state_dict(), buffer)
    args.output.write_bytes(buffer.getvalue())
    report = {
        "output": str(args.output),
        "sha256": sha256_of_file(args.output),
        "bytes": args.output.stat().st_size,
        "held_out_accuracy": held_out_accuracy(judge, args.held_out_per_size),
        "head_sizes": HEAD_SIZES,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
