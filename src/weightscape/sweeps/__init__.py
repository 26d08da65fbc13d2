"""Sweeps: grids of runs of a registered task, on an inline, local or Slurm executor, resumable.

Design contract (other subpackages plug into it)
-------------------------------------------------
**Tasks.** A computation is registered by name with
``register_task(Task(name, defaults, run, validate, pack_key, checkpointable))``:

- ``defaults``: every allowed config key with its default (nested keys as dotted names,
  ``"train.lr"``). Spec keys are checked against it (an unknown key is a one-line error listing the
  allowed ones) and values against the default's type (an int given for a float default is stored
  as a float, so that ``lr=1`` and ``lr=1.0`` are the same run).
- ``validate(config)`` raises :class:`~weightscape.errors.ConfigError` for a bad value.
- ``pack_key(config)``: runs with equal keys may be computed as one batched pack (same data recipe
  and depth, different seeds/widths/P); ``None`` = one run per pack.
- ``run(configs, dirs)`` computes a pack: for each resolved config ``configs[i]`` (a flat dict)
  it writes the run folder ``dirs[i]`` through :class:`weightscape.store.RunDir`:
  ``write_config``, ``metrics.parquet`` (long: ``step, name, value`` [+ ``member``]),
  ``summary.json`` (flat dict of final scalars), optionally ``arrays.npz``, and last
  ``mark_done()``.
- ``checkpointable``: the task resumes a partial run folder from its own checkpoints; otherwise a
  partial folder is cleared before the run is computed again.

A task named ``"X"`` or ``"X.Y"`` that is not registered yet is looked for by importing
``weightscape.X``; this package registers ``demo.ridge`` (see :mod:`weightscape.sweeps._demo`).

**Sweeps.** ``Sweep(task=..., base={...}, axes={key: [values]}, zip=[{k1: [...], k2: [...]}])``
or ``Sweep.from_file("spec.toml")`` (TOML or JSON with the same keys). The runs are the cartesian
product of the axes (first outermost) and of each zipped group (lists of equal length that vary
together), on top of ``base``; seeds are an ordinary axis. ``sweep.expand()`` gives the resolved
configs, all validated in the constructor, before anything starts.

**Run folders.** A run's folder name is :func:`config_hash` of its resolved config: sha256 of
the sorted-key JSON, first 12 hex digits. A sweep folder holds::

    SWEEP/sweep.json          spec, dims, run hashes in grid order, provenance
    SWEEP/runs/<hash>/        config.json, metrics.parquet, summary.json, arrays.npz, DONE
    SWEEP/logs/               submitit (Slurm) logs
    SWEEP/jobs.json           submitted Slurm jobs and their runs
    SWEEP/runs.parquet        written by collect (weightscape.store.collect_sweep)
    SWEEP/series.parquet      written by collect

A folder without ``DONE`` is partial: a resumed sweep clears and recomputes it; finished runs are
skipped. Every file is written atomically (temporary file + rename).

**Executors.** ``run_sweep(sweep, out_dir, executor="inline"|"local"|"slurm", resume=True,
max_workers=..., threads_per_worker=1, slurm={partition, time, mem_gb, gpus, ...})`` returns a
:class:`SweepResult`. One :class:`Executor` base with one hook, ``_submit(packs)``:
:class:`InlineExecutor` (in this process, exceptions propagate), :class:`LocalExecutor` (a
spawn-started process pool with a fixed thread count per worker), :class:`SlurmExecutor`
(``submitit.AutoExecutor(cluster="slurm")``, one job-array task per pack via ``map_array``, options
passed through, a misspelt key lists the allowed ones). Slurm jobs run :class:`PackJob`, a
``submitit.helpers.Checkpointable``: a preempted or timed-out job is requeued and skips the runs
already ``DONE``. ``sweep_status(dir)`` counts runs by state; ``weightscape.store.open_sweep(dir)``
reads the finished runs, also while the sweep is running.

**CLI.** ``weightscape sweep run SPEC.toml --out DIR [--executor ...] [--set k=v] [--axis
k=v1,v2] [--resume] [--dry-run]``, ``weightscape sweep status DIR``, ``weightscape sweep collect
DIR``.
"""

from ._demo import DEMO_TASK, ridge_exact
from ._executor import EXECUTORS, Executor, PackHandle, make_executor
from ._inline import InlineExecutor
from ._local import LocalExecutor
from ._pack import Pack, PackJob, make_packs, run_pack, thread_limits
from ._run import SweepResult, SweepStatus, run_sweep, sweep_status
from ._slurm import SlurmExecutor, check_slurm_options, slurm_options, squeue_states
from ._spec import (
    HASH_LENGTH,
    Sweep,
    config_hash,
    parse_assignment,
    parse_assignments,
    parse_axis_values,
    parse_value,
)
from ._task import Task, flatten_config, get_task, register_task, resolve_config, task_names

__all__ = [
    # tasks
    "DEMO_TASK",
    # executors
    "EXECUTORS",
    "HASH_LENGTH",
    "Executor",
    "InlineExecutor",
    "LocalExecutor",
    "Pack",
    "PackHandle",
    "PackJob",
    "SlurmExecutor",
    # specs
    "Sweep",
    # running
    "SweepResult",
    "SweepStatus",
    "Task",
    "check_slurm_options",
    "config_hash",
    "flatten_config",
    "get_task",
    "make_executor",
    "make_packs",
    "parse_assignment",
    "parse_assignments",
    "parse_axis_values",
    "parse_value",
    "register_task",
    "resolve_config",
    "ridge_exact",
    "run_pack",
    "run_sweep",
    "slurm_options",
    "squeue_states",
    "sweep_status",
    "task_names",
    "thread_limits",
]
