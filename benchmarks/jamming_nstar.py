"""Time to locate N*: our batched search vs the authors' recipe, same protocol and budget.

Random data, depth 2, d = h, ``--seeds`` seeds, the ``fast`` protocol (Adam 3e-3, constant lr)
with a fixed step budget. Both sides stop a run at N_Δ = 0 or at the budget.

* ours: :func:`weightscape.jamming.search_nstar` — every candidate width × seed of a round trains
  as one batched ensemble, bracketing then refinement over width, jammed members decided early
  by the plateau rule (``stop_reason="hook"``);
* the authors' recipe (:func:`weightscape.jamming.descending_search`): widths from a fixed
  descending log-spaced list, one net at a time, each seed stopping at its first run with
  N_Δ > 0.1 N, every run trained to N_Δ = 0 or the budget (``--baseline-plateau`` also gives it
  the plateau rule, to separate the two sources of the gain).

Prints both times, both N* estimates and, last, ``ratio: X`` (baseline time / ours).

    OMP_NUM_THREADS=1 python benchmarks/jamming_nstar.py            # P = 1000, 2e4 steps
    OMP_NUM_THREADS=1 python benchmarks/jamming_nstar.py --P 200 --max-steps 3000 --seeds 4
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from weightscape.jamming import (
    Problem,
    SearchConfig,
    descending_search,
    get_protocol,
    search_nstar,
    width_for_n,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--P", type=int, default=1000)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--max-steps", type=int, default=20_000)
    ap.add_argument("--baseline-plateau", action="store_true")
    a = ap.parse_args()

    prot = get_protocol("fast", max_steps=a.max_steps)
    base_prot = prot if a.baseline_plateau else dataclasses.replace(prot, plateau=None)
    prob = Problem(P=a.P, depth=a.depth)
    # the authors' list: roughly log-spaced widths from well above to well below N ≈ P / 1.5
    hi = width_for_n(a.depth, 4 * a.P / 1.5)
    lo = width_for_n(a.depth, a.P / 1.5 / 4)
    widths = sorted({round(w) for w in np.geomspace(lo, hi, 12)}, reverse=True)
    print(f"P={a.P} depth={a.depth} seeds={a.seeds} budget={a.max_steps} steps; "
          f"authors' widths {widths}")  # fmt: skip

    t0 = time.perf_counter()
    ours = search_nstar(
        prob, prot, SearchConfig(seeds=a.seeds, widths_per_round=4, ratio_guess=1.5, n_boot=500)
    )
    t_ours = time.perf_counter() - t0
    r = ours.nstar
    print(
        f"ours:     {t_ours:8.1f} s  N* = {r.nstar:.0f} ± {r.err:.0f} ({r.method}), "
        f"{len(ours.runs)} runs in {ours.rounds} rounds, {ours.steps} member-steps, "
        f"criteria {ours.runs.criterion.value_counts().to_dict()}"
    )

    t0 = time.perf_counter()
    base = descending_search(prob, widths, base_prot, seeds=a.seeds, n_boot=500)
    t_base = time.perf_counter() - t0
    b = base.nstar
    print(
        f"authors:  {t_base:8.1f} s  N* = {b.nstar:.0f} ± {b.err:.0f} ({b.method}), "
        f"{len(base.runs)} runs one at a time, {base.steps} steps, "
        f"criteria {base.runs.criterion.value_counts().to_dict()}"
    )
    print(f"ratio: {t_base / t_ours:.2f}")


if __name__ == "__main__":
    main()
