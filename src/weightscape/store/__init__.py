"""Run directories, atomic writes, and (later) aggregation of sweeps to pandas/xarray."""

from ._atomic import atomic_write, write_json, write_npz, write_parquet, write_text
from .rundir import RunDir, git_commit, provenance

__all__ = [
    # run directories
    "RunDir",
    # atomic writes
    "atomic_write",
    "git_commit",
    "provenance",
    "write_json",
    "write_npz",
    "write_parquet",
    "write_text",
]
