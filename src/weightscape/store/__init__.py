"""Run directories, atomic writes, and aggregation of sweeps to pandas/xarray.

A run directory (:class:`RunDir`) holds one run: ``config.json``, ``metrics.parquet`` (long format:
``[member,] step, name, value``), ``summary.json`` (final scalars), ``arrays.npz`` and, last, the
``DONE`` marker; every file is written atomically (temporary file + rename), so a folder without
``DONE`` is a partial run. A sweep folder (:class:`SweepDir`) holds ``sweep.json`` and one run
directory per config hash under ``runs/``.

:func:`open_sweep` reads a sweep's finished runs (also while it is still running) as
:class:`SweepData`: ``.runs`` (one row per run: config fields + final scalars), ``.series`` (long
table of metrics) and ``.to_xarray()`` (one dimension per swept axis). :func:`collect_sweep` also
writes them to ``runs.parquet`` / ``series.parquet``. Parquet, JSON and ``.npz`` only; never pickle.
"""

from ._aggregate import SweepData, collect_sweep, open_sweep
from ._atomic import atomic_write, write_json, write_npz, write_parquet, write_text
from ._sweepdir import SweepDir
from .rundir import RunDir, git_commit, provenance

__all__ = [
    # run directories
    "RunDir",
    # sweeps
    "SweepData",
    "SweepDir",
    # atomic writes
    "atomic_write",
    "collect_sweep",
    "git_commit",
    "open_sweep",
    "provenance",
    "write_json",
    "write_npz",
    "write_parquet",
    "write_text",
]
