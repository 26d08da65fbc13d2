"""The ``inline`` backend: every pack in this process, one after the other (tests, debugging)."""

from __future__ import annotations

from concurrent.futures import Future

from ._executor import EXECUTORS, Executor, FutureHandle, PackHandle
from ._pack import Pack, run_pack

__all__ = ["InlineExecutor"]


class InlineExecutor(Executor):
    """Computes each pack in the calling process, in order.

    An exception raised by a task propagates at once (so a debugger stops where it happened) and
    the sweep stops there, like a crash; the runs finished before it keep their ``DONE`` marker.
    The thread counts are set to ``threads_per_worker`` inside each pack and restored afterwards.
    """

    name = "inline"

    def _submit(self, packs: list[Pack]) -> list[PackHandle]:
        handles = []
        for pack in packs:
            run_pack(
                pack.task, list(pack.configs), list(pack.dirs), threads=self.threads_per_worker
            )
            fut: Future = Future()
            fut.set_result(None)
            handles.append(FutureHandle(pack=pack, future=fut))
        return handles


EXECUTORS[InlineExecutor.name] = InlineExecutor
