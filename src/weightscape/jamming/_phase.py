"""Phase diagram: N*(P) per depth, P/N* with errors, N* = P / c fits and depth independence;
and the fixed-N variant (P swept at one architecture per depth, the companion paper's Fig. 1B)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import ConfigError, check_positive
from ._capacity import (
    CapacityFit,
    DepthTest,
    depth_independence,
    fit_capacity,
    fit_capacity_by_depth,
)
from ._nstar import NStarResult
from ._protocol import Protocol, n_weights, width_for_n
from ._search import NStarSearch, Problem, SearchConfig, scan_p, search_nstar

__all__ = [
    "FixedNDiagram",
    "PhaseDiagram",
    "fixed_n_diagram",
    "fixed_n_sizes",
    "phase_diagram",
    "phase_table",
]


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


@dataclass
class FixedNDiagram:
    """Result of :func:`fixed_n_diagram`.

    Attributes:
        table: one row per depth: ``depth, width, N, P_star, P_star_err, ratio`` (P*/N),
            ``ratio_err``, ``method`` (of the P* fit: ``logistic``, ``separated``, ``all_sat``,
            ``all_jammed``; ``none`` without a fit: no decided run, or a logistic slope of
            exactly 0; ``inverted`` when the jammed fraction falls with P, whose crossing is not
            counted as P*), ``n_runs, n_undecided, n_trap``.
        runs: every run (the columns of :func:`weightscape.jamming.records_frame`, plus
            ``alpha = P / N``).
        fits: ``{depth: NStarResult}`` of P* (its ``nstar`` is P*; None where no fit exists).
        depth_test: χ² test that P*/N is the same at every depth (None with fewer than two
            depths where P* has a finite error).
    """

    table: pd.DataFrame
    runs: pd.DataFrame
    fits: dict[int, NStarResult | None]
    depth_test: DepthTest | None


def fixed_n_sizes(
    depths: Sequence[int], N: int, ratios: Sequence[float]
) -> list[tuple[int, int, int, list[int]]]:
    """``[(depth, width, N_depth, Ps)]``: the architecture and the P grid of
    :func:`fixed_n_diagram` at each depth, all checked before anything runs.

    The width is the one whose ``N_depth = n_weights(depth, h)`` (``d = h``) is closest to ``N``;
    ``Ps`` are the distinct ``round(alpha · N_depth)`` (at least 2) for ``alpha`` in ``ratios``.

    Raises:
        ConfigError: a bad ``N``, depth or ratio, a depth given twice, or a ratio grid giving
            fewer than 2 distinct P at some depth.
    """
    check_positive("N", N, integer=True)
    if len(depths) == 0:
        raise ConfigError("depths must name at least one depth")
    if len(set(depths)) < len(depths):  # a depth twice would pass the depth test against itself
        raise ConfigError(f"depths={list(depths)!r} repeats a depth; give each depth once")
    for a in ratios:
        check_positive("ratios", a, finite=True)  # round(inf · N) would raise
    out = []
    for L in depths:
        check_positive("depth", L, integer=True)
        h0 = width_for_n(L, N)
        width = min(
            {max(1, math.floor(h0)), max(1, math.ceil(h0))},
            key=lambda h, L=L: abs(n_weights(L, h) - N),
        )
        n_l = n_weights(L, width)
        Ps = sorted({max(2, round(a * n_l)) for a in ratios})
        if len(Ps) < 2:
            raise ConfigError(
                f"ratios={list(ratios)!r} give fewer than 2 distinct P at depth {L} (N = {n_l}); "
                "give at least two ratios that differ by more than 1/N"
            )
        out.append((int(L), width, n_l, Ps))
    return out


def fixed_n_diagram(
    depths: Sequence[int],
    N: int,
    ratios: Sequence[float],
    protocol: Protocol,
    seeds: int | Sequence[int] = 8,
    *,
    data_seed: int = 0,
    executor: str = "memory",
    out: str | Path | None = None,
    resume: bool = True,
    n_boot: int = 1000,
    max_workers: int | None = None,
    slurm: dict | None = None,
    log=None,
) -> FixedNDiagram:
    """P swept at a fixed architecture per depth, random data with ``d = h`` (the companion
    paper's Fig. 1B: N ≈ 8k for L = 2, 3, 5, P around P/N ≈ 2.8–3.3).

    At each depth the width is the one whose ``N = n_weights(depth, h)`` is closest to ``N``
    (so the depths' N differ by a few per cent), ``P = round(alpha · N_depth)`` for each
    ``alpha`` in ``ratios`` (:func:`fixed_n_sizes`, checked for every depth before the first
    runs), and :func:`scan_p` finds P*, the P where the jammed fraction crosses
    1/2, with its bootstrap error. Unlike the width search at fixed P, P is not tied to an
    integer width grid, so P*/N is resolved finely even where adjacent widths differ in N by
    tens of per cent (small widths at depth ≥ 3).

    Args:
        depths: hidden-layer counts (≥ 1).
        N: target number of weights.
        ratios: ``P / N`` values swept (≥ 2 distinct P per depth).
        protocol: training protocol.
        seeds: seeds per P.
        data_seed: base data seed (each P its own draws, see :func:`scan_p`).
        executor, out, resume, max_workers, slurm: as in :func:`scan_p` (depth ``L`` writes
            under ``out/L<L>``).
        n_boot: bootstrap replicates of each P* fit.
        log: optional ``log(message)`` callable for progress.
    """
    rows, frames, fits = [], [], {}
    for L, width, n_l, Ps in fixed_n_sizes(depths, N, ratios):
        if log is not None:
            log(f"fixed-N sweep: depth {L}, width {width} (N = {n_l}), P in {Ps}")
        fit, frame, _ = scan_p(
            L,
            width,
            Ps,
            protocol,
            seeds,
            data_seed=data_seed,
            executor=executor,
            out=None if out is None else Path(out) / f"L{L}",
            resume=resume,
            n_boot=n_boot,
            max_workers=max_workers,
            slurm=slurm,
        )
        frame = frame.assign(alpha=frame.P / n_l)
        frames.append(frame)
        fits[L] = fit
        # a crossing counts only with the jammed fraction rising with P (slope > 0; ±inf for
        # separated data): a falling one is not a jamming transition
        ok = fit is not None and math.isfinite(fit.nstar) and fit.slope > 0
        err = fit.err if ok and math.isfinite(fit.err) and fit.err > 0 else math.nan
        if fit is None:
            method = "none"
        elif math.isfinite(fit.nstar) and not fit.slope > 0:
            method = "inverted"
        else:
            method = fit.method
        rows.append(
            {
                "depth": L,
                "width": width,
                "N": n_l,
                "P_star": fit.nstar if ok else math.nan,
                "P_star_err": err,
                "ratio": fit.nstar / n_l if ok else math.nan,
                "ratio_err": err / n_l,
                "method": method,
                "n_runs": len(frame),
                "n_undecided": int(frame.outcome.eq("undecided").sum()),
                "n_trap": int(frame.outcome.eq("trap").sum()),
            }
        )
    table = pd.DataFrame(rows)
    good = table[table.ratio.notna() & table.ratio_err.notna()]
    test = depth_independence(good.ratio, good.ratio_err, good.depth) if len(good) >= 2 else None
    return FixedNDiagram(table, pd.concat(frames, ignore_index=True), fits, test)
