"""Progress and summary in what the papers count: generator iterations, and G/D Params and MACs."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import ModelSummary, TQDMProgressBar
from lightning.pytorch.utilities import rank_zero_info


class GeneratorIterationProgressBar(TQDMProgressBar):
    """Lightning's TQDM bar counting generator iterations of the whole run, not batches of an epoch.

    The training bar reads ``<generator iteration>/<model.generator_iterations>`` with tqdm's rate
    (it/s = generator iterations per second) and ETA, across epochs and from a resumed iteration
    on (the rate counts this attempt only). Values logged with ``prog_bar=True`` reach the bar as
    floats (``g_iter=566.0``); the generator iteration is a count, so it is shown as one. The
    run's version tag is left out: the run directory already names the run.
    """

    _started = False

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        if "g_iter" in items:
            items["g_iter"] = int(items["g_iter"])
        return items

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self._started:  # one bar for the whole run: epochs do not reset it
            return
        self._started = True
        bar = self.train_progress_bar
        iteration = int(getattr(pl_module, "generator_iteration", 0))
        bar.reset(total=int(pl_module.hparams.generator_iterations))
        bar.initial = bar.n = iteration
        bar.set_description("Generator iterations")

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        bar = self.train_progress_bar
        iteration = int(getattr(pl_module, "generator_iteration", 0))
        if bar.disable or not (iteration % max(1, self.refresh_rate) == 0 or iteration == bar.total):
            return
        bar.n = iteration
        bar.refresh()
        postfix = self.get_metrics(trainer, pl_module)
        postfix.pop("g_iter", None)  # the counter itself is the generator iteration
        bar.set_postfix(postfix)


class GeneratorDiscriminatorSummary(ModelSummary):
    """The model summary as giugan counts it: trainable Params and MACs of G and D at batch 1.

    Lightning's table lists the module's children with a FLOPs column that stays 0 for networks
    it does not trace; here the counts follow ``docs/counting.md`` (``giugan profile``'s rules,
    ReLU counted as 0).
    """

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if not self._max_depth or not trainer.is_global_zero:
            return
        from giugan.profiling.counting import count_pair

        counts = count_pair(pl_module.generator, pl_module.discriminator)
        rows = [
            ("generator", type(pl_module.generator).__name__, counts.generator_params, counts.generator()),
            ("discriminator", type(pl_module.discriminator).__name__, counts.discriminator_params,
             counts.discriminator()),
            ("total", "", counts.params, counts.macs()),
        ]
        lines = [f"  {'':<14}{'class':<22}{'Params':>12}{'MACs (batch 1)':>18}"]
        lines += [f"  {name:<14}{kind:<22}{params / 1e6:>11.3f}M{macs / 1e6:>17.2f}M"
                  for name, kind, params, macs in rows]
        #: The last table shown.
        self.table = "Model (giugan counts, docs/counting.md):\n" + "\n".join(lines)
        rank_zero_info(self.table)
