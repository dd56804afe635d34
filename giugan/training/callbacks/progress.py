"""A progress bar that counts what the papers count: generator iterations, shown as integers."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import TQDMProgressBar


class GeneratorIterationProgressBar(TQDMProgressBar):
    """Lightning's TQDM bar with ``g_iter`` (the generator iteration) shown as an integer.

    Values logged with ``prog_bar=True`` reach the bar as floats (``g_iter=566.0``); the
    generator iteration is a count, so it is shown as one. The run's version tag is left out:
    the run directory already names the run.
    """

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        if "g_iter" in items:
            items["g_iter"] = int(items["g_iter"])
        return items
