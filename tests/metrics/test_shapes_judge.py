"""The shapes judge: packaged weights, accuracy, its scores on four kinds of sets, its training."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from giugan.data.shapes import render_shape
from giugan.data.shapes_render import mode_index, render_labelled_shapes, shape_factors
from giugan.metrics.extractors import sha256_of_file
from giugan.metrics.shapes_judge import (
    SHAPES_JUDGE_SHA256,
    SHAPES_JUDGE_WEIGHTS,
    InvalidJudgeWeights,
    judge_images,
    load_shapes_judge,
    prepare_images,
)
from giugan.metrics.shapes_scores import shapes_judge_scores

pytestmark = pytest.mark.usefixtures("single_thread")

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_shapes_judge.py"


def test_packaged_weights_are_small_and_match_their_sha256() -> None:
    assert SHAPES_JUDGE_WEIGHTS.stat().st_size < 400_000
    assert sha256_of_file(SHAPES_JUDGE_WEIGHTS) == SHAPES_JUDGE_SHA256
    judge = load_shapes_judge()
    assert not judge.training
    assert all(not p.requires_grad for p in judge.parameters())


def test_an_altered_weights_file_is_refused_with_its_name(tmp_path: Path) -> None:
    altered = tmp_path / "judge.pt"
    shutil.copyfile(SHAPES_JUDGE_WEIGHTS, altered)
    with open(altered, "r+b") as handle:
        handle.seek(-100, 2)
        byte = handle.read(1)
        handle.seek(-100, 2)
        handle.write(bytes([byte[0] ^ 1]))
    with pytest.raises(InvalidJudgeWeights, match=re.escape(f"'{altered}' has sha256")):
        load_shapes_judge(altered, sha256=SHAPES_JUDGE_SHA256)
    with pytest.raises(InvalidJudgeWeights, match="does not exist"):
        load_shapes_judge(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a state dict")
    with pytest.raises(InvalidJudgeWeights, match="is not a shapes judge's state dict"):
        load_shapes_judge(tmp_path / "junk.pt")


def test_inputs_are_uint8_or_float_in_minus_one_one_at_any_size() -> None:
    images, _ = render_labelled_shapes(4, 64, seed=5)
    as_float = images.float() / 127.5 - 1
    torch.testing.assert_close(prepare_images(images), prepare_images(as_float))
    assert prepare_images(images).shape == (4, 3, 32, 32)
    with pytest.raises(ValueError, match="uint8 images in \\[0, 255\\] or float"):
        prepare_images(images.long())
    with pytest.raises(ValueError, match="shape \\(N, 3, H, W\\)"):
        prepare_images(images[:, :1])


@pytest.mark.parametrize("image_size", [16, 32, 64, 128])
def test_held_out_accuracy_of_every_head(image_size: int) -> None:
    images, labels = render_labelled_shapes(300, image_size, seed=77)
    outputs = judge_images(images)
    for head, probabilities in enumerate(outputs.probabilities):
        assert (probabilities.argmax(1) == labels[:, head]).float().mean() > 0.97, head


def single_mode(count: int, mode: int, seed: int) -> torch.Tensor:
    """``count`` renders (varied position and size) that all fall in one mode."""
    indices = [i for i in range(60 * count) if mode_index(*shape_factors(seed, i)[:3]) == mode]
    assert len(indices) >= count
    return torch.stack([torch.from_numpy(render_shape(seed, i, 32)) for i in indices[:count]])


def test_scores_separate_real_blurred_collapsed_and_noise() -> None:
    reference, _ = render_labelled_shapes(1000, 32, seed=0)
    real, labels = render_labelled_shapes(1000, 32, seed=7)
    # A real colour on a real background in a region that is no shape (blob, half-plane, ring,
    # band): what an untrained GAN draws. Drawn with a seed the training script never uses.
    shapeless, _ = load_script().make_shapeless(labels, torch.Generator().manual_seed(12345))
    # Blur unlike the training's Gaussian: down to 8 px and back up (bilinear).
    small = F.interpolate(real.float() / 127.5 - 1, size=8, mode="bilinear", antialias=True)
    blurred = F.interpolate(small, size=32, mode="bilinear", align_corners=False)
    sets = {
        "real": real,
        "blurred": blurred,
        "collapsed": single_mode(1000, mode_index(1, 3, 0), seed=7),  # yellow square on light
        "noise": torch.rand(1000, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1,
        "shapeless": shapeless.clamp(-1, 1),
    }
    scores = {name: shapes_judge_scores(images, reference) for name, images in sets.items()}
    print("\nset        recognisable  modes_covered  mode_balance  judge_frechet")
    for name, values in scores.items():
        print(
            f"{name:10s} {values['recognisable']:12.3f} {values['modes_covered']:14.0f} "
            f"{values['mode_balance']:13.4f} {values['judge_frechet']:14.3f}"
        )
    real_s, blurred_s, collapsed_s, noise_s, shapeless_s = (scores[k] for k in sets)
    assert real_s["recognisable"] > 0.95
    assert blurred_s["recognisable"] < 0.3 and noise_s["recognisable"] < 0.05
    assert shapeless_s["recognisable"] < 0.1
    assert collapsed_s["recognisable"] > 0.95
    assert real_s["modes_covered"] == 36 and collapsed_s["modes_covered"] == 1
    assert noise_s["modes_covered"] < 10
    assert real_s["mode_balance"] < 0.05
    assert collapsed_s["mode_balance"] > 3.0  # about log 36 = 3.58
    frechet = {name: values["judge_frechet"] for name, values in scores.items()}
    assert frechet["real"] * 10 < min(frechet["blurred"], frechet["collapsed"], frechet["noise"])


def load_script():
    spec = importlib.util.spec_from_file_location("train_shapes_judge", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_script_learns_and_is_deterministic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = load_script()
    arguments = ["--steps", "30", "--images-per-size", "64", "--held-out-per-size", "16"]
    first = script.main([*arguments, "--output", str(tmp_path / "a.pt")])
    losses = [float(x) for x in re.findall(r"loss (\d+\.\d+)", capsys.readouterr().out)]
    second = script.main([*arguments, "--output", str(tmp_path / "b.pt")])
    assert first["sha256"] == second["sha256"] == sha256_of_file(tmp_path / "a.pt")
    assert losses[-1] < 0.8 * losses[0]
    judge = load_shapes_judge(tmp_path / "a.pt", sha256=first["sha256"])
    assert set(first["held_out_accuracy"]) == {"16", "32", "48", "64", "128"}
    assert judge_images(torch.zeros(2, 3, 32, 32), judge).features.shape == (2, 64)
