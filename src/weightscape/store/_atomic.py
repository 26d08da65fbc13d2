"""Atomic file writes (they live in :mod:`weightscape._atomic`, below every layer)."""

from .._atomic import (
    atomic_write,
    json_safe,
    null_as_nan,
    write_json,
    write_npz,
    write_parquet,
    write_text,
)

__all__ = [
    "atomic_write",
    "json_safe",
    "null_as_nan",
    "write_json",
    "write_npz",
    "write_parquet",
    "write_text",
]
