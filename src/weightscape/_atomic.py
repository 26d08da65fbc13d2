"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

Foundation level (imports nothing from the package), so every layer may use it: ``data`` for
its PCA cache, ``store`` for run directories (re-exported as ``weightscape.store``).
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = [
    "atomic_write",
    "json_safe",
    "null_as_nan",
    "write_json",
    "write_npz",
    "write_parquet",
    "write_text",
]


def atomic_write(path: str | Path, writer: Callable[[io.BufferedWriter], None]) -> Path:
    """Call ``writer(fh)`` on a temporary file beside ``path`` and rename it onto ``path``.

    A crash leaves either the old file or the new one, never a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600; results get the mode any new file gets (0644 under the
        # usual umask 022), so collaborators on a shared file system can read them
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    """The process's umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda fh: fh.write(text.encode()))


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def json_safe(obj):
    """``obj`` with every NaN and ±infinity replaced by ``None`` (JSON ``null``), NumPy scalars
    and arrays as Python numbers and lists, tuples and sets as lists.

    JSON (RFC 8259) has no NaN or infinity: Python writes them as the bare words ``NaN`` and
    ``Infinity``, which Python, pandas and jq read back but strict parsers (a browser's
    ``JSON.parse``, serde_json, Go's encoding/json) refuse. So every file the package writes
    says ``null`` where a number is undefined or not measured; readers that want floats map
    ``None`` back to NaN (pandas does so in numeric columns).
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    return obj


def null_as_nan(mapping) -> dict:
    """A flat dict read back from JSON with ``None`` (``null``, how :func:`json_safe` writes NaN
    and ±infinity) as NaN again, for readers that want the numbers a run held in memory."""
    return {k: math.nan if v is None else v for k, v in mapping.items()}


def write_json(path: str | Path, obj) -> Path:
    """``obj`` as strict JSON (indented, keys sorted): NaN and ±infinity become ``null``
    (:func:`json_safe`), so any JSON parser reads the file."""
    text = json.dumps(
        json_safe(obj), indent=2, sort_keys=True, default=_json_default, allow_nan=False
    )
    return write_text(path, text + "\n")


def _host_array(v) -> np.ndarray:
    """``np.asarray(v)``; a torch tensor (possibly on a GPU, possibly requiring grad) is detached
    and copied to the host first (``np.asarray`` of a CUDA tensor raises)."""
    if hasattr(v, "detach") and hasattr(v, "cpu"):
        v = v.detach().cpu().numpy()
    return np.asarray(v)


def write_npz(path: str | Path, **arrays) -> Path:
    """``arrays`` (NumPy arrays, torch tensors on any device, array-likes) as a compressed
    ``.npz``."""

    def _w(fh):
        np.savez_compressed(fh, **{k: _host_array(v) for k, v in arrays.items()})

    return atomic_write(path, _w)


def write_parquet(path: str | Path, df) -> Path:
    return atomic_write(path, lambda fh: df.to_parquet(fh, index=False))
