"""``giugan export``: the generator alone, read back without Lightning, equal bit for bit on CPU.

Checkpoints come from real ``giugan fit`` runs of the shrunk quickstart (a GIU-GAN built from
``class_path``/``init_args``) and of the DCGAN baseline (``preset: dcgan_32``, with an EMA
generator); images are compared with ``torch.equal`` against the checkpoint loaded the normal
way (``GANModule.load_from_checkpoint(...).generate``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_quickstart import QUICKSTART, ROOT, TINY_QUICKSTART

from giugan.cli import main
from giugan.export import load_generator

from .test_wandb import read_run

pytestmark = pytest.mark.usefixtures("single_thread")
SHORT = ["--model.generator_iterations", "2", "--model.eval_every", "0", "--checkpoint.every_n_generator_iterations", "2",
         "--samples.every", "2", "--samples.num_samples", "4", "--trainer.enable_progress_bar", "false",
         "--trainer.enable_model_summary", "false"]
#: The DCGAN baseline of Table 5 (its full-size preset), with an EMA generator, 8 images a batch.
DCGAN = ["--trainer.accelerator", "cpu", "--model.generator", "null", "--model.discriminator", "null",
         "--model.preset", "dcgan_32", "--model.loss", "giugan.losses.NonSaturatingLoss", "--model.loss.init_args.gp_weight", "0",
         "--model.ema_decay", "0.9", "--model.metrics", "null", "--data.init_args.batch_size", "8",
         "--data.init_args.num_images", "32"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``last.ckpt`` of a 2-iteration tiny quickstart GIU-GAN and of a DCGAN with EMA."""
    folder = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "disabled")
        patch.chdir(folder)
        assert main(["fit", "--config", QUICKSTART, *TINY_QUICKSTART, *SHORT, "--run_name", "giu"]) == 0
        assert main(["fit", "--config", QUICKSTART, *DCGAN, *SHORT, "--run_name", "dcgan"]) == 0
    return {name: folder / "runs" / name / "checkpoints" / "last.ckpt" for name in ("giu", "dcgan")}


def noise(count: int = 6) -> torch.Tensor:
    return torch.randn(count, 128, generator=torch.Generator().manual_seed(7))


def checkpoint_images(checkpoint: Path, latents: torch.Tensor) -> torch.Tensor:
    """Images of the checkpoint loaded the way Lightning users do."""
    from giugan.training.module import GANModule

    return GANModule.load_from_checkpoint(checkpoint, map_location="cpu").generate(latents)


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", ["giu", "dcgan"])
def test_export_equals_the_checkpoint_bit_for_bit(checkpoints: dict[str, Path], name: str, tmp_path: Path) -> None:
    output = tmp_path / "export"
    assert main(["export", str(checkpoints[name]), "--output", str(output)]) == 0
    assert sorted(p.name for p in output.iterdir()) == ["generator.json", "generator.safetensors"]
    description = json.loads((output / "generator.json").read_text())
    assert description["z_dim"] == 128 and description["mode"] == "eval"
    assert description["source"] == {**description["source"], "checkpoint": "last.ckpt", "generator_iteration": 2}
    if name == "giu":
        assert description["generator"]["class_path"] == "giugan.nets.Generator"
        assert description["generator"]["init_args"]["inserts"]["1"]["class_path"] == "giugan.ops.GIU"
        assert description["ema"] is False
    else:
        assert description["generator"] == {"preset": "dcgan_32"} and description["ema"] is True
    generator = load_generator(output)
    latents = noise()
    with torch.no_grad():
        exported = generator(latents)
    assert exported.shape == (6, 3, 32, 32) and not generator.training
    assert torch.equal(exported, checkpoint_images(checkpoints[name], latents))


def test_the_ema_generator_is_the_one_exported(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    """DCGAN run with EMA: the export is the EMA copy, whose images differ from the raw G's."""
    from giugan.training.module import GANModule

    assert main(["export", str(checkpoints["dcgan"]), "--output", str(tmp_path / "e")]) == 0
    module = GANModule.load_from_checkpoint(checkpoints["dcgan"], map_location="cpu")
    exported = load_generator(tmp_path / "e").state_dict()
    assert all(torch.equal(exported[k], v) for k, v in module.generator_ema.state_dict().items())
    assert not all(torch.equal(exported[k], v) for k, v in module.generator.state_dict().items())


def test_loading_imports_no_lightning(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    """A fresh interpreter loads the export and draws the checkpoint's images without Lightning."""
    output = tmp_path / "export"
    assert main(["export", str(checkpoints["giu"]), "--output", str(output)]) == 0
    latents = noise(4)
    torch.save({"latents": latents, "images": checkpoint_images(checkpoints["giu"], latents)}, tmp_path / "expected.pt")
    script = (
        "import sys, torch\n"
        "torch.set_num_threads(1)  # as the expected images were drawn (float sums follow threads)\n"
        "from giugan.export import load_generator\n"
        f"generator = load_generator({str(output)!r})\n"
        f"expected = torch.load({str(tmp_path / 'expected.pt')!r})\n"
        "with torch.no_grad():\n"
        "    images = generator(expected['latents'])\n"
        "assert torch.equal(images, expected['images'])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning'))\n"
        "assert not loaded, loaded\n"
        "print('equal', tuple(images.shape))\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, env=environment,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "equal (4, 3, 32, 32)"


@pytest.mark.parametrize("name", ["giu", "dcgan"])
def test_torchscript_equals_the_checkpoint_at_any_batch_size(
    checkpoints: dict[str, Path], name: str, tmp_path: Path
) -> None:
    output = tmp_path / "export"
    assert main(["export", str(checkpoints[name]), "--output", str(output), "--torchscript"]) == 0
    traced = torch.jit.load(str(output / "generator.torchscript.pt"))
    for count in (1, 5):  # traced with 2 latents
        latents = noise(count)
        with torch.no_grad():
            assert torch.equal(traced(latents), checkpoint_images(checkpoints[name], latents))


def test_default_folder_and_overwrite(checkpoints: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """Default ``<run dir>/export/<checkpoint name>``; a second export needs --overwrite."""
    checkpoint = checkpoints["giu"]
    output = checkpoint.parent.parent / "export" / "last"
    assert main(["export", str(checkpoint)]) == 0
    assert str(output) in capsys.readouterr().out
    (output / "note.txt").write_text("mine")
    before = files_of(output.parent)
    assert main(["export", str(checkpoint)]) == 2
    error = capsys.readouterr().err
    assert "already holds files" in error and "--overwrite" in error and str(output) in error
    assert files_of(output.parent) == before  # refused: nothing changed
    assert main(["export", str(checkpoint), "--overwrite", "--torchscript"]) == 0
    assert sorted(p.name for p in output.iterdir()) == [
        "generator.json", "generator.safetensors", "generator.torchscript.pt"]
    assert sorted(p.name for p in output.parent.iterdir()) == ["last"]  # no temporaries left


def test_bad_input_is_one_paragraph_and_changes_nothing(
    checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_checkpoint = tmp_path / "config.ckpt"
    not_a_checkpoint.write_text("model: {}\n")
    cases = [
        ([str(tmp_path / "missing.ckpt")], "missing.ckpt: no such file"),
        ([str(not_a_checkpoint)], "config.ckpt: not a PyTorch checkpoint"),
        ([str(tmp_path)], "is a folder, not a checkpoint file"),
        ([str(checkpoints["giu"]), "--wandb-artifact", "a b"], "--wandb-artifact 'a b'"),
    ]
    before = files_of(tmp_path)
    for arguments, words in cases:
        assert main(["export", *arguments, "--output", str(tmp_path / "out")]) == 2
        error = capsys.readouterr().err
        assert error.startswith("giugan: ") and words in error, error
        assert len(error.strip().splitlines()) == 2  # the paragraph and the GIUGAN_DEBUG hint
        assert files_of(tmp_path) == before and not (tmp_path / "out").exists()


def test_missing_export_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="generator.json: no such file"):
        load_generator(tmp_path)


def _md5(path: Path) -> str:
    return base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode()


def test_export_is_logged_as_a_wandb_model_artifact(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    """Offline: the export run's record holds the artifact with both files, digests equal to theirs."""
    output = tmp_path / "run" / "export" / "last"
    # In a process of its own, as from the console: a W&B session of this test process would
    # outlive the command and change where later in-process runs of other tests write.
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "giugan", "export", str(checkpoints["giu"]), "--output",
                           str(output), "--wandb-artifact", "tiny-giu-generator"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    (offline_run,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    record = read_run(offline_run, ready=lambda r: bool(r["artifacts"]))
    (artifact,) = record["artifacts"]
    assert (artifact.name, artifact.type) == ("tiny-giu-generator", "model")
    assert "last" in artifact.aliases
    assert record["run"].job_type == "export"
    entries = {entry.path: entry.digest for entry in artifact.manifest.contents}
    assert entries == {name: _md5(output / name) for name in ("generator.json", "generator.safetensors")}
    assert json.loads(artifact.metadata)["z_dim"] == 128


def test_weights_that_do_not_fit_the_description_are_named(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    """generator.json of the GIU-GAN beside the DCGAN's weights: a ValueError naming the file."""
    giu, dcgan = tmp_path / "giu", tmp_path / "dcgan"
    assert main(["export", str(checkpoints["giu"]), "--output", str(giu)]) == 0
    assert main(["export", str(checkpoints["dcgan"]), "--output", str(dcgan)]) == 0
    (giu / "generator.safetensors").write_bytes((dcgan / "generator.safetensors").read_bytes())
    with pytest.raises(ValueError, match=r"generator.safetensors: the weights do not fit the network generator.json"):
        load_generator(giu)
