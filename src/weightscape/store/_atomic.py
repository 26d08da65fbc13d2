"""Atomic file writes (they live in :mod:`weightscape._atomic`, below every layer)."""

from .._atomic import atomic_write, write_json, write_npz, write_parquet, write_text

__all__ = ["atomic_write", "write_json", "write_npz", "write_parquet", "write_text"]
