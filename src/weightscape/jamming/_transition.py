"""At the transition: the jump of N_Δ/N, gap distributions and exponents, Hessian spectra, and
the generalization curve (test error vs N at fixed P, with and without early stopping)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._gaps import GapExponentFit, GapHistogram, fit_gamma, fit_theta, gap_histogram
from ._protocol import Protocol
from ._runner import RunRecord, records_frame, run_records
from ._search import NStarSearch, Problem

__all__ = [
    "Generalization",
    "Spectra",
    "Transition",
    "available_real_dataset",
    "cusp_height",
    "generalization_curve",
    "spectra_near_nstar",
    "transition_stats",
]


#: Smallest |Δ| kept for the exponent fits (float64 rounding of outputs of order 1 is ~1e-15).
GAP_FLOOR = 1e-10


def _near_widths(search: NStarSearch, k: int = 2) -> tuple[list[int], list[int]]:
    """(jammed-side widths, SAT-side widths) nearest N*: the bracket, else the k closest."""
    t = search.table[search.table.n_runs > 0]
    if search.bracket is not None:
        lo, hi = search.bracket
        return [lo], [hi]
    if search.nstar is None or not math.isfinite(search.nstar.nstar or math.nan):
        return list(t.width[:1]), list(t.width[-1:])
    x = np.abs(np.log(t.N / search.nstar.nstar))
    near = t.iloc[np.argsort(x.to_numpy())[:k]]
    return list(near.width[near.frac_jammed > 0.5]), list(near.width[near.frac_jammed <= 0.5])


@dataclass
class Transition:
    """Statistics of the runs nearest N* (pooled over searches).

    Attributes:
        runs: the runs at the widths nearest N* (``side``: ``"jammed"``/``"sat"`` side).
        ndelta_frac: N_Δ/N of every decided run near N* (0 for SAT ones).
        jump: mean N_Δ/N of the jammed runs near N* and its standard error (the size of the
            discontinuity); min_jammed: the smallest N_Δ/N of a jammed run near N*.
        frac_sat: fraction of decided runs near N* that ended SAT.
        histogram: log-binned Δ histogram pooled over the runs near N*.
        theta, gamma: exponent fits (None when too few small gaps).
    """

    runs: pd.DataFrame
    ndelta_frac: np.ndarray
    jump: float
    jump_err: float
    min_jammed: float
    frac_sat: float
    histogram: GapHistogram | None
    hist_jammed: GapHistogram | None
    hist_sat: GapHistogram | None
    theta: GapExponentFit | None
    gamma: GapExponentFit | None
    notes: list = field(default_factory=list)

    @property
    def bimodal(self) -> bool:
        """Both outcomes occur near N* and the jammed ones sit a finite jump away from 0
        (mean N_Δ/N more than 2 standard errors above 0, smallest jammed value > 0)."""
        both = 0.0 < self.frac_sat < 1.0
        return bool(both and self.jump - 2 * self.jump_err > 0 and self.min_jammed > 0)


def transition_stats(
    searches: Sequence[NStarSearch], *, n_boot: int = 300, decades: float = 2.0
) -> Transition:
    """Pool the runs nearest N* over ``searches`` and measure the jump and the gap exponents.

    θ is fitted on the positive gaps of the jammed runs near N*, γ on the negative gaps of the SAT
    runs near N* (the spec), log–log on the CDF over the smallest ``decades`` of each side,
    bootstrap over runs.
    """
    parts, gj, gs, notes = [], [], [], []
    for s in searches:
        jw, sw = _near_widths(s)
        r = s.runs
        for side, ws in (("jammed", jw), ("sat", sw)):
            sel = r[r.width.isin(ws) & r.outcome.isin(["sat", "jammed"])].copy()
            sel["side"] = side
            sel["problem"] = s.problem.label
            parts.append(sel)
            for i in sel.index:
                rec = s.records[int(r.record[i])]
                if side == "jammed" and r.outcome[i] == "jammed":
                    gj.append(np.asarray(rec.gaps_train))
                if side == "sat" and r.outcome[i] == "sat":
                    gs.append(np.asarray(rec.gaps_train))
    runs = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    nd = runs.ndelta_frac.to_numpy(float) if len(runs) else np.array([])
    jam = runs[runs.outcome == "jammed"] if len(runs) else runs
    jump = float(jam.ndelta_frac.mean()) if len(jam) else math.nan
    jump_err = (
        float(jam.ndelta_frac.std(ddof=1) / math.sqrt(len(jam))) if len(jam) > 1 else math.nan
    )
    # Gaps at float64 rounding level (|Δ| < 1e-10) are not part of the distribution: a SAT run
    # stops at the step where its last gap crossed 0, leaving that gap at ~1e-15.
    gj = [g[np.abs(g) >= GAP_FLOOR] for g in gj]
    gs = [g[np.abs(g) >= GAP_FLOOR] for g in gs]
    theta = gamma = None
    if gj:
        try:
            theta = fit_theta(gj, decades=decades, n_boot=n_boot)
        except Exception as err:
            notes.append(f"theta not fitted: {err}")
    if gs:
        try:
            gamma = fit_gamma(gs, decades=decades, n_boot=n_boot)
        except Exception as err:
            notes.append(f"gamma not fitted: {err}")
    return Transition(
        runs=runs,
        ndelta_frac=nd,
        jump=jump,
        jump_err=jump_err,
        min_jammed=float(jam.ndelta_frac.min()) if len(jam) else math.nan,
        frac_sat=float((runs.outcome == "sat").mean()) if len(runs) else math.nan,
        histogram=gap_histogram(gj + gs) if gj or gs else None,
        hist_jammed=gap_histogram(gj) if gj else None,
        hist_sat=gap_histogram(gs) if gs else None,
        theta=theta,
        gamma=gamma,
        notes=notes,
    )


# ------------------------------------------------------------------------------------------------
# spectra


@dataclass
class Spectra:
    """Hessian spectra at the end of runs on both sides of N*.

    Attributes:
        table: one row per net: ``side, width, N, n_params, n_unsat, outcome``, extreme
            eigenvalues, counts of zero/negative eigenvalues of H, ``n_eff``.
        eigs: ``{label: {"H0": [n], "Hp": [n], "H": [n]}}`` eigenvalues per net.
    """

    table: pd.DataFrame
    eigs: dict


def spectra_near_nstar(
    search: NStarSearch, *, per_side: int = 1, with_neff: bool = True
) -> Spectra:
    """Dense H0, Hp, H (float64) and N_eff for ``per_side`` nets on each side of N*.

    Jammed side: jammed runs at the jammed width nearest N*; SAT side: SAT runs at the SAT width
    nearest N* (there ``H = 0`` exactly: no unsatisfied gap).
    """
    import torch

    from ..curvature import hinge_hessian_split, n_eff

    jw, sw = _near_widths(search)
    r = search.runs
    rows, eigs = [], {}
    for side, ws, want in (("jammed", jw, "jammed"), ("sat", sw, "sat")):
        sel = r[r.width.isin(ws) & (r.outcome == want)]
        # SAT side: runs that reached N_Δ = 0 first (there H = 0 exactly)
        sel = sel.sort_values("criterion", key=lambda c: c != "unsat_zero", kind="stable")
        sel = sel.head(per_side)
        for i in sel.index:
            rec: RunRecord = search.records[int(r.record[i])]
            params, spec = rec.load_net()
            ds = rec.load_data()
            x = torch.as_tensor(np.array(ds.x), dtype=params[0].dtype)
            y = torch.as_tensor(np.array(ds.y), dtype=params[0].dtype)
            kappa = float(rec.config.get("train.kappa") or 1.0)
            hs = hinge_hessian_split((params, spec), x, y, kappa=kappa)
            label = f"{side}-w{int(r.width[i])}-s{int(r.seed[i])}"
            eigs[label] = {k: getattr(hs, f"eigs_{k}").cpu().numpy() for k in ("H0", "Hp", "H")}
            row = {
                "label": label,
                "side": side,
                "width": int(r.width[i]),
                "N": int(r.N[i]),
                "n_params": hs.n_params,
                "n_unsat": hs.n_unsat,
                "hidden_units": spec.n_hidden_units,
                "outcome": r.outcome[i],
            }
            for k in ("H0", "Hp", "H"):
                e = eigs[label][k]
                row[f"{k}_min"] = float(e[0])
                row[f"{k}_max"] = float(e[-1])
                c = hs.counts[k].to_dict()
                for ck, cv in c.items():
                    if isinstance(cv, int | float):
                        row[f"{k}_{ck}"] = cv
            row["n_eff"] = n_eff((params, spec), x).n_eff if with_neff else math.nan
            rows.append(row)
    return Spectra(pd.DataFrame(rows), eigs)


# ------------------------------------------------------------------------------------------------
# generalization


def available_real_dataset() -> str:
    """``mnist`` when its files are found, else ``fashion-mnist``, else the bundled
    ``mnist-sample``."""
    from ..data import load
    from ..errors import WeightscapeError

    for name in ("mnist", "fashion-mnist"):
        try:
            load(name, preset="geiger2019-pca10", train_size=10, test_size=10)
            return name
        except WeightscapeError:
            continue
    return "mnist-sample"


@dataclass
class Generalization:
    """Test error vs N at fixed P.

    Attributes:
        table: one row per width: ``width, N, n_runs, frac_sat, test_err`` (final, mean over
            seeds), ``test_err_se``, ``test_err_es`` (early stopping: the smallest test error
            over the measurement steps), ``test_err_es_se``.
        runs: one row per run.
        dataset: the dataset's name; P: training points; n_test: test points.
        nstar: the N where the SAT fraction crosses 1/2 (interpolated in log N; nan if it
            does not cross).
        peak_N: the N of the largest final test error.
        records: the run records, in the order of ``runs``.
    """

    table: pd.DataFrame
    runs: pd.DataFrame
    dataset: str
    P: int
    n_test: int
    nstar: float
    peak_N: float
    records: list = field(default_factory=list, repr=False)


def cusp_height(values, errors, k: int) -> tuple[float, float]:
    """Height of a cusp (local maximum) of a curve at index ``k`` and its standard error.

    ``height = values[k] − max(values[k−1], values[k+1])`` (positive for a local maximum) and
    ``err = hypot(errors[k], errors[j])`` with ``j`` the higher neighbour (nan errors count as 0).
    An endpoint ``k`` (no neighbour on one side) gives ``(nan, nan)``: a cusp cannot be judged
    there.

    Args:
        values: ``[n]`` the curve (e.g. test error vs N, in increasing N).
        errors: ``[n]`` standard errors of ``values``.
        k: index of the point tested (e.g. the peak of the final test error).
    """
    v = np.asarray(values, dtype=np.float64)
    e = np.nan_to_num(np.asarray(errors, dtype=np.float64), nan=0.0)
    if v.shape != e.shape or v.ndim != 1:
        raise ValueError(f"values {v.shape} and errors {e.shape} must be equal 1-D shapes")
    if not 0 < k < len(v) - 1:
        return math.nan, math.nan
    j = k - 1 if v[k - 1] >= v[k + 1] else k + 1
    return float(v[k] - v[j]), float(math.hypot(e[k], e[j]))


def generalization_curve(
    P: int,
    widths: Sequence[int],
    depth: int,
    protocol: Protocol,
    seeds: int | Sequence[int] = 4,
    *,
    dataset: str | None = None,
    test_size: int = 1000,
    executor: str = "memory",
    out: str | Path | None = None,
    resume: bool = True,
    max_workers: int | None = None,
    slurm: dict | None = None,
) -> Generalization:
    """Train every width × seed at fixed P on a real dataset (MNIST-PCA preset of the paper) in
    one batched computation; test error at the end and with early stopping (the best test error
    over the measurement steps). ``executor``, ``out``, ``resume``, ``max_workers``, ``slurm``
    are passed to :func:`weightscape.jamming.run_records`."""
    seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)
    name = dataset or available_real_dataset()
    opts = {"preset": "geiger2019-pca10", "test_size": int(test_size)}
    prob = Problem(P=int(P), depth=depth, data=name, data_options=opts)
    configs = [prob.config(protocol, int(w), s) for w in widths for s in seeds]
    recs = run_records(
        configs, executor=executor, out=out, resume=resume, max_workers=max_workers, slurm=slurm
    )
    runs = records_frame(recs, protocol.plateau)
    n_test = len(recs[0].gaps_test) if recs[0].gaps_test is not None else test_size
    es = []
    for rec in recs:
        h = rec.history
        es.append(float(h["test_errors"].min()) if "test_errors" in h else math.nan)
    runs["test_err"] = runs.test_errors / n_test
    runs["test_err_es"] = np.asarray(es) / n_test
    rows = []
    for w, g in runs.groupby("width", sort=True):
        n = len(g)
        rows.append(
            {
                "width": int(w),
                "N": int(g.N.iloc[0]),
                "n_runs": n,
                "frac_sat": float((g.outcome == "sat").mean()),
                "frac_jammed": float((g.outcome == "jammed").mean()),
                "test_err": float(g.test_err.mean()),
                "test_err_se": float(g.test_err.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
                "test_err_es": float(g.test_err_es.mean()),
                "test_err_es_se": float(g.test_err_es.std(ddof=1) / math.sqrt(n))
                if n > 1
                else math.nan,
            }
        )
    table = pd.DataFrame(rows)
    nstar = math.nan
    f = table.frac_sat.to_numpy()
    for i in range(len(f) - 1):
        if f[i] < 0.5 <= f[i + 1]:
            x0, x1 = math.log(table.N[i]), math.log(table.N[i + 1])
            t = (0.5 - f[i]) / (f[i + 1] - f[i])
            nstar = math.exp(x0 + t * (x1 - x0))
            break
    peak = float(table.N[int(table.test_err.idxmax())]) if len(table) else math.nan
    return Generalization(table, runs, name, int(P), int(n_test), nstar, peak, list(recs))
