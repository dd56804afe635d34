"""Sweeps: a table's rows x seeds as data, run locally, as a SLURM job array or by W&B agents.

``giugan sweep`` (docs/sweeps.md) is the command line over :mod:`giugan.sweeps.definition` (what
runs), :mod:`giugan.sweeps.runs` (the state of one run and its ``giugan fit`` command),
:mod:`giugan.sweeps.slurm` (the job-array script) and :mod:`giugan.sweeps.wandb_sweep` (the
``wandb sweep`` config). Nothing here imports Lightning.
"""
