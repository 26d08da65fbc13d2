"""Test tasks built on ``demo.ridge``: one run per pack, with an injected crash after k runs."""

from __future__ import annotations

from dataclasses import replace

from weightscape.store import RunDir
from weightscape.sweeps import DEMO_TASK, register_task

# crash state of the "test.crashy" task: crash while computing run number `after` (0-based)
CRASH = {"after": None, "count": 0}


class InjectedCrash(RuntimeError):
    pass


def _crashy_run(configs, dirs):
    for cfg, d in zip(configs, dirs, strict=True):
        if CRASH["after"] is not None and CRASH["count"] == CRASH["after"]:
            RunDir(d).write_config(cfg)  # half-written run: config.json without DONE
            raise InjectedCrash(f"injected crash after {CRASH['count']} runs")
        DEMO_TASK.run([cfg], [d])
        CRASH["count"] += 1


def _lazy_run(configs, dirs):
    for cfg, d in zip(configs, dirs, strict=True):
        RunDir(d).write_config(cfg)  # forgets mark_done


CRASHY = register_task(
    replace(DEMO_TASK, name="test.crashy", run=_crashy_run, pack_key=None), replace=True
)
UNPACKED = register_task(replace(DEMO_TASK, name="test.unpacked", pack_key=None), replace=True)
LAZY = register_task(replace(DEMO_TASK, name="test.lazy", run=_lazy_run), replace=True)


def arm(after):
    CRASH["after"], CRASH["count"] = after, 0


def _sequential_run(configs, dirs):
    # a pack whose members finish one after the other (demo.ridge finishes them all at the end)
    for cfg, d in zip(configs, dirs, strict=True):
        DEMO_TASK.run([cfg], [d])


SEQUENTIAL = register_task(
    replace(DEMO_TASK, name="test.sequential", run=_sequential_run), replace=True
)


def _failing_run(configs, dirs):
    raise RuntimeError("task failed")


FAILING = register_task(
    replace(DEMO_TASK, name="test.failing", run=_failing_run, pack_key=None), replace=True
)
