"""The ``local`` backend: a pool of worker processes on this machine."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import cloudpickle

from ._executor import EXECUTORS, Executor, FutureHandle, PackHandle
from ._pack import Pack, run_pack

__all__ = ["LocalExecutor"]

_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _init_worker(threads: int) -> None:
    # Runs first in each worker: fix the thread counts for the worker's lifetime.
    for var in _THREAD_ENV:
        os.environ[var] = str(threads)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)


def _run_payload(payload: bytes, threads: int) -> list[str]:
    task, configs, dirs = cloudpickle.loads(payload)
    return run_pack(task, configs, dirs, threads=threads)


class LocalExecutor(Executor):
    """Packs computed by ``max_workers`` worker processes, ``threads_per_worker`` threads each.

    Choice: a :class:`concurrent.futures.ProcessPoolExecutor` (``spawn`` start method) rather than
    submitit's ``"local"`` cluster. submitit starts one fresh Python process per job with no bound
    on how many run at once, so 200 small runs pay 200 interpreter + torch imports on a machine with
    a few cores; the pool starts ``max_workers`` processes once, bounds the parallelism, and its
    initializer fixes the thread counts (threadpoolctl for BLAS/OpenMP, ``torch.set_num_threads``).
    ``spawn`` rather than ``fork``: forking a process whose OpenMP runtime already started threads
    can deadlock. Packs are shipped with cloudpickle (as submitit does), so tasks defined in
    scripts or tests work too. A worker that dies (``kill -9``) breaks the pool: its pack and those
    not started yet are reported failed, and a resumed sweep computes them.

    ``max_workers`` defaults to ``os.cpu_count() // threads_per_worker`` (at least 1).
    """

    name = "local"

    def __init__(self, folder, **kwargs):
        super().__init__(folder, **kwargs)
        if self.max_workers is None:
            self.max_workers = max(1, (os.cpu_count() or 1) // self.threads_per_worker)
        self._pool: ProcessPoolExecutor | None = None

    @property
    def parallelism(self) -> int:
        return self.max_workers

    def _submit(self, packs: list[Pack]) -> list[PackHandle]:
        n = min(self.max_workers, len(packs))
        self._pool = ProcessPoolExecutor(
            max_workers=n,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.threads_per_worker,),
        )
        handles = []
        for pack in packs:
            payload = cloudpickle.dumps((pack.task, list(pack.configs), list(pack.dirs)))
            fut = self._pool.submit(_run_payload, payload, self.threads_per_worker)
            handles.append(FutureHandle(pack=pack, future=fut))
        return handles

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


EXECUTORS[LocalExecutor.name] = LocalExecutor
