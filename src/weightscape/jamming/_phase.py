"""Phase diagram: N*(P) per depth, P/N* with errors, N* = P / c fits and depth independence."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ._capacity import CapacityFit, DepthTest, fit_capacity, fit_capacity_by_depth
from ._protocol import Protocol
from ._search import NStarSearch, Problem, SearchConfig, search_nstar

__all__ = ["PhaseDiagram", "phase_diagram", "phase_table"]


@dataclass
class PhaseDiagram:
    """Result of :func:`phase_diagram`.

    Attributes:
        table: one row per (depth, P): ``depth, P, nstar, nstar_err, ratio`` (P/N*),
            ``ratio_err``, ``method``, ``n_undecided``, ``n_trap``, ``ndelta_frac_jammed``,
            ``rounds``, ``steps``, ``runs``.
        fits: ``{depth: CapacityFit}`` of ``N* = P / c`` (weighted, through the origin; R²).
        depth_test: χ² test that ``c`` is the same at every depth (None with one depth).
        searches: the per-problem searches (runs, records).
    """

    table: pd.DataFrame
    fits: dict[int, CapacityFit]
    depth_test: DepthTest | None
    searches: list[NStarSearch] = field(default_factory=list, repr=False)

    def fit_table(self) -> pd.DataFrame:
        rows = [
            {
                "depth": d,
                "c": f.c,
                "c_err": f.c_err,
                "r2": f.r2,
                "chi2": f.chi2,
                "dof": f.dof,
                "p_value": f.p_value,
                "n_points": f.n_points,
            }
            for d, f in self.fits.items()
        ]
        return pd.DataFrame(rows)


def phase_table(searches: Sequence[NStarSearch]) -> pd.DataFrame:
    """One row per search (see :class:`PhaseDiagram`); rows without an N* estimate are kept with
    NaN."""
    rows = []
    for s in searches:
        row = s.summary()
        n, e = row["nstar"], row["nstar_err"]
        ok = n is not None and math.isfinite(n) and n > 0
        row["ratio"] = row["P"] / n if ok else math.nan
        row["ratio_err"] = row["P"] * e / n**2 if ok and e is not None else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _fits(table: pd.DataFrame):
    good = table[table.nstar.notna() & table.nstar_err.notna() & (table.nstar_err > 0)].astype(
        {"nstar": float, "nstar_err": float}
    )
    fits, test = {}, None
    counts = good.groupby("depth").size()
    usable = counts[counts >= 2].index
    if len(usable) >= 2:
        fits, test = fit_capacity_by_depth(good[good.depth.isin(usable)])
    else:
        for dep in usable:
            g = good[good.depth == dep]
            fits[int(dep)] = fit_capacity(g.P, g.nstar, g.nstar_err)
    return fits, test


def phase_diagram(
    depths: Sequence[int],
    Ps: Sequence[int],
    protocol: Protocol,
    config: SearchConfig | None = None,
    *,
    data: str = "random",
    data_options: dict | None = None,
    executor: str = "memory",
    out: str | Path | None = None,
    resume: bool = True,
    max_workers: int | None = None,
    slurm: dict | None = None,
    log=None,
) -> PhaseDiagram:
    """Locate N* for every depth × P (all problems advance together, one ensemble per depth per
    round), then fit ``N* = P / c`` per depth and test depth independence.

    Args:
        depths: hidden-layer counts (≥ 1).
        Ps: numbers of training points.
        protocol: training protocol; config: search knobs.
        data, data_options: dataset (random: ``d = h``).
        executor, out, resume, max_workers, slurm: as in :func:`search_nstar`.
    """
    problems = [
        Problem(P=int(P), depth=int(L), data=data, data_options=data_options or {})
        for L in depths
        for P in Ps
    ]
    searches = search_nstar(
        problems,
        protocol,
        config,
        executor=executor,
        out=out,
        resume=resume,
        max_workers=max_workers,
        slurm=slurm,
        log=log,
    )
    table = phase_table(searches)
    fits, test = _fits(table)
    return PhaseDiagram(table, fits, test, list(searches))
