"""What ``giugan`` prints: readable ``--help`` and no library notices a user cannot act on."""

from __future__ import annotations

import warnings
from typing import Any


class _DropLightningTips:
    """A logging filter dropping Lightning's advertising tips (nothing a giugan user can act on)."""

    def filter(self, record: Any) -> bool:
        return not str(record.getMessage()).startswith("💡 Tip")


class _DropDistributedBanner:
    """A logging filter dropping Lightning's start-up banner of a DDP run (a line per rank and a
    five-line block): giugan's own line ("DDP over N processes ... collective timeout ...", see
    giugan/training/distributed.py) says the same once, with the settings a user can change."""

    def filter(self, record: Any) -> bool:
        message = str(record.getMessage())
        return not (message.startswith("Initializing distributed: GLOBAL_RANK")
                    or "All distributed processes registered" in message)


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
      rank), fixed on torchdata's side, not ours;
    * Lightning's DDP start-up banner, which giugan's own line about the run replaces.
    """
    import logging

    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    warnings.filterwarnings("ignore", message=r"Your `IterableDataset` has `__len__` defined")
    warnings.filterwarnings("ignore", message=r"'set_vital' is deprecated", module=r"torchdata\.")
    # Lightning's rank-zero messages go to the logger of whichever of its packages was imported
    # last (``lightning.pytorch`` or ``lightning.fabric``), its per-rank ones to the module's own.
    for name, kinds in (("lightning.pytorch.utilities.rank_zero", (_DropLightningTips, _DropDistributedBanner)),
                        ("lightning.fabric.utilities.rank_zero", (_DropLightningTips, _DropDistributedBanner)),
                        ("lightning.fabric.utilities.distributed", (_DropDistributedBanner,))):
        logger = logging.getLogger(name)
        for kind in kinds:
            if not any(isinstance(f, kind) for f in logger.filters):
                logger.addFilter(kind())


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
