"""Locating N*: a batched bracketing + refinement search over width, and the reference scans.

At fixed data, P and depth, N* is where the jammed fraction over seeds crosses 1/2
(:func:`weightscape.jamming.fit_nstar`: logistic fit in ``ln N``, bootstrap error; undecided runs
and dead-unit traps reported, not counted). :func:`search_nstar` finds it for many problems at
once; each round trains every candidate width × seed of every unresolved problem as one batched
computation (one ensemble per depth):

1. **bracket**: round 0 tries ``widths_per_round`` widths whose N spans a factor ``span`` around
   the guess ``N ≈ P / ratio_guess``; while every width is on one side (jammed fraction > 1/2 or
   < 1/2) the next round shifts the window by ``span`` beyond the last width tried;
2. **refine**: once ``lo`` (largest width with jammed fraction > 1/2) and ``hi`` (smallest width
   above it with fraction < 1/2) exist, the next round tries up to ``widths_per_round`` untried
   integer widths strictly between them (log-spaced), until they are adjacent integers or
   ``max_rounds`` is reached.

N* is then fitted on every run of the problem. On the integer width grid, with the same seeds,
the bracket equals that of an exhaustive scan of all widths in it whenever the scan's jammed
fraction is monotone (:func:`scan_widths`; the test suite checks this).

:func:`descending_search` is the authors' recipe (widths from a fixed descending list, one net at a
time, a seed stops at its first run with ``N_Δ > 0.1 N``); :func:`scan_p` sweeps P at fixed
architecture (the crossing P* of the jammed fraction, increasing in P).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, NumericalError, check_positive
from ._nstar import NStarResult, fit_nstar
from ._protocol import Protocol, n_weights, width_for_n
from ._runner import RunRecord, records_frame, run_records

__all__ = [
    "NStarSearch",
    "Problem",
    "SearchConfig",
    "descending_search",
    "log_widths",
    "scan_p",
    "scan_widths",
    "search_nstar",
]


@dataclass(frozen=True)
class Problem:
    """One N* to locate: data, P and depth (random data: ``d = h`` unless ``d`` is given).

    Attributes:
        P: training points.
        depth: hidden layers L (≥ 1 for a width search).
        data: dataset name (``random``, ``mnist``, ``fashion-mnist``, ``mnist-sample``).
        d: input dimension of random data (None: ``d = h``, the paper's choice).
        data_options: extra :func:`weightscape.data.load` options (e.g. ``preset``).
        data_seed: base of the data seeds (member seed s uses data seed ``data_seed + s``).
    """

    P: int
    depth: int
    data: str = "random"
    d: int | None = None
    data_options: tuple = ()
    data_seed: int = 0

    def __post_init__(self):
        from ..data import available
        from ..errors import check_choice

        check_positive("P", self.P, integer=True)
        check_positive("depth", self.depth, integer=True)
        check_choice("data", self.data, available())  # before any folder or run is made
        if isinstance(self.data_options, dict):
            object.__setattr__(self, "data_options", tuple(sorted(self.data_options.items())))

    @property
    def label(self) -> str:
        return f"{self.data}-L{self.depth}-P{self.P}"

    def n_of(self, width: int) -> int:
        if self.data == "random":
            return n_weights(self.depth, width, self.d)
        d = dict(self.data_options).get("pca", 10)
        return n_weights(self.depth, width, d)

    def width_of(self, n: float) -> float:
        if self.data == "random":
            return width_for_n(self.depth, n, self.d)
        return width_for_n(self.depth, n, dict(self.data_options).get("pca", 10))

    def config(self, protocol: Protocol, width: int, seed: int) -> dict:
        return protocol.run_config(
            depth=self.depth,
            width=width,
            seed=seed,
            P=self.P,
            d=self.d,
            data=self.data,
            data_seed=self.data_seed + seed,
            data_options=dict(self.data_options),
        )


@dataclass(frozen=True)
class SearchConfig:
    """Knobs of :func:`search_nstar`.

    Attributes:
        seeds: seeds per width (an int k = seeds ``0..k-1``, or explicit seeds).
        widths_per_round: candidate widths per problem and round.
        max_rounds: at most this many rounds.
        ratio_guess: first guess of ``P / N*`` (random data: ≈ 3 in the paper; short budgets fit
            less, so smaller).
        span: factor in N spanned by the first round's widths, and the shift of a bracketing
            round.
        min_width, max_width: the width grid.
        n_boot: bootstrap replicates of the N* fit.
    """

    seeds: int | tuple[int, ...] = 8
    widths_per_round: int = 4
    max_rounds: int = 5
    ratio_guess: float = 2.0
    span: float = 4.0
    min_width: int = 1
    max_width: int = 4096
    n_boot: int = 1000

    def __post_init__(self):
        seeds = self.seeds
        if isinstance(seeds, int):
            check_positive("seeds", seeds, integer=True)
            seeds = tuple(range(seeds))
        seeds = tuple(int(s) for s in seeds)
        if not seeds:
            raise ConfigError("seeds=() is empty")
        object.__setattr__(self, "seeds", seeds)
        check_positive("widths_per_round", self.widths_per_round, integer=True)
        check_positive("max_rounds", self.max_rounds, integer=True)
        check_positive("ratio_guess", self.ratio_guess, finite=True)
        check_positive("span", self.span, finite=True)
        if self.span <= 1:
            raise ConfigError(f"span={self.span!r} must be > 1")
        check_positive("min_width", self.min_width, integer=True)
        check_positive("max_width", self.max_width, integer=True)
        check_positive("n_boot", self.n_boot, allow_zero=True, integer=True)


@dataclass
class NStarSearch:
    """Result of a search (or scan) for one problem.

    Attributes:
        problem: the problem.
        nstar: the N* fit over every run (:class:`NStarResult`: ``nstar``, ``err``, ``table``...).
        table: one row per width: ``width, N, n_runs, n_jammed, frac_jammed, frac_se,
            n_undecided, n_trap, ndelta_frac_jammed`` (mean N_Δ/N of the jammed runs).
        runs: one row per run (:func:`records_frame` + ``round``).
        bracket: ``(lo, hi)`` widths around the crossing (None when not bracketed).
        ndelta_frac_jammed: mean N_Δ/N of the jammed runs at the jammed width nearest N*
            (``lo``), with its standard error ``ndelta_frac_err``.
        rounds: rounds done; steps: total optimizer steps over all members (the cost);
        seconds: wall time.
        records: the run records (final gaps, nets).
    """

    problem: Problem
    nstar: NStarResult | None
    table: pd.DataFrame
    runs: pd.DataFrame
    bracket: tuple[int, int] | None
    ndelta_frac_jammed: float
    ndelta_frac_err: float
    rounds: int
    steps: int
    seconds: float
    records: list = field(default_factory=list, repr=False)

    def summary(self) -> dict:
        """JSON-ready scalars."""
        r = self.nstar
        return {
            "data": self.problem.data,
            "P": self.problem.P,
            "depth": self.problem.depth,
            "nstar": None if r is None else r.nstar,
            "nstar_err": None if r is None else r.err,
            "method": None if r is None else r.method,
            "n_undecided": None if r is None else r.n_undecided,
            "n_trap": None if r is None else r.n_trap,
            "bracket_lo": None if self.bracket is None else self.bracket[0],
            "bracket_hi": None if self.bracket is None else self.bracket[1],
            "ndelta_frac_jammed": self.ndelta_frac_jammed,
            "ndelta_frac_err": self.ndelta_frac_err,
            "rounds": self.rounds,
            "steps": self.steps,
            "runs": len(self.runs),
            "seconds": self.seconds,
        }


def log_widths(lo: float, hi: float, k: int, *, exclude=(), min_width=1, max_width=10**6):
    """Up to ``k`` distinct integer widths, log-spaced in ``[lo, hi]``, skipping ``exclude``."""
    lo, hi = max(lo, min_width), min(hi, max_width)
    if hi < lo:
        return []
    cands = sorted(set(range(math.ceil(lo), math.floor(hi) + 1)) - set(exclude))
    if len(cands) <= k:
        return cands
    targets = np.geomspace(cands[0], cands[-1], k)
    out: list[int] = []
    pool = list(cands)
    for t in targets:
        j = int(np.argmin([abs(math.log(c / t)) for c in pool]))
        out.append(pool.pop(j))
    return sorted(out)


def _width_table(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for w, g in runs.groupby("width", sort=True):
        dec = g[g.outcome.isin(["sat", "jammed"])]
        jam = g[g.outcome == "jammed"]
        n = len(dec)
        frac = len(jam) / n if n else math.nan
        rows.append(
            {
                "width": int(w),
                "N": int(g.N.iloc[0]),
                "n_runs": n,
                "n_jammed": len(jam),
                "frac_jammed": frac,
                "frac_se": math.sqrt(frac * (1 - frac) / n) if n else math.nan,
                "n_undecided": int((g.outcome == "undecided").sum()),
                "n_trap": int((g.outcome == "trap").sum()),
                "ndelta_frac_jammed": float(jam.ndelta_frac.mean()) if len(jam) else math.nan,
                "ndelta_frac_sd": float(jam.ndelta_frac.std(ddof=1)) if len(jam) > 1 else math.nan,
                "mean_steps": float(g.steps.mean()),
            }
        )
    return pd.DataFrame(rows)


def _bracket(table: pd.DataFrame):
    """``("below"|"above"|"bracket", lo, hi)`` from the per-width jammed fractions."""
    t = table[table.n_runs > 0].sort_values("width")
    if t.empty:
        return "none", None, None
    jam = t[t.frac_jammed > 0.5]
    if jam.empty:  # everything SAT (or at 1/2): N* is below the smallest width
        return "below", None, int(t.width.min())
    lo = int(jam.width.max())
    above = t[(t.width > lo) & (t.frac_jammed < 0.5)]
    if above.empty:
        return "above", lo, None
    return "bracket", lo, int(above.width.min())


def _finish(problem, runs: pd.DataFrame, records, rounds, seconds, n_boot, seed=0) -> NStarSearch:
    table = _width_table(runs)
    state, lo, hi = _bracket(table)
    nstar = None
    if len(runs):
        try:
            nstar = fit_nstar(runs.N.to_numpy(), runs.outcome.to_numpy(), n_boot=n_boot, seed=seed)
        except NumericalError:  # no decided run, or a flat fit: N* not located
            nstar = None
    ndf, nde = math.nan, math.nan
    if lo is not None:
        jam = runs[(runs.width == lo) & (runs.outcome == "jammed")]
        if len(jam):
            ndf = float(jam.ndelta_frac.mean())
            nde = (
                float(jam.ndelta_frac.std(ddof=1) / math.sqrt(len(jam)))
                if len(jam) > 1
                else math.nan
            )
    return NStarSearch(
        problem=problem,
        nstar=nstar,
        table=table,
        runs=runs,
        bracket=(lo, hi) if state == "bracket" else None,
        ndelta_frac_jammed=ndf,
        ndelta_frac_err=nde,
        rounds=rounds,
        steps=int(runs.steps.sum()) if len(runs) else 0,
        seconds=seconds,
        records=list(records),
    )


def _next_widths(problem: Problem, table: pd.DataFrame, cfg: SearchConfig) -> list[int]:
    tried = set(table.width.astype(int)) if len(table) else set()
    k, f = cfg.widths_per_round, cfg.span
    kw = dict(exclude=tried, min_width=cfg.min_width, max_width=cfg.max_width)
    if not tried:
        n0 = problem.P / cfg.ratio_guess
        return log_widths(
            problem.width_of(n0 / math.sqrt(f)), problem.width_of(n0 * math.sqrt(f)), k, **kw
        )
    state, lo, hi = _bracket(table)
    # Widths whose runs are all undecided (or traps) carry no outcome: the shifted window is
    # anchored at the farthest width tried on that side, so it always reaches untried widths.
    if state == "below":  # all SAT: shift the window down
        n_min = problem.n_of(min(hi, min(tried)))
        return log_widths(problem.width_of(n_min / f), hi - 1, k, **kw)
    if state == "above":
        n_max = problem.n_of(max(lo, max(tried)))
        return log_widths(lo + 1, problem.width_of(n_max * f), k, **kw)
    if state == "bracket":
        return log_widths(lo + 1, hi - 1, k, **kw)
    return []


def _run_round(configs, *, executor, out, resume, tag, max_workers=None, slurm=None):
    sub = None if out is None else Path(out) / tag
    return run_records(
        configs, executor=executor, out=sub, resume=resume, max_workers=max_workers, slurm=slurm
    )


def search_nstar(
    problems: Problem | Sequence[Problem],
    protocol: Protocol,
    config: SearchConfig | None = None,
    *,
    executor: str = "memory",
    out: str | Path | None = None,
    resume: bool = True,
    max_workers: int | None = None,
    slurm: dict | None = None,
    log=None,
) -> NStarSearch | list[NStarSearch]:
    """Locate N* for each problem by batched bracketing + refinement over width.

    Args:
        problems: one :class:`Problem` or several (all advance together: each round is one
            batched computation per depth).
        protocol: the training protocol.
        config: search knobs (default :class:`SearchConfig()`).
        executor: ``memory`` (no files) or a sweep executor (``inline``/``local``/``slurm``;
            each round is a sweep folder ``out/round<k>``, resumable).
        out: output folder for sweep executors.
        resume: re-use finished runs (sweep executors).
        log: optional ``log(message)`` for progress.

    Returns:
        An :class:`NStarSearch` per problem (a single one for a single problem).
    """
    single = isinstance(problems, Problem)
    probs = [problems] if single else list(problems)
    cfg = SearchConfig() if config is None else config
    t0 = time.perf_counter()
    runs = {i: pd.DataFrame() for i in range(len(probs))}
    recs: dict[int, list[RunRecord]] = {i: [] for i in range(len(probs))}
    active = set(range(len(probs)))
    rounds = {i: 0 for i in range(len(probs))}
    for r in range(cfg.max_rounds):
        configs, meta = [], []
        for i in sorted(active):
            table = _width_table(runs[i]) if len(runs[i]) else pd.DataFrame({"width": []})
            widths = _next_widths(probs[i], table, cfg)
            if not widths:
                active.discard(i)
                continue
            for w in widths:
                for s in cfg.seeds:
                    configs.append(probs[i].config(protocol, w, s))
                    meta.append(i)
        if not configs:
            break
        if log:
            log(f"search round {r}: {len(configs)} runs for {len(set(meta))} problems")
        new = _run_round(
            configs,
            executor=executor,
            out=out,
            resume=resume,
            tag=f"round{r}",
            max_workers=max_workers,
            slurm=slurm,
        )
        frame = records_frame(new, protocol.plateau)
        frame["round"] = r
        for i in set(meta):
            idx = [j for j, m in enumerate(meta) if m == i]
            part = frame.iloc[idx].copy()
            part["record"] = np.arange(len(recs[i]), len(recs[i]) + len(idx))
            runs[i] = pd.concat([runs[i], part], ignore_index=True)
            recs[i].extend(new[j] for j in idx)
            rounds[i] = r + 1
    secs = time.perf_counter() - t0
    res = [_finish(p, runs[i], recs[i], rounds[i], secs, cfg.n_boot) for i, p in enumerate(probs)]
    return res[0] if single else res


def scan_widths(
    problem: Problem,
    widths: Sequence[int],
    protocol: Protocol,
    seeds: int | Sequence[int] = 8,
    *,
    executor: str = "memory",
    out: str | Path | None = None,
    resume: bool = True,
    n_boot: int = 1000,
    max_workers: int | None = None,
    slurm: dict | None = None,
) -> NStarSearch:
    """Exhaustive scan: every width × seed in one batched computation; N* fitted on all runs.

    ``executor``, ``out``, ``resume``, ``max_workers``, ``slurm`` are passed to
    :func:`weightscape.jamming.run_records`.
    """
    seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)
    t0 = time.perf_counter()
    configs = [problem.config(protocol, int(w), s) for w in widths for s in seeds]
    recs = _run_round(
        configs,
        executor=executor,
        out=out,
        resume=resume,
        tag="scan",
        max_workers=max_workers,
        slurm=slurm,
    )
    frame = records_frame(recs, protocol.plateau)
    frame["round"] = 0
    return _finish(problem, frame, recs, 1, time.perf_counter() - t0, n_boot)


def _authors_outcome(frame: pd.DataFrame, jam_fraction: float) -> pd.DataFrame:
    """The authors' reading of a run that hit the budget: jammed when ``N_Δ > jam_fraction · N``
    (our plateau rule may still call it undecided); ``reason`` says so."""
    fr = frame.copy()
    k = (
        (fr.criterion == "budget")
        & (fr.outcome == "undecided")
        & (fr.n_unsat > jam_fraction * fr.N)
    )
    fr.loc[k, "outcome"] = "jammed"
    fr.loc[k, "ndelta_frac"] = fr.n_unsat[k] / fr.N[k]
    fr.loc[k, "reason"] = f"authors' rule: N_Δ > {jam_fraction:g} N at the budget"
    return fr


def descending_search(
    problem: Problem,
    widths: Sequence[int],
    protocol: Protocol,
    seeds: int | Sequence[int] = 8,
    *,
    jam_fraction: float = 0.1,
    n_boot: int = 1000,
) -> NStarSearch:
    """The authors' recipe: for each seed, widths from a descending list, one net at a time.

    A seed stops at its first run with ``N_Δ > jam_fraction · N`` (the paper: N* lies between the
    smallest width reaching ``N_Δ = 0`` and the first with ``N_Δ > 0.1 N``); such a run that hit
    the budget counts as jammed (the authors' reading), even where our plateau rule would call it
    undecided. Each run trains alone (an ensemble of one member), as in the authors' scripts.
    """
    seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)
    ws = sorted({int(w) for w in widths}, reverse=True)
    t0 = time.perf_counter()
    recs, frames = [], []
    for s in seeds:
        for w in ws:
            rec = run_records([problem.config(protocol, w, s)], executor="memory")[0]
            fr = _authors_outcome(records_frame([rec], protocol.plateau), jam_fraction)
            recs.append(rec)
            frames.append(fr)
            if fr.n_unsat.iloc[0] > jam_fraction * fr.N.iloc[0]:
                break
    runs = pd.concat(frames, ignore_index=True)
    runs["record"] = np.arange(len(runs))
    runs["round"] = 0
    return _finish(problem, runs, recs, 1, time.perf_counter() - t0, n_boot)


def scan_p(
    depth: int,
    width: int,
    Ps: Sequence[int],
    protocol: Protocol,
    seeds: int | Sequence[int] = 8,
    *,
    data: str = "random",
    d: int | None = None,
    data_options: dict | None = None,
    data_seed: int = 0,
    executor: str = "memory",
    out: str | Path | None = None,
    resume: bool = True,
    n_boot: int = 1000,
    max_workers: int | None = None,
    slurm: dict | None = None,
) -> tuple[NStarResult | None, pd.DataFrame, list[RunRecord]]:
    """Sweep P at fixed architecture (one batched computation); the crossing P* of the jammed
    fraction (increasing in P) by the same logistic fit. ``executor``, ``out``, ``resume``,
    ``max_workers``, ``slurm`` are passed to :func:`weightscape.jamming.run_records`.

    Every P gets its own data draws (member ``s`` at the ``i``-th P uses data seed
    ``data_seed + s + 100_003·i``): with one seed for all P the smaller sets would be the first
    rows of the larger ones, and the outcomes at neighbouring P would not be independent, as the
    bootstrap of the fit assumes. The net's initialisation seed is ``s`` at every P.

    Returns:
        ``(P* fit, runs table, records)``; the fit's ``nstar`` is P* (its table is per P).
    """
    seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)
    configs = []
    for i, P in enumerate(Ps):
        pr = Problem(
            P=int(P),
            depth=depth,
            data=data,
            d=d,
            data_options=data_options or {},
            data_seed=data_seed + 100_003 * i,
        )
        configs += [pr.config(protocol, width, s) for s in seeds]
    recs = _run_round(
        configs,
        executor=executor,
        out=out,
        resume=resume,
        tag="scanP",
        max_workers=max_workers,
        slurm=slurm,
    )
    frame = records_frame(recs, protocol.plateau)
    try:
        fit = fit_nstar(frame.P.to_numpy(), frame.outcome.to_numpy(), n_boot=n_boot)
    except NumericalError:  # no decided run, or a flat fit: P* not located
        fit = None
    return fit, frame, recs
