"""Evaluation glue between ``GANModule``, the data module's reference images and the metrics.

The metric protocol (extractor, resize, quantisation, sample counts) lives in
``giugan.metrics``; this file decides *when* and *on what*: the generator (EMA if on) in the
configured mode, ``num_fake`` samples split across ranks with per-rank seeds, the data module's
reference split for the real statistics (loaded from the on-disk cache when possible), and
best-over-run / last bookkeeping with a ``best.ckpt`` by FID.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import TYPE_CHECKING, Any

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torch.utils.data import DataLoader, Subset

from giugan.metrics import quantize_images
from giugan.seeding import step_generator

if TYPE_CHECKING:
    from giugan.training.module import GANModule


class Evaluator:
    """Runs the metrics for a :class:`~giugan.training.module.GANModule` (not an ``nn.Module``)."""

    def __init__(self, module: GANModule) -> None:
        self._module = module
        self._reference_ready = False
        self._loop_needs_real = False
        self._warned_unavailable = False
        self.best: dict[str, float] = {}
        self.last: dict[str, float] = {}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"best": dict(self.best), "last": dict(self.last)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = dict(state.get("best", {}))
        self.last = dict(state.get("last", {}))

    # ------------------------------------------------------------------ helpers
    def _ready_metrics(self, required: bool) -> Any:
        metrics = self._module.metrics
        if metrics is None:
            if required:
                raise ValueError(
                    "No metrics are configured, so there is nothing to validate or test. Set "
                    "model.init_args.metrics (class_path: giugan.metrics.GenerativeMetrics) in the "
                    "config; see configs/quickstart.yaml."
                )
            return None
        if not metrics.available:
            if not self._warned_unavailable:
                warnings.warn(f"Metrics are disabled for this run: {metrics.unavailable_reason}")
                self._warned_unavailable = True
            if required:
                raise RuntimeError(f"Cannot evaluate: {metrics.unavailable_reason}")
            return None
        return metrics

    def _datamodule(self) -> Any:
        datamodule = getattr(self._module.trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "reference_id"):
            raise ValueError(
                "Evaluation needs a giugan data module (one with a `reference_id` and a reference "
                "split in val_dataloader()); pass one with --data."
            )
        return datamodule

    def _reference_key(self, metrics: Any) -> dict[str, Any]:
        datamodule = self._datamodule()
        return metrics.reference_key(datamodule.reference_id, datamodule.num_reference_images)

    def _world(self) -> tuple[int, int]:
        trainer = self._module.trainer
        return trainer.global_rank, trainer.world_size

    def _fill_reference_from_loader(self, metrics: Any) -> None:
        """Real statistics from this rank's shard of the reference images, then cache them."""
        datamodule = self._datamodule()
        loader = datamodule.val_dataloader()
        rank, world = self._world()
        if world > 1:
            indices = list(range(rank, len(loader.dataset), world))
            loader = DataLoader(
                Subset(loader.dataset, indices),
                batch_size=loader.batch_size,
                num_workers=loader.num_workers,
                shuffle=False,
            )
        for batch in loader:
            self.update_real(batch, force=True)
        metrics.save_reference(self._reference_key(metrics))

    def update_real(self, batch: Tensor, force: bool = False) -> None:
        """Add a batch of real images in [-1, 1] to the real statistics when they are needed."""
        metrics = self._module.metrics
        if metrics is None or not metrics.available or not (force or self._loop_needs_real):
            return
        metrics.update_real(quantize_images(batch.to(self._module.device)))

    def _generate_fakes(self, metrics: Any) -> int:
        """Update the fake statistics with this rank's share of ``num_fake`` samples."""
        module = self._module
        rank, world = self._world()
        total = int(metrics.num_fake)
        local = total // world + (1 if rank < total % world else 0)
        batch_size = int(getattr(self._datamodule(), "eval_batch_size", 250))
        rng = step_generator(module.hparams.seed, rank, "evaluation", module.device)
        done = 0
        while done < local:
            n = min(batch_size, local - done)
            latents = torch.randn(n, module.z_dim, device=module.device, generator=rng)
            metrics.update_fake(quantize_images(module.generate(latents)))
            done += n
        return total

    def _record(self, values: dict[str, float]) -> bool:
        """Store ``values`` as last; return True when they are the best so far (lowest FID)."""
        values = {k: float(v) for k, v in values.items()}
        self.last = {**values, "generator_iteration": self._module.generator_iteration}
        criterion = "fid" if "fid" in values else "is_mean"
        if criterion not in values:
            return False
        better = (
            not self.best
            or (criterion == "fid" and values["fid"] < self.best.get("fid", float("inf")))
            or (criterion == "is_mean" and values["is_mean"] > self.best.get("is_mean", float("-inf")))
        )
        if better:
            self.best = dict(self.last)
        return better

    def _log(self, values: dict[str, float]) -> None:
        logged = {f"eval/{k}": float(v) for k, v in values.items()}
        logged.update({f"eval/best_{k}": float(v) for k, v in self.best.items() if k != "generator_iteration"})
        self._module.log_at_iteration(logged)

    # ------------------------------------------------------------------ during fit
    @torch.no_grad()
    def evaluate_during_fit(self) -> dict[str, float]:
        """Evaluate now (every ``eval_every`` generator iterations and at the end of fit)."""
        metrics = self._ready_metrics(required=False)
        if metrics is None:
            return {}
        if not self._reference_ready:
            if not metrics.load_reference(self._reference_key(metrics)):
                self._fill_reference_from_loader(metrics)
            self._reference_ready = True
        metrics.reset_fake()
        self._generate_fakes(metrics)
        values = metrics.compute()
        is_best = self._record(values)
        self._log(values)
        rank_zero_info(
            f"[giugan] generator iteration {self._module.generator_iteration}: "
            + ", ".join(f"{k}={v:.4f}" for k, v in values.items())
        )
        callback = getattr(self._module.trainer, "checkpoint_callback", None)
        if is_best and callback is not None and callback.dirpath:
            self._module.trainer.save_checkpoint(os.path.join(callback.dirpath, "best.ckpt"))
        return values

    # ------------------------------------------------------------------ validate / test loops
    def start_loop_evaluation(self) -> None:
        metrics = self._ready_metrics(required=True)
        self._loop_needs_real = not metrics.load_reference(self._reference_key(metrics))
        if self._loop_needs_real and self._world()[1] > 1:
            # Lightning's DistributedSampler pads the loop's batches with repeats; shard exactly.
            self._fill_reference_from_loader(metrics)
            self._loop_needs_real = False

    @torch.no_grad()
    def finish_loop_evaluation(self, write_report: bool) -> dict[str, float]:
        metrics = self._ready_metrics(required=True)
        if self._loop_needs_real:
            metrics.save_reference(self._reference_key(metrics))
            self._loop_needs_real = False
        metrics.reset_fake()
        num_fake = self._generate_fakes(metrics)
        values = metrics.compute()
        self._record(values)
        self._log(values)
        for name, value in values.items():
            self._module.log(name, float(value), sync_dist=False, rank_zero_only=True)
        if write_report and self._module.trainer.is_global_zero:
            self._write_report(metrics, values, num_fake)
        return values

    def _write_report(self, metrics: Any, values: dict[str, float], num_fake: int) -> str:
        module = self._module
        trainer = module.trainer
        datamodule = self._datamodule()
        output_dir = trainer.log_dir or trainer.default_root_dir
        os.makedirs(output_dir, exist_ok=True)
        report = {
            **{k: float(v) for k, v in values.items()},
            "generator_iteration": module.generator_iteration,
            "checkpoint": getattr(trainer, "ckpt_path", None),
            "protocol": {
                **metrics.protocol(),
                "reference": datamodule.reference_id,
                "num_real": int(datamodule.num_reference_images),
                "num_fake": num_fake,
                "generator": ("EMA generator" if module.generator_ema is not None else "generator")
                + f" in {module.hparams.eval_generator_mode} mode",
                "seed": module.hparams.seed,
                "world_size": trainer.world_size,
            },
        }
        path = os.path.join(output_dir, "eval.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(report, handle, indent=2, default=str)
        os.replace(tmp, path)
        rank_zero_info(f"[giugan] wrote {path}")
        return path
