"""Train the shapes judge (:mod:`giugan.metrics.shapes_judge`) deterministically on fresh renders.

    python scripts/train_shapes_judge.py                      # the packaged weights (~5 min, 1 thread)
    python scripts/train_shapes_judge.py --steps 20 --output /tmp/judge.pt

Training images are renders of the built-in shapes set with seed 1001 (the dataset's default seed
is 0; the held-out images use seed 2002), at 16, 32, 48 and 64 pixels, all resized to 32 by
:func:`~giugan.metrics.shapes_judge.prepare_images`. Inliers get Gaussian pixel noise and
sometimes a faint checkerboard (:func:`add_artifacts`).
Each batch also holds *outliers* with uniform targets (outlier exposure, Hendrycks et al. 2019,
"Deep Anomaly Detection with Outlier Exposure"), so that confidence means recognisable: renders
blurred by a Gaussian of sigma 1-3 px (uniform target for the shape head only: colour and
background stay visible), noise images, white or smooth (uniform targets for every head), and
*shapeless* images: a real colour on a real background in a region that is no shape of the set
(a smooth irregular blob, a half-plane, a ring or a band; uniform target for the shape head). The
last are what an untrained GAN draws; without them the shape head is confident on them.

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

from giugan.data.shapes import BACKGROUNDS, SHAPE_COLOURS
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


def add_artifacts(images: Tensor, generator: torch.Generator) -> Tensor:
    """Pixel noise (std 0-0.25) and, on a third of the images, a 2-pixel checkerboard of up to
    0.2 per channel: the texture of transposed convolutions early in training. Inliers and
    shapeless outliers both get it, so texture alone neither makes nor breaks a shape."""
    count = images.shape[0]
    noise_std = 0.25 * torch.rand(count, 1, 1, 1, generator=generator)
    images = images + noise_std * torch.randn(images.shape, generator=generator)
    side = images.shape[-1]
    checker = ((torch.arange(side)[:, None] + torch.arange(side)[None, :]) % 2).float() * 2 - 1
    amplitude = 0.2 * (torch.rand(count, 3, 1, 1, generator=generator) * 2 - 1)
    amplitude = amplitude * (torch.rand(count, 1, 1, 1, generator=generator) < 1 / 3)
    return images + amplitude * checker


def make_shapeless(labels: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Images in a real colour on a real background whose region is no circle, square or triangle.

    What a GAN draws before it has learnt the shapes: a smooth irregular blob (thresholded smooth
    noise), a half-plane split, a ring or a band, in the colour and on the background of
    ``labels`` (so those heads keep their labels), antialiased by 4x supersampling, half of them
    with softened edges, all with the inliers' noise and artifacts. Returns the images and the
    ``(N, 3)`` uniform-target mask (the shape head only).
    """
    count, big = labels.shape[0], 4 * 32
    axis = torch.linspace(-1, 1, big)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    masks = []
    for _ in range(count):
        kind = int(torch.randint(4, (), generator=generator))
        if kind == 0:  # a smooth irregular blob covering 10-40 % of the image
            side = int(torch.randint(3, 7, (), generator=generator))
            coarse = torch.rand(1, 1, side, side, generator=generator)
            field = F.interpolate(coarse, size=(big, big), mode="bicubic", align_corners=False)[0, 0]
            area = 0.1 + 0.3 * float(torch.rand((), generator=generator))
            masks.append(field > torch.quantile(field.flatten(), 1 - area))
            continue
        angle = float(torch.rand((), generator=generator)) * 2 * math.pi
        projection = x * math.cos(angle) + y * math.sin(angle)
        centre = (torch.rand(2, generator=generator) * 1.2 - 0.6).tolist()
        radius = torch.hypot(x - centre[0], y - centre[1])
        if kind == 1:  # a half-plane split
            masks.append(projection > float(torch.rand((), generator=generator)) * 1.4 - 0.7)
        elif kind == 2:  # a ring
            outer = 0.35 + 0.4 * float(torch.rand((), generator=generator))
            masks.append((radius < outer) & (radius > outer * (0.45 + 0.3 * float(torch.rand((), generator=generator)))))
        else:  # a band across the image
            offset = float(torch.rand((), generator=generator)) * 1.2 - 0.6
            width = 0.1 + 0.3 * float(torch.rand((), generator=generator))
            masks.append((projection - offset).abs() < width)
    mask = F.avg_pool2d(torch.stack(masks).float().unsqueeze(1), 4)
    colours = torch.tensor(SHAPE_COLOURS, dtype=torch.float32)[labels[:, 1]] / 127.5 - 1
    backgrounds = torch.tensor(BACKGROUNDS, dtype=torch.float32)[labels[:, 2]] / 127.5 - 1
    images = mask * colours[:, :, None, None] + (1 - mask) * backgrounds[:, :, None, None]
    sigma = float(0.5 + torch.rand((), generator=generator))  # soft edges on half of them
    soft = gaussian_blur(images, [5, 5], [sigma, sigma])
    images = torch.where(torch.rand(count, 1, 1, 1, generator=generator) < 0.5, soft, images)
    images = add_artifacts(images, generator)
    uniform = torch.zeros(count, 3, dtype=torch.bool)
    uniform[:, 0] = True
    return images, uniform


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
    """Adam with a cosine learning-rate schedule; ``batch_size`` inliers, a quarter as many
    blurred or noise outliers and a quarter as many shapeless ones."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    images, labels = render_pool(images_per_size, TRAIN_SIZES, TRAIN_SEED)
    judge = ShapesJudge()
    optimiser = torch.optim.Adam(judge.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(steps, 1))
    for step in range(steps):
        index = torch.randint(images.shape[0], (batch_size,), generator=generator)
        inliers = add_artifacts(prepare_images(images[index]), generator)
        quarter = batch_size // 4
        outliers, outlier_uniform = make_outliers(inliers[:quarter], generator)
        shapeless, shapeless_uniform = make_shapeless(labels[index[quarter : 2 * quarter]], generator)
        batch = torch.cat([inliers, outliers, shapeless]).clamp(-1, 1)
        batch_labels = torch.cat([labels[index], labels[index[:quarter]], labels[index[quarter : 2 * quarter]]])
        uniform = torch.cat([torch.zeros(batch_size, 3, dtype=torch.bool), outlier_uniform, shapeless_uniform])
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
