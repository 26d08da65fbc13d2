"""The executor interface: submit packs of runs somewhere, watch them, report what failed."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..errors import SweepError, check_positive
from ._pack import Pack

__all__ = ["EXECUTORS", "Executor", "FutureHandle", "PackHandle", "make_executor"]


@dataclass
class PackHandle(ABC):
    """A submitted pack. ``done()`` polls; ``error()`` (once done) is None or a one-line reason."""

    pack: Pack
    job_id: str | None = field(default=None)

    @abstractmethod
    def done(self) -> bool: ...

    @abstractmethod
    def error(self) -> str | None: ...


@dataclass
class FutureHandle(PackHandle):
    """A pack run through a :class:`concurrent.futures.Future`."""

    future: Future | None = None

    def done(self) -> bool:
        return self.future.done()

    def error(self) -> str | None:
        exc = self.future.exception()
        if exc is None:
            return None
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


class Executor(ABC):
    """Runs packs of a sweep; one subclass per backend fills :meth:`_submit`.

    Args:
        folder: the sweep folder (scheduler logs go to ``folder/logs``).
        threads_per_worker: BLAS/OpenMP/torch threads of each worker; a fixed count makes
            floating-point results identical across backends.
        max_workers: packs computed at the same time (local backend).
        options: backend options (Slurm parameters); keys are validated in the constructor.
    """

    name: ClassVar[str]
    poll_s: ClassVar[float] = 0.05

    def __init__(
        self,
        folder: str | Path,
        *,
        threads_per_worker: int = 1,
        max_workers: int | None = None,
        options: dict | None = None,
    ):
        check_positive("threads_per_worker", threads_per_worker, integer=True)
        if max_workers is not None:
            check_positive("max_workers", max_workers, integer=True)
        self.folder = Path(folder)
        self.threads_per_worker = threads_per_worker
        self.max_workers = max_workers
        self.options = dict(options or {})
        self._check_options()

    def _check_options(self) -> None:
        if self.options:
            raise SweepError(f"executor {self.name!r} takes no options; got {sorted(self.options)}")

    @property
    def parallelism(self) -> int | None:
        """How many packs run at once (None: as many as the scheduler allows)."""
        return 1

    def check_available(self) -> None:  # noqa: B027 (optional hook; most backends always run)
        """Raise :class:`SweepError` when this backend cannot run here (checked before writing)."""

    def submit(self, packs: list[Pack]) -> list[PackHandle]:
        """Start computing ``packs``; returns one handle per pack."""
        if not packs:
            return []
        return self._submit(list(packs))

    @abstractmethod
    def _submit(self, packs: list[Pack]) -> list[PackHandle]:
        """The one hook of a backend: start every pack and return their handles."""

    def wait(self, handles: list[PackHandle], poll_s: float | None = None) -> list[str | None]:
        """Block until every handle is done; return their errors (None = success)."""
        poll = self.poll_s if poll_s is None else poll_s
        while not all(h.done() for h in handles):
            time.sleep(poll)
        return [h.error() for h in handles]

    def close(self) -> None:  # noqa: B027 (optional hook; only pools hold resources)
        """Release workers (called by the sweep runner once it stops watching)."""


EXECUTORS: dict[str, type[Executor]] = {}


def make_executor(name: str, folder: str | Path, **kwargs) -> Executor:
    """The executor registered as ``name`` (``"inline"``, ``"local"`` or ``"slurm"``)."""
    if name not in EXECUTORS:
        raise SweepError(f"unknown executor {name!r}; choose one of {sorted(EXECUTORS)}")
    return EXECUTORS[name](folder, **kwargs)
