"""Packs: groups of runs computed together as one job, and the function every worker runs."""

from __future__ import annotations

import contextlib
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import submitit

from ..errors import SweepError
from ..store import RunDir
from ._task import Task

__all__ = ["Pack", "PackJob", "make_packs", "run_pack", "thread_limits"]


@dataclass(frozen=True)
class Pack:
    """Runs of one task computed by one call of ``task.run`` (one job).

    Attributes:
        task: the task.
        hashes: run hashes (run directory names), ``[m]``.
        configs: resolved configs, ``[m]``.
        dirs: run directories, ``[m]``.
    """

    task: Task
    hashes: tuple[str, ...]
    configs: tuple[dict, ...]
    dirs: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.hashes)


def make_packs(
    task: Task,
    configs: list[dict],
    hashes: list[str],
    dirs: list[Path],
    *,
    max_pack_size: int | None = None,
) -> list[Pack]:
    """Group runs whose ``task.pack_key`` agree (one run per pack when the task has none).

    Groups keep grid order (a group sits where its first run is) and are split into near-equal
    chunks of at most ``max_pack_size`` runs.
    """
    if max_pack_size is not None and max_pack_size < 1:
        raise SweepError(f"max_pack_size={max_pack_size} must be >= 1")
    groups: dict = {}
    for i, cfg in enumerate(configs):
        key = (i,) if task.pack_key is None else ("pack", task.pack_key(cfg))
        groups.setdefault(key, []).append(i)
    packs = []
    for members in groups.values():
        n_chunks = 1 if max_pack_size is None else math.ceil(len(members) / max_pack_size)
        size = math.ceil(len(members) / n_chunks)
        for start in range(0, len(members), size):
            idx = members[start : start + size]
            packs.append(
                Pack(
                    task=task,
                    hashes=tuple(hashes[i] for i in idx),
                    configs=tuple(configs[i] for i in idx),
                    dirs=tuple(Path(dirs[i]) for i in idx),
                )
            )
    return packs


@contextlib.contextmanager
def thread_limits(threads: int | None):
    """Fix the BLAS/OpenMP (threadpoolctl) and torch intra-op thread counts inside the block.

    A fixed count makes floating-point results reproducible across executors; ``None`` leaves
    them as they are.
    """
    if threads is None:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(old)


def run_pack(
    task: Task,
    configs: list[dict],
    dirs: list[Path],
    *,
    threads: int | None = 1,
    job_id: str | None = None,
) -> list[str]:
    """Compute the runs of a pack that are not finished yet; return the names of those computed.

    A run with ``DONE`` is skipped. A partial run folder is cleared first, unless the task is
    checkpointable (then ``task.run`` resumes it from its own checkpoint). Each run folder gets a
    ``RUNNING.json`` claim (host, pid, job id) while it is computed. Raises :class:`SweepError`
    when the task returns without marking a run done.
    """
    todo_cfg, todo_dirs = [], []
    for cfg, d in zip(configs, dirs, strict=True):
        rd = RunDir(d)
        if rd.done:
            continue
        if rd.path.exists() and not task.checkpointable:
            shutil.rmtree(rd.path)
        rd.path.mkdir(parents=True, exist_ok=True)
        rd.mark_running(job_id=job_id, task=task.name)
        todo_cfg.append(dict(cfg))
        todo_dirs.append(rd.path)
    if not todo_cfg:
        return []
    try:
        with thread_limits(threads):
            task.run(todo_cfg, todo_dirs)
    except BaseException:
        for d in todo_dirs:
            RunDir(d).clear_running()
        raise
    missing = []
    for d in todo_dirs:
        rd = RunDir(d)
        rd.clear_running()
        if not rd.done:
            missing.append(d.name)
    if missing:
        raise SweepError(f"task {task.name!r} returned without marking runs done: {missing}")
    return [d.name for d in todo_dirs]


class PackJob(submitit.helpers.Checkpointable):
    """The callable a Slurm job runs: :func:`run_pack` with submitit checkpointing.

    On preemption or time-out submitit calls :meth:`checkpoint` (inherited: resubmit the same call)
    and requeues the job; the requeued call skips the runs already ``DONE``.
    """

    def __call__(self, task: Task, configs, dirs, threads: int | None = 1) -> list[str]:
        job_id = None
        with contextlib.suppress(RuntimeError):
            job_id = str(submitit.JobEnvironment().job_id)
        return run_pack(task, configs, dirs, threads=threads, job_id=job_id)
