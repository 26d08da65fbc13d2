"""Run a sweep on an executor, resumably; report its status."""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RunDirError, SweepError, check_positive
from ..store import SweepDir, provenance, write_json
from ._executor import make_executor
from ._pack import make_packs
from ._slurm import ACTIVE_STATES, check_slurm_options, squeue_states
from ._spec import Sweep

__all__ = ["SweepResult", "SweepStatus", "run_sweep", "sweep_status"]


@dataclass
class SweepResult:
    """What :func:`run_sweep` did.

    Attributes:
        path: the sweep folder.
        n_runs: runs in the sweep.
        n_skipped: runs already done before this call (resume).
        n_submitted: runs this call submitted.
        n_packs: packs (jobs) they were grouped into.
        failures: one ``{"job_id", "runs", "error"}`` per failed pack (empty when all succeeded
            or when not waited for).
        job_ids: scheduler job ids (Slurm), else empty.
        waited: whether the call waited for the packs to finish.
        seconds: wall time of the call.
    """

    path: Path
    n_runs: int
    n_skipped: int
    n_submitted: int
    n_packs: int
    failures: list[dict] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    waited: bool = True
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def n_failed(self) -> int:
        return sum(len(f["runs"]) for f in self.failures)

    def raise_on_failure(self) -> None:
        """Raise :class:`SweepError` naming the first failure, if any."""
        if self.failures:
            f = self.failures[0]
            raise SweepError(
                f"{self.n_failed} of {self.n_submitted} runs failed; first: {f['error']}",
                f"re-run with resume to compute them again ({self.path})",
            )


def _spec_record(sweep: Sweep, hashes: list[str]) -> dict:
    spec = sweep.to_dict()
    spec.update(
        dims=sweep.dims,
        shape=list(sweep.shape),
        config_keys=sorted(sweep.get_task().defaults),
        runs=hashes,
        n_runs=len(hashes),
    )
    return spec


def _same_spec(a: dict, b: dict) -> bool:
    keys = ("task", "base", "axes", "zip", "runs")
    return all(a.get(k) == b.get(k) for k in keys)


def _active_jobs(sd: SweepDir) -> list[str]:
    ids = [j["job_id"] for j in sd.read_jobs()]
    states = squeue_states(ids) or {}
    return [j for j in ids if states.get(j) in ACTIVE_STATES]


def run_sweep(
    sweep: Sweep | str | Path,
    out_dir: str | Path,
    executor: str = "inline",
    *,
    resume: bool = True,
    max_workers: int | None = None,
    threads_per_worker: int = 1,
    slurm: dict | None = None,
    max_pack_size: int | None = None,
    wait: bool = True,
    poll_s: float | None = None,
) -> SweepResult:
    """Compute every run of ``sweep`` not finished yet, into ``out_dir``.

    Everything is validated before anything is written: the spec, the executor name and its
    options, and ``out_dir`` (an existing folder needs ``resume=True`` and must hold the same
    sweep, with no Slurm job of it still queued). Runs with ``DONE`` are skipped; partial runs are
    computed again from scratch (unless the task is checkpointable).

    Args:
        sweep: a :class:`Sweep` or the path of a TOML/JSON spec.
        out_dir: the sweep folder (see :class:`weightscape.store.SweepDir` for its layout).
        executor: ``"inline"`` | ``"local"`` | ``"slurm"``.
        resume: allow ``out_dir`` to exist already.
        max_workers: worker processes of the local backend.
        threads_per_worker: fixed BLAS/OpenMP/torch thread count of each worker.
        slurm: Slurm options (see :class:`~weightscape.sweeps.SlurmExecutor`).
        max_pack_size: most runs per pack; by default packs are split so that every local worker
            gets work, and not split for the other backends.
        wait: block until all packs finished (with ``False`` a Slurm sweep is left running; watch
            it with :func:`sweep_status`). The in-process executors (inline, local) always wait.
        poll_s: seconds between polls while waiting.

    Returns:
        :class:`SweepResult`; failed packs are listed in ``.failures`` (the inline backend
        raises the task's exception instead).
    """
    t0 = time.perf_counter()
    if not isinstance(sweep, Sweep):
        sweep = Sweep.from_file(sweep)
    task = sweep.get_task()
    configs, hashes = sweep.expand(), sweep.hashes()
    out = Path(out_dir)
    sd = SweepDir(out)
    ex = make_executor(
        executor,
        out,
        threads_per_worker=threads_per_worker,
        max_workers=max_workers,
        options=check_slurm_options(slurm, executor),
    )
    ex.check_available()
    if max_pack_size is not None:
        check_positive("max_pack_size", max_pack_size, integer=True)
    record = _spec_record(sweep, hashes)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not resume:
            raise RunDirError(
                f"output directory {str(out)!r} already exists",
                "pass --resume to continue the sweep in it, or choose a new --out",
            )
        if not sd.exists():
            raise RunDirError(f"{str(out)!r} exists and is not a sweep folder (no sweep.json)")
        old = sd.read_spec()
        if not _same_spec(old, record):
            raise SweepError(
                f"{str(out)!r} holds a different sweep (task, base, axes or zip differ)",
                "choose a new --out for a changed spec",
            )
        active = _active_jobs(sd)
        if active:
            raise SweepError(
                f"{len(active)} Slurm jobs of this sweep are still queued or running "
                f"(e.g. {active[0]})",
                "wait for them (weightscape sweep status) or scancel them before resuming",
            )
        record["created"] = old.get("created", time.time())
    states = {h: sd.run(h).state for h in hashes}
    busy = [h for h, s in states.items() if s == "running"]
    if busy:
        info = sd.run(busy[0]).running_info() or {}
        raise SweepError(
            f"{len(busy)} runs are being computed by another process "
            f"(e.g. {busy[0]} by pid {info.get('pid')} on {info.get('host')})",
            "wait for it to finish, or stop it, before resuming; if it is gone (a job killed "
            f"on {info.get('host')}, whose claim no one can check from here), delete the "
            f"claims: rm {sd.runs_dir}/*/RUNNING.json",
        )

    # --- validated: write ----------------------------------------------------------------------
    out.mkdir(parents=True, exist_ok=True)
    record.setdefault("created", time.time())
    record["updated"] = time.time()
    record["executor"] = executor
    record["provenance"] = provenance()
    write_json(sd.spec_file, record)
    sd.runs_dir.mkdir(exist_ok=True)
    todo = [i for i, h in enumerate(hashes) if states[h] != "done"]
    n_skipped = len(hashes) - len(todo)
    par = ex.parallelism
    if max_pack_size is None and par is not None and par > 1 and todo:
        max_pack_size = math.ceil(len(todo) / par)
    packs = make_packs(
        task,
        [configs[i] for i in todo],
        [hashes[i] for i in todo],
        [sd.runs_dir / hashes[i] for i in todo],
        max_pack_size=max_pack_size,
    )
    # only Slurm jobs outlive this call; the in-process executors always finish here, and their
    # failures are collected (not waiting would report ok with runs failed)
    wait = wait or executor != "slurm"
    result = SweepResult(
        path=out, n_runs=len(hashes), n_skipped=n_skipped, n_submitted=len(todo),
        n_packs=len(packs), waited=wait,
    )  # fmt: skip
    try:
        handles = ex.submit(packs)
        job_ids = [h.job_id for h in handles if h.job_id is not None]
        if job_ids:
            jobs = sd.read_jobs() + [
                {"job_id": h.job_id, "runs": list(h.pack.hashes), "submitted": time.time()}
                for h in handles
            ]
            write_json(sd.jobs_file, jobs)
            result.job_ids = job_ids
        if wait:
            errors = ex.wait(handles, poll_s=poll_s)
            result.failures = [
                {"job_id": h.job_id, "runs": list(h.pack.hashes), "error": err}
                for h, err in zip(handles, errors, strict=True)
                if err is not None
            ]
    finally:
        ex.close()
    result.seconds = time.perf_counter() - t0
    return result


@dataclass
class SweepStatus:
    """Where a sweep stands.

    Attributes:
        path: the sweep folder.
        task: the task name.
        counts: runs per state: ``done``, ``running``, ``partial``, ``pending``.
        jobs: Slurm job-array tasks per ``squeue`` state (``GONE`` = no longer listed);
            empty for other backends.
    """

    path: Path
    task: str
    counts: dict[str, int]
    jobs: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> bool:
        return self.counts.get("done", 0) == self.total

    def __str__(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        s = f"{self.path}: {self.task}, {self.total} runs: {parts}"
        if self.jobs:
            s += "; jobs: " + ", ".join(f"{k} {v}" for k, v in sorted(self.jobs.items()))
        return s


def sweep_status(path: str | Path) -> SweepStatus:
    """Count the runs of the sweep in ``path`` by state (and its Slurm jobs by squeue state)."""
    sd = SweepDir(path)
    spec = sd.read_spec()
    counter = Counter(sd.states().values())
    counts = {k: counter.get(k, 0) for k in ("done", "running", "partial", "pending")}
    jobs: dict[str, int] = {}
    ids = [j["job_id"] for j in sd.read_jobs()]
    if ids:
        states = squeue_states(ids)
        if states is not None:
            jobs = dict(Counter(states.get(j, "GONE") for j in ids))
    return SweepStatus(path=sd.path, task=spec.get("task", "?"), counts=counts, jobs=jobs)
