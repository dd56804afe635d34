"""What ``giugan`` prints: readable ``--help`` and no library notices a user cannot act on."""

from __future__ import annotations

import warnings
from typing import Any


class _DropLightningTips:
    """A logging filter dropping Lightning's advertising tips (nothing a giugan user can act on)."""

    def filter(self, record: Any) -> bool:
        return not str(record.getMessage()).startswith("💡 Tip")


def quiet_library_notices() -> None:
    """Silence library notices a giugan user cannot act on, each matched precisely.

    * Lightning's "Tip" about its LitLogger product;
    * Lightning's own use of a deprecated torch pytree API (``isinstance(treespec, LeafSpec)``),
      fixed on Lightning's side, not ours;
    * Lightning's caution about an ``IterableDataset`` with ``__len__`` under several loader
      workers: the only one in giugan is the evaluation's sample counts
      (``giugan.training.evaluation.SampleBatches``), already split per rank and loaded without
      workers, so the caution never applies (giugan's image datasets are map-style);
    * torchdata's own call of torch's deprecated ``set_vital`` (printed once per loader, on every
      rank), fixed on torchdata's side, not ours.
    """
    import logging

    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    warnings.filterwarnings("ignore", message=r"Your `IterableDataset` has `__len__` defined")
    warnings.filterwarnings("ignore", message=r"'set_vital' is deprecated", module=r"torchdata\.")
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropLightningTips) for f in rank_zero.filters):
        rank_zero.addFilter(_DropLightningTips())


def giugan_help_formatter() -> type:
    """jsonargparse's help formatter with long "known subclasses" lists cut to giugan's own classes.

    A ``torch.nn.Module`` argument (the generator, the discriminator, an insert) would otherwise
    list every ``torch.nn`` class imported so far, about 80 of them, in ``giugan fit --help``.
    """
    import re

    from jsonargparse import DefaultHelpFormatter

    known = re.compile(r", known subclasses: ([^)]*)")

    def shorten(match: re.Match[str]) -> str:
        paths = [p.strip() for p in match.group(1).split(",")]
        if len(paths) <= 12:
            return match.group(0)
        rank = ("giugan.nets.", "giugan.ops.", "giugan.data.", "giugan.training.loggers.", "giugan.")
        own = sorted((p for p in paths if p.startswith(rank[:-1])), key=lambda p: next(
            i for i, prefix in enumerate(rank) if p.startswith(prefix)))
        shown = ", e.g. " + ", ".join(own[:8]) + " or" if own else ","
        return f"{shown} any of {len(paths)} importable subclasses"

    class GiuganHelpFormatter(DefaultHelpFormatter):
        def _get_help_string(self, action: Any) -> str:
            return known.sub(shorten, super()._get_help_string(action) or "")

    return GiuganHelpFormatter
