"""Sweep overhead: N tiny runs through the inline, local and (when available) Slurm executors.

Baseline: the same runs computed by calling the task directly in a loop (no sweep machinery).
Overhead per run = (executor wall time - direct wall time) / N, one run per job. Last, the packed
ensemble (runs sharing data recipe and optimizer computed as one batched pack) against one run per
job on the local executor, printed as ``ratio: X`` (one-run-per-job time / packed time).

Usage: python benchmarks/sweep_overhead.py [--runs 200] [--steps 300] [--workers 2] [--no-slurm]
Slurm is used when ``sbatch`` is on PATH and ``sinfo`` answers (scripts/slurm-up.sh starts one).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from weightscape.sweeps import DEMO_TASK, Sweep, register_task, run_pack, run_sweep

UNPACKED = register_task(replace(DEMO_TASK, name="bench.unpacked", pack_key=None), replace=True)


def _slurm_up() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return out.returncode == 0 and any(s in out.stdout for s in ("idle", "mixed"))


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-slurm", action="store_true")
    args = ap.parse_args()

    base = {"steps": args.steps, "log_every": 50, "n": 32, "d": 8, "width": 16}
    axes = {"seed": list(range(args.runs))}
    packed = Sweep(task="demo.ridge", base=base, axes=axes)
    single = Sweep(task="bench.unpacked", base=base, axes=axes)
    n = len(packed)
    tmp = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    try:
        # baseline: the task called directly, one run at a time, one thread
        cfgs, hashes = single.expand(), single.hashes()

        def direct():
            for c, h in zip(cfgs, hashes, strict=True):
                run_pack(UNPACKED, [c], [tmp / "direct" / h], threads=1)

        t_direct = _timed(direct)
        print(f"runs: {n}, steps: {args.steps}, workers: {args.workers}, threads/worker: 1")
        print(f"direct task calls (baseline): {t_direct:8.2f} s  ({t_direct / n * 1e3:.2f} ms/run)")

        def report(name, seconds, par=1):
            # with `par` workers the ideal time is t_direct / par
            over = (seconds - t_direct / par) / n
            print(f"{name:<34s}{seconds:8.2f} s  overhead {over * 1e3:7.2f} ms/run")

        t_inline = _timed(lambda: run_sweep(single, tmp / "inline", executor="inline"))
        report("inline, one run per job:", t_inline)
        t_local1 = _timed(
            lambda: run_sweep(
                single, tmp / "local1", executor="local", max_workers=args.workers
            ).raise_on_failure()
        )
        report(f"local x{args.workers}, one run per job:", t_local1, args.workers)
        if not args.no_slurm and _slurm_up():
            t_slurm = _timed(
                lambda: run_sweep(
                    single, tmp / "slurm1", executor="slurm", slurm={"time": 30}, poll_s=0.5
                ).raise_on_failure()
            )
            report("slurm, one run per job:", t_slurm, args.workers)
        else:
            print("slurm: not available here (start it with scripts/slurm-up.sh)")

        t_inline_p = _timed(lambda: run_sweep(packed, tmp / "inline_p", executor="inline"))
        report("inline, packed (1 pack):", t_inline_p)
        t_local_p = _timed(
            lambda: run_sweep(
                packed, tmp / "local_p", executor="local", max_workers=args.workers
            ).raise_on_failure()
        )
        report(f"local x{args.workers}, packed ({args.workers} packs):", t_local_p, args.workers)
        print(f"packed speedup, inline: {t_inline / t_inline_p:.2f}x")
        print(
            f"packed speedup, local (one-run-per-job {t_local1:.2f} s / packed {t_local_p:.2f} s)"
        )
        print(f"ratio: {t_local1 / t_local_p:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
