"""A sweep as a ``wandb sweep`` config: a grid over rows and seeds, for users who run agents.

Each agent runs ``python -m giugan sweep <same sweep> --row R --seed S``, the run of that pair
(skipped when finished, resumed when started), so an agent on another machine that shares the
run folders picks up where a killed one stopped. docs/sweeps.md.
"""

from __future__ import annotations

from typing import Any

from giugan.sweeps.definition import Sweep


def wandb_sweep_config(sweep: Sweep, task_command: list[str], extra: list[str]) -> dict[str, Any]:
    """The ``wandb sweep`` YAML (as a dict): ``method: grid``, ``row`` x ``seed``.

    ``task_command`` is ``[python, -m, giugan, sweep, ...]``; W&B's ``${args}`` adds
    ``--row=R --seed=S``, before ``-- extra`` (the arguments passed through to every run).
    """
    return {
        "name": sweep.name,
        "program": "giugan",
        "method": "grid",
        "parameters": {
            "row": {"values": [row for row, _ in sweep.rows]},
            "seed": {"values": list(sweep.seeds)},
        },
        "command": ["${env}", *task_command, "${args}", *(["--", *extra] if extra else [])],
    }
