"""Depth-0 anchor: trained linear classifiers against Cover's C(P, N) and an exact LP test.

A linear classifier ``f = w · x`` (no hidden layer, no bias) on raw Gaussian inputs reaches
``N_Δ = 0`` for any margin κ > 0 iff the points are linearly separable (the weight norm is free).
The fraction of SAT instances at ``N = d`` then follows

.. math:: C(P, N) = 2^{1-P} \\sum_{k<N} \\binom{P-1}{k},

and each instance's outcome can be checked against :func:`weightscape.jamming.lp_separable`.
All instances (every P × instance) train as one batched ensemble (per-member data, zero-padded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import check_positive
from ._cover import cover_probability, lp_separable
from ._protocol import Protocol, get_protocol
from ._runner import records_frame, run_records

__all__ = ["CoverCheck", "cover_check", "depth0_protocol"]


def depth0_protocol(max_steps: int = 20_000, lr: float = 0.1) -> Protocol:
    """The ``fast`` protocol on raw inputs (no centring, no rescaling: Cover's setting)."""
    from dataclasses import replace

    fast = get_protocol("fast")
    return replace(fast, name="depth0", center=False, normalize=None, max_steps=max_steps, lr=lr)


@dataclass
class CoverCheck:
    """Result of :func:`cover_check`.

    Attributes:
        table: one row per P: ``P, N, n, n_sat, n_jammed, n_undecided, frac_sat, se, cover,
            z`` (``(frac − C)/se`` with the binomial se of C), ``n_lp_sep``, ``disagree``
            (outcome ≠ LP verdict among decided runs), ``disagree_sep_jammed`` (LP separable,
            run jammed: a finite budget misses tiny margins).
        chi2, dof, p_value: χ² of the SAT counts against C(P, N) over the P values (binomial
            variances of the expected counts; P values where C ∈ {0, 1} are left out).
        disagreements: total instance disagreements with the LP test.
        chi2_lp, p_value_lp: the same χ² for the exact LP-separable counts (checks the data draw
            itself against Cover, independently of training).
        runs: one row per instance (run record fields + ``lp_separable``).
    """

    table: pd.DataFrame
    chi2: float
    dof: int
    p_value: float
    disagreements: int
    runs: pd.DataFrame
    chi2_lp: float = float("nan")
    p_value_lp: float = float("nan")


def cover_check(
    N: int,
    Ps: Sequence[int],
    instances: int,
    protocol: Protocol | None = None,
    *,
    seed: int = 0,
    executor: str = "memory",
    out: str | Path | None = None,
    resume: bool = True,
    max_workers: int | None = None,
    slurm: dict | None = None,
) -> CoverCheck:
    """Train ``instances`` linear classifiers per P at ``N = d`` and compare with Cover and LP.

    Args:
        N: input dimension (= number of weights).
        Ps: numbers of points.
        instances: instances per P (each its own data draw, labels iid ±1).
        protocol: training protocol (default :func:`depth0_protocol`).
        seed: base seed of the data draws.
        executor, out, resume, max_workers, slurm: as in :func:`weightscape.jamming.run_records`.
    """
    check_positive("N", N, integer=True)
    check_positive("instances", instances, integer=True)
    prot = depth0_protocol() if protocol is None else protocol
    configs = []
    for P in Ps:
        for i in range(instances):
            c = prot.run_config(
                depth=0,
                width=N,
                seed=i,
                P=int(P),
                d=N,
                data_seed=seed + 100_003 * int(P) + i,
                data_options={"labels": "iid"},
            )
            configs.append(c)
    recs = run_records(
        configs, executor=executor, out=out, resume=resume, max_workers=max_workers, slurm=slurm
    )
    runs = records_frame(recs, prot.plateau)
    lp = []
    for r in recs:
        ds = r.load_data()
        lp.append(lp_separable(np.asarray(ds.x), np.asarray(ds.y)))
    runs["lp_separable"] = lp
    rows = []
    for P, g in runs.groupby("P", sort=True):
        n = len(g)
        sat = int((g.outcome == "sat").sum())
        dec = g[g.outcome.isin(["sat", "jammed"])]
        C = float(cover_probability(P, N))
        se = float(np.sqrt(C * (1 - C) / n))
        dis = int(((dec.outcome == "sat") != dec.lp_separable).sum())
        rows.append(
            {
                "P": int(P),
                "N": N,
                "alpha": P / N,
                "n": n,
                "n_sat": sat,
                "n_jammed": int((g.outcome == "jammed").sum()),
                "n_undecided": int((g.outcome == "undecided").sum()),
                "frac_sat": sat / n,
                "se": se,
                "cover": C,
                "z": (sat / n - C) / se if se > 0 else np.nan,
                "n_lp_sep": int(g.lp_separable.sum()),
                "frac_lp": float(g.lp_separable.mean()),
                "disagree": dis,
                "disagree_sep_jammed": int(((dec.outcome == "jammed") & dec.lp_separable).sum()),
            }
        )
    table = pd.DataFrame(rows)
    ok = (table.cover > 0) & (table.cover < 1)
    t = table[ok]
    var = t.n * t.cover * (1 - t.cover)
    chi2 = float(((t.n_sat - t.n * t.cover) ** 2 / var).sum())
    chi2_lp = float(((t.n_lp_sep - t.n * t.cover) ** 2 / var).sum())
    dof = int(ok.sum())
    p = float(stats.chi2.sf(chi2, dof)) if dof else float("nan")
    p_lp = float(stats.chi2.sf(chi2_lp, dof)) if dof else float("nan")
    return CoverCheck(table, chi2, dof, p, int(table.disagree.sum()), runs, chi2_lp, p_lp)
