"""What the command line shows when a command fails: one paragraph and an exit status.

* Bad input (a value, a file, a YAML, a checkpoint, a run directory in use), a NaN/inf stop and
  a fault of the machine (no GPU, a full disk, permissions: :mod:`giugan.cli.explanations`)
  exit with status 2 and the paragraph that names the key, file or value and the fix.
* A command stopped by SIGTERM or SIGINT exits with 143 or 130: a fit after its checkpoint;
  ``validate``/``test``/``predict`` without a partial record.
* A DDP run that lost a rank exits with status 1 and names it (:mod:`giugan.training.lost_ranks`).

Anything else is a bug and keeps its traceback. Set ``GIUGAN_DEBUG=1`` to see the full traceback
of every failure.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from giugan.cli.explanations import explain
from giugan.cli.paragraphs import one_paragraph
from giugan.rank_reports import DEBUG_VARIABLE, say_once

USER_ERROR_STATUS = 2


def _user_error_types() -> tuple[type[BaseException], ...]:
    """The exception types that are the user's to fix (those of modules a command never imported
    cannot have been raised, so a light command such as ``giugan profile`` imports nothing here)."""
    types: list[type[BaseException]] = [ValueError, OSError]
    if "jsonargparse" in sys.modules:
        from jsonargparse import ArgumentError

        types.append(ArgumentError)
    if "lightning" in sys.modules:
        # Lightning's word for a trainer setting this machine cannot honour.
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        types.append(MisconfigurationException)
    if "giugan.metrics.extractors" in sys.modules:
        from giugan.metrics.extractors import WeightsUnavailable

        types.append(WeightsUnavailable)  # Inception, DINOv2: a missing weights file
    if "giugan.training.callbacks.guards" in sys.modules:
        # A NaN/inf stop says what went bad, that the checkpoints are the last good state, and
        # the resume that continues; its traceback would only bury that.
        from giugan.training.callbacks.guards import NonFiniteError

        types.append(NonFiniteError)
    if "giugan.training.run_directory" in sys.modules:
        from giugan.training.run_directory import RunDirectoryInUseError

        types.append(RunDirectoryInUseError)
    return tuple(types)


def run_reporting_errors(command: Callable[[], int], in_process: bool = False) -> int:
    """Run ``command``; turn user errors and signal stops into a paragraph and an exit status.

    After a signal stop the process keeps ignoring further signals until it exits (a console run
    ends right after), unless ``in_process`` (``main(argv)`` called from Python), where the
    previous handlers are put back.
    """
    started = False
    _signal_stops().clear()  # a stop of an earlier command in this process is not this one's
    try:
        status = command()
        started = True
        return status
    except BaseException as error:
        stops = _signal_stops()
        started = bool(stops) or _training_started()
        if stops and _is_stop_after_batch(error):
            from giugan.training.callbacks.signals import EXIT_STATUS

            stop = stops.pop()
            print(f"giugan: {stop}", file=sys.stderr)
            if in_process:
                stop.callback.restore_handlers()
            return EXIT_STATUS.get(stop.signum, 1)
        lost_rank = None if os.environ.get(DEBUG_VARIABLE) else _lost_rank_paragraph(error)
        if lost_rank is not None:
            from giugan.training.lost_ranks import LOST_RANK_STATUS, explained_by_another_rank

            explained = explained_by_another_rank()
            _end_started_ranks()  # a hung rank would otherwise outlive the run
            if explained:
                return USER_ERROR_STATUS  # the peers were lost to a fault one of them explained
            # Said after that wait: a launcher that died is reaped (and named) by now.
            lost_rank = _lost_rank_paragraph(error) or lost_rank
            say_once(lost_rank)
            return LOST_RANK_STATUS
        explanation = None if os.environ.get(DEBUG_VARIABLE) else explain(error)
        if explanation is None:
            if os.environ.get(DEBUG_VARIABLE) or not isinstance(error, _user_error_types()):
                raise
            explanation = one_paragraph(error)
        # A fault of the machine (its cause and fix) or of the input; said once for all ranks.
        say_once(explanation)
        _end_started_ranks()  # the ranks this process launched would only report a lost peer
        return USER_ERROR_STATUS
    finally:
        if "giugan.training.run_directory" in sys.modules:
            from giugan.training.run_directory import release_held_locks

            release_held_locks(started=started)


def _end_started_ranks() -> None:
    if "giugan.training.lost_ranks" in sys.modules:
        from giugan.training.lost_ranks import end_started_ranks

        end_started_ranks()


def _signal_stops() -> list:
    """The signal stops recorded by :class:`~giugan.training.callbacks.signals.GracefulStop`."""
    if "giugan.training.callbacks.signals" not in sys.modules:
        return []
    from giugan.training.callbacks.signals import LAST_STOP

    return LAST_STOP


def _is_stop_after_batch(error: BaseException) -> bool:
    from giugan import compat

    return compat.is_stop_after_batch(error)


def _lost_rank_paragraph(error: BaseException) -> str | None:
    """The paragraph for a DDP collective that failed because a rank died or hung (else None)."""
    if "torch" not in sys.modules:
        return None
    from giugan.training.lost_ranks import lost_rank_paragraph

    return lost_rank_paragraph(error)


def _training_started() -> bool:
    if "giugan.training.run_directory" not in sys.modules:
        return False
    from giugan.training.run_directory import training_started

    return training_started()
