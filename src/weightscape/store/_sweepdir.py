"""The folder of a sweep: its spec, one run directory per config hash, logs and collected tables.

Layout::

    SWEEP/
      sweep.json        spec (task, base, axes, zip, dims), run hashes in grid order, provenance
      runs/<hash>/      one RunDir per run (hash = sha256 of the resolved config, 12 hex digits)
      logs/             scheduler logs (submitit)
      jobs.json         submitted scheduler jobs: [{"job_id", "runs": [hash, ...]}, ...]
      runs.parquet      one row per finished run (written by collect)
      series.parquet    long table of every finished run's metrics (written by collect)
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import RunDirError
from .rundir import RunDir

__all__ = ["SweepDir"]


class SweepDir:
    """Paths and states of a sweep folder (reads only; the sweep runner writes)."""

    SPEC = "sweep.json"
    RUNS = "runs"
    LOGS = "logs"
    JOBS = "jobs.json"
    RUNS_TABLE = "runs.parquet"
    SERIES_TABLE = "series.parquet"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def spec_file(self) -> Path:
        return self.path / self.SPEC

    @property
    def runs_dir(self) -> Path:
        return self.path / self.RUNS

    @property
    def logs_dir(self) -> Path:
        return self.path / self.LOGS

    @property
    def jobs_file(self) -> Path:
        return self.path / self.JOBS

    @property
    def runs_table(self) -> Path:
        return self.path / self.RUNS_TABLE

    @property
    def series_table(self) -> Path:
        return self.path / self.SERIES_TABLE

    def run(self, run_hash: str) -> RunDir:
        return RunDir(self.runs_dir / run_hash)

    def exists(self) -> bool:
        return self.spec_file.is_file()

    def read_spec(self) -> dict:
        """The content of ``sweep.json``; :class:`RunDirError` when this is not a sweep folder."""
        if not self.spec_file.is_file():
            raise RunDirError(
                f"{str(self.path)!r} is not a sweep folder (no {self.SPEC})",
                "pass the --out folder of `weightscape sweep run`",
            )
        try:
            return json.loads(self.spec_file.read_text())
        except json.JSONDecodeError as err:
            raise RunDirError(f"{str(self.spec_file)!r} is not valid JSON: {err}") from None

    def read_jobs(self) -> list[dict]:
        if not self.jobs_file.is_file():
            return []
        return json.loads(self.jobs_file.read_text())

    def run_hashes(self) -> list[str]:
        """The sweep's run hashes in grid order (from ``sweep.json``)."""
        return list(self.read_spec()["runs"])

    def states(self) -> dict[str, str]:
        """``{hash: "done" | "running" | "partial" | "pending"}`` for every run of the sweep."""
        return {h: self.run(h).state for h in self.run_hashes()}

    def done_hashes(self) -> list[str]:
        """Hashes of the finished runs (``DONE`` present), in grid order."""
        return [h for h in self.run_hashes() if self.run(h).done]
