"""Run directories: one folder per run with its config, provenance, metrics, arrays and DONE marker.

Layout (every file written atomically; ``DONE`` last, so a folder without it is a partial run)::

    RUN/
      config.json      {"config": ..., "seeds": ..., "provenance": {...}}
      metrics.parquet  long format: member, step, name, value
      arrays.npz       named arrays (final parameters, gaps, ...)
      summary.json     final scalars per member (optional)
      RUNNING.json     {"host", "pid", "started", ...} while a sweep worker computes it (optional)
      DONE             written last
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import asdict, is_dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import RunDirError
from ._atomic import write_json, write_npz, write_parquet, write_text

__all__ = ["RunDir", "git_commit", "provenance"]

DONE = "DONE"
RUNNING = "RUNNING.json"


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the weightscape checkout, or None when not installed from git."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    # the repository must be weightscape's own: an installed copy inside another project's
    # checkout (a .venv in it) would otherwise record that project's commit
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", Path(__file__).name],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=5,
    )
    if tracked.returncode != 0:
        return None
    commit = out.stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=5,
    ).stdout.strip()
    return commit + ("-dirty" if dirty else "")


def provenance(device: str | None = None) -> dict:
    """Package version, git commit, torch version, device and thread count of this process."""
    import torch

    from .. import __version__

    return {
        "weightscape_version": __version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "device": device or "cpu",
        "torch_threads": torch.get_num_threads(),
        "hostname": platform.node(),
    }


def _plain(obj):
    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    return obj


class RunDir:
    """A run directory. Create with :meth:`create`; open a finished one with :meth:`open`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # --- creation -------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, *, exist: str = "error") -> RunDir:
        """Make a new run directory.

        Args:
            exist: what to do when ``path`` exists: ``"error"`` (a :class:`RunDirError`),
                ``"overwrite"`` (remove it first), or ``"resume"`` (keep its files; a finished run
                is left alone, a partial run is cleared of its ``DONE``-less outputs by the caller).
        """
        path = Path(path)
        if exist not in ("error", "overwrite", "resume"):
            raise RunDirError(f"exist={exist!r}; choose one of ['error', 'overwrite', 'resume']")
        if path.exists():
            if exist == "error":
                raise RunDirError(
                    f"output directory {str(path)!r} already exists",
                    "choose a new --out, or pass --force to overwrite",
                )
            if exist == "overwrite":
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    @classmethod
    def open(cls, path: str | Path, *, require_done: bool = True) -> RunDir:
        path = Path(path)
        if not path.is_dir():
            raise RunDirError(f"run directory {str(path)!r} does not exist")
        rd = cls(path)
        if require_done and not rd.done:
            raise RunDirError(f"run directory {str(path)!r} is not finished (no DONE marker)")
        return rd

    # --- state ----------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return (self.path / DONE).exists()

    def mark_done(self) -> None:
        write_text(self.path / DONE, "")

    def clear_done(self) -> None:
        (self.path / DONE).unlink(missing_ok=True)

    def mark_running(self, **info) -> None:
        """Write ``RUNNING.json`` (host, pid, start time, ``info``) while a worker computes it."""
        payload = {"host": platform.node(), "pid": os.getpid(), "started": time.time(), **info}
        # rename without fsync: a claim lost in a power cut only makes the run look partial
        tmp = self.path / f".{RUNNING}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, self.path / RUNNING)

    def clear_running(self) -> None:
        (self.path / RUNNING).unlink(missing_ok=True)

    def running_info(self) -> dict | None:
        """The ``RUNNING.json`` payload, or None when no worker claims this run."""
        try:
            return json.loads((self.path / RUNNING).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    @property
    def state(self) -> str:
        """``"done"``, ``"running"`` (a live worker claims it), ``"partial"`` or ``"pending"``.

        A claim by a process on this host whose pid is gone counts as partial; a claim from
        another host is trusted.
        """
        if self.done:
            return "done"
        if not self.path.is_dir():
            return "pending"
        info = self.running_info()
        if info is None:
            return "partial"
        if info.get("host") != platform.node():
            return "running"
        if info.get("pid") == os.getpid():
            return "partial"  # a claim of this very process is left over from a crash
        try:
            os.kill(int(info.get("pid", -1)), 0)
        except (ProcessLookupError, ValueError, OverflowError):
            return "partial"
        except PermissionError:
            return "running"
        return "running"

    # --- writers --------------------------------------------------------------------------
    def write_config(self, config, *, seeds=None, device: str | None = None, extra=None) -> None:
        payload = {"config": _plain(config), "seeds": seeds, "provenance": provenance(device)}
        if extra:
            payload.update(extra)
        write_json(self.path / "config.json", payload)

    def write_metrics(self, df: pd.DataFrame, name: str = "metrics") -> None:
        write_parquet(self.path / f"{name}.parquet", df)

    def write_arrays(self, name: str = "arrays", **arrays) -> None:
        write_npz(self.path / f"{name}.npz", **arrays)

    def write_json(self, name: str, obj) -> None:
        write_json(self.path / name, obj)

    # --- readers --------------------------------------------------------------------------
    def read_config(self) -> dict:
        return json.loads((self.path / "config.json").read_text())

    def read_metrics(self, name: str = "metrics") -> pd.DataFrame:
        return pd.read_parquet(self.path / f"{name}.parquet")

    def read_arrays(self, name: str = "arrays") -> dict[str, np.ndarray]:
        with np.load(self.path / f"{name}.npz", allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def read_json(self, name: str):
        return json.loads((self.path / name).read_text())

    def __repr__(self) -> str:
        return f"RunDir({os.fspath(self.path)!r}, done={self.done})"
