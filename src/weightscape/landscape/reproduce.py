"""``weightscape reproduce landscape``: study B end to end (registers the :class:`Study`).

Becker, Zhang & Lee, PRL 124, 108301 (2020): at a fixed number of parameters, depth (1) lowers
the number of stationary points, (2) clusters the minima, (3) flattens the log-volume–energy
tradeoff. Each claim is checked for the spherical H-spin model and for real networks, with one
fixed rule (:func:`depth_trend`: an OLS slope against depth with the claimed sign at two
standard errors). Scales (see ``docs/studies/landscape.md``):

* ``smoke`` (~1-2 min on a 2-core CPU): analytic curves (N = 60, 120, 240); enumeration at
  N = 12 (H = 2..6, 8 disorder samples); GD restarts at N = 36 (H = 3..6, 4 samples x 150);
  tanh and relu nets on a 150-point, 16-PCA digits subset at N = 200, hidden depth 1-3, 8 inits.
* ``small`` (<= 30 min): enumeration at N = 12 and 24 (16 samples); restarts at N = 60
  (H = 3..8, 4 x 500); tanh and relu nets on 300 digits (32 PCA) at N = 400, depth 1-4,
  24 inits.
* ``paper``: enumeration at N = 12, 24 (100 samples); restarts at N = 120 (H = 3..10,
  8 x 2000); digits (all 1797 points, 64 pixels) at N = 1000, depth 1-6, relu and tanh,
  100 inits in 4 chunks (GPU or Slurm).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from scipy import stats

from ..reproduce import Claim, Plan, Study, StudyContext, StudyOutcome, register_study
from ._analytic import analytic_table, kac_rice_log_mean
from ._figures import (
    net_distances_figure,
    net_logwidth_figure,
    net_minima_figure,
    spin_counts_figure,
    spin_logvolume_figure,
    spin_overlaps_figure,
)
from ._minima import DescentConfig
from ._realnets import RealNetConfig, RealNetMinima, _cosines, summarize_realnet
from ._stationary import EnumerationConfig
from ._study import depth_trend, realnet_sweep, spin_counts, spin_minima

__all__ = ["SCALES", "STUDY"]

SCALES: dict[str, dict] = {
    "smoke": {
        "analytic_N": (60, 120, 240),
        "analytic_H": tuple(range(2, 16)),
        "counts": {"Ns": (12,), "H": (2, 3, 4, 5, 6), "D": 8, "starts": 200, "rounds": 10},
        "minima": {"N": 36, "H": (3, 4, 5, 6), "D": 4, "B": 150},
        "nets": {
            "activations": ("tanh", "relu"),
            "depths": (1, 2, 3),
            "base": {
                "train_size": 150,
                "pca": 16,
                "n_params": 200,
                "n_inits": 8,
                "max_steps": 4000,
            },
            "relu_max_steps": 2000,
            "chunks": 1,
        },
    },
    "small": {
        "analytic_N": (60, 120, 240),
        "analytic_H": tuple(range(2, 16)),
        "counts": {"Ns": (12, 24), "H": (2, 3, 4, 5, 6, 7), "D": 16, "starts": 300, "rounds": 12},
        "minima": {"N": 60, "H": (3, 4, 5, 6, 7, 8), "D": 4, "B": 500},
        "nets": {
            "activations": ("tanh", "relu"),
            "depths": (1, 2, 3, 4),
            "base": {
                "train_size": 300,
                "pca": 32,
                "n_params": 400,
                "n_inits": 24,
                "max_steps": 10_000,
            },
            "relu_max_steps": 4000,
            "chunks": 1,
        },
    },
    "paper": {
        "analytic_N": (60, 120, 240),
        "analytic_H": tuple(range(2, 16)),
        "counts": {"Ns": (12, 24), "H": (2, 3, 4, 5, 6, 7), "D": 100, "starts": 500, "rounds": 20},
        "minima": {"N": 120, "H": (3, 4, 5, 6, 7, 8, 9, 10), "D": 8, "B": 2000},
        "nets": {
            "activations": ("tanh", "relu"),
            "depths": (1, 2, 3, 4, 5, 6),
            "base": {"n_params": 1000, "n_inits": 100, "max_steps": 20_000},
            "relu_max_steps": 20_000,
            "chunks": 4,
        },
    },
}


def _cached(ctx: StudyContext, name: str, fn: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """Compute a table once: with ``--resume`` a table already under ``ctx.out/cache`` is read."""
    from ..store import write_parquet

    path = ctx.out / "cache" / f"{name}.parquet"
    if ctx.resume and path.exists():
        ctx.log(f"re-using {path.name}")
        return pd.read_parquet(path)
    df = fn()
    write_parquet(path, df)
    return df


def plan(ctx: StudyContext) -> Plan:
    s = SCALES[ctx.scale]
    c, m, n = s["counts"], s["minima"], s["nets"]
    runs = (
        f"analytic counts: N in {list(s['analytic_N'])}, H = 2..{max(s['analytic_H'])}",
        f"enumeration: N in {list(c['Ns'])}, H in {list(c['H'])}, {c['D']} disorder samples",
        f"GD restarts: N = {m['N']}, H in {list(m['H'])}, {m['D']} samples x {m['B']} restarts",
        f"real nets: digits, N = {n['base']['n_params']}, depths {list(n['depths'])}, "
        f"{list(n['activations'])}, {n['base']['n_inits']} inits each",
    )
    cpu = {"smoke": 100.0, "small": 1100.0, "paper": 2e5}[ctx.scale]  # small: 1090 s measured
    gpu = {"smoke": 0.0, "small": 0.0, "paper": 2e4}[ctx.scale]
    return Plan(runs, cpu_s=cpu, gpu_s=gpu, peak_mem_mb=1500.0 if ctx.scale == "paper" else 600.0)


# --------------------------------------------------------------------------------------------
# spin model
# --------------------------------------------------------------------------------------------
def _peak(g: pd.DataFrame) -> int:
    return int(g.loc[g.log_kr_classes.idxmax(), "H"])


def _claim_counts(analytic: pd.DataFrame, counts: pd.DataFrame) -> tuple[Claim, list[str]]:
    parts, ok, notes = [], True, []
    for N, g in analytic.groupby("N"):
        if N in set(counts.N):
            continue
        hp = _peak(g)
        tail = g[g.H >= hp]
        tr = depth_trend(tail.H, tail.log_kr_classes, -1)
        ok &= tr.holds
        lo = g.loc[g.H.idxmin()]
        parts.append(
            f"N={N}: rises H={int(lo.H)}→{hp} (log {lo.log_kr_classes:.1f}→"
            f"{tail.log_kr_classes.iloc[0]:.1f}), falls to {tail.log_kr_classes.iloc[-1]:.1f} "
            f"at H={int(tail.H.iloc[-1])} ({tr.text('.2f')})"
        )
    for N, g in counts.groupby("N"):
        a = analytic[analytic.N == N]
        hp = _peak(a)
        kr = a.set_index("H").log_kr_classes
        agg = g.groupby("H").n_classes.agg(["mean", "std", "count"])
        z = []
        for H, r in agg.iterrows():
            se = r["std"] / math.sqrt(r["count"])
            dev = r["mean"] - math.exp(kr[H])
            if se > 0:
                z.append(dev / se)
            elif abs(dev) > 1e-9:
                z.append(math.inf)
        chi2 = float(np.sum(np.square(z))) if z else 0.0
        p = float(stats.chi2.sf(chi2, len(z))) if z else 1.0
        tail = g[g.H >= hp]
        tr = depth_trend(tail.H, np.log(tail.n_classes.clip(lower=1)), -1)
        ok &= tr.holds and p > 1e-3
        parts.append(
            f"enumeration N={N}: counts match exact Kac–Rice (χ²={chi2:.1f}, dof {len(z)}, "
            f"p={p:.3f}); on H≥{hp}: log count {tr.text('.2f')}"
        )
        notes.append(
            f"enumeration N={N}: mean classes per H "
            + ", ".join(
                f"H={H}: {r['mean']:.2f} (KR {math.exp(kr[H]):.2f})" for H, r in agg.iterrows()
            )
        )
    claim = Claim(
        "1-spin",
        "spin model: at fixed N the number of stationary points falls with depth H on the range "
        "where the analytic curve decreases (H ≥ its peak); below the peak it rises",
        "fewer stationary points with depth",
        "; ".join(parts),
        bool(ok),
    )
    return claim, notes


def _claim_spin_cluster(samples: pd.DataFrame) -> Claim:
    tr = depth_trend(samples.H, samples.clustering, +1)
    per = samples.groupby("H").clustering.mean()
    return Claim(
        "2-spin",
        "spin model: minima are more clustered with depth (clustering index "
        "(⟨q²⟩−1/Λ)/(1−1/Λ) of distinct minima, 0 = random directions)",
        "overlaps between minima grow with depth",
        f"{tr.text()}; by H: " + ", ".join(f"{H}: {v:.3f}" for H, v in per.items()),
        tr.holds,
        value=tr.slope,
        error=tr.stderr,
    )


def _claim_spin_slope(samples: pd.DataFrame) -> Claim:
    tr = depth_trend(samples.H, samples.slope, -1)
    per = samples.groupby("H").slope.mean()
    hs = np.array(sorted(samples.H.unique()), dtype=float)
    ana = 0.5 * np.sqrt(hs / (hs - 1))
    return Claim(
        "3-spin",
        "spin model: the slope of the Hessian log-volume (per direction) against the energy of "
        "minima falls with depth",
        f"flatter tradeoff; analytic slope at −E_∞ {ana[0]:.3f} (H={int(hs[0])}) → "
        f"{ana[-1]:.3f} (H={int(hs[-1])})",
        f"{tr.text()}; by H: " + ", ".join(f"{H}: {v:.3f}" for H, v in per.items()),
        tr.holds,
        value=tr.slope,
        error=tr.stderr,
    )


# --------------------------------------------------------------------------------------------
# real nets
# --------------------------------------------------------------------------------------------
def _net_tables(results: dict[str, dict[int, RealNetMinima]]) -> dict[str, pd.DataFrame]:
    rows, runs, pairs, mins = [], [], [], []
    for act, by_depth in results.items():
        for depth, m in by_depth.items():
            s = summarize_realnet(m)
            rows.append(s.row())
            runs.append(m.to_frame().assign(activation=act, depth=depth))
            tag = {"activation": act, "depth": depth}
            pairs.append(
                pd.DataFrame(
                    {
                        **tag,
                        "kind": "minima",
                        "d_function": s.d_function,
                        "d_param": s.d_param,
                        "q": s.q,
                    }
                )
            )
            q0 = _cosines(m.canonical_init)
            pairs.append(
                pd.DataFrame(
                    {**tag, "kind": "init", "d_function": np.nan, "d_param": np.nan, "q": q0}
                )
            )
            mins.append(
                pd.DataFrame(
                    {**tag, "loss": s.loss, "objective": s.objective, "log_width": s.log_width}
                )
            )
    return {
        "net_table": pd.DataFrame(rows),
        "net_runs": pd.concat(runs, ignore_index=True),
        "net_pairs": pd.concat(pairs, ignore_index=True),
        "net_minima": pd.concat(mins, ignore_index=True),
    }


def _no_repeat_bound(n: int) -> float:
    """95% lower bound on the effective number of minima ``K = 1/sum_k p_k^2`` (p_k: basin
    probabilities) when ``n`` runs found ``n`` different minima: the number of coinciding pairs
    has mean ``C(n, 2)/K`` and is ~Poisson for ``K >> n``, so zero coincidences reject
    ``K < C(n, 2) / ln 20`` at 5%. Informational (claim text), not part of the verdict."""
    return n * (n - 1) / 2 / math.log(20.0)


def _net_claims(table: pd.DataFrame) -> list[Claim]:
    claims = []
    for act, g in table.groupby("activation", sort=False):
        g = g.sort_values("depth")
        seen = ", ".join(
            f"L={int(r.depth)}: {int(r.n_distinct)}/{int(r.n_minima)}" for r in g.itertuples()
        )
        tr = depth_trend(g.depth, g.distinct_fraction, -1)
        saturated = bool(len(g) and (g.n_distinct == g.n_minima).all())
        claims.append(
            Claim(
                f"1-net-{act}",
                f"{act} nets at a fixed budget: fewer distinct minima with depth (distinct "
                "minima per run that reached a minimum)",
                "fewer minima with depth",
                f"{tr.text()}; distinct/minima found: {seen}"
                + (
                    "; every run found its own minimum (counts are lower bounds; no repeat "
                    "among n runs puts the effective number of minima 1/Σp² above "
                    + ", ".join(f"{_no_repeat_bound(int(r.n_minima)):.0f}" for r in g.itertuples())
                    + " at 95%)"
                    if saturated
                    else ""
                ),
                tr.holds,
                value=tr.slope,
                error=tr.stderr,
            )
        )
        tr = depth_trend(g.depth, g.clustering, +1)
        claims.append(
            Claim(
                f"2-net-{act}",
                f"{act} nets: minima more clustered with depth (clustering index of canonical "
                "parameters against canonicalised initial points)",
                "overlaps between minima grow with depth",
                f"{tr.text()}; by depth: "
                + ", ".join(f"L={int(r.depth)}: {r.clustering:.3f}" for r in g.itertuples()),
                tr.holds,
                value=tr.slope,
                error=tr.stderr,
            )
        )
        tr = depth_trend(g.depth, g.slope.abs(), -1)
        claims.append(
            Claim(
                f"3-net-{act}",
                f"{act} nets: flatter log-width–loss slope with depth (|OLS slope| over the "
                "distinct minima)",
                "flatter tradeoff with depth",
                f"{tr.text()}; slopes: "
                + ", ".join(
                    f"L={int(r.depth)}: {r.slope:.3g} ± {r.slope_stderr:.2g}"
                    for r in g.itertuples()
                ),
                tr.holds,
                value=tr.slope,
                error=tr.stderr,
            )
        )
    return claims


# --------------------------------------------------------------------------------------------
# the study
# --------------------------------------------------------------------------------------------
def run(ctx: StudyContext) -> StudyOutcome:
    s = SCALES[ctx.scale]
    c, mcfg, ncfg = s["counts"], s["minima"], s["nets"]
    notes: list[str] = []
    tables: dict[str, pd.DataFrame] = {}
    if ctx.precision.torch_dtype != torch.float64:
        msg = (
            f"spin model in {ctx.precision.dtype}: the Newton/GD tolerances (1e-9, 1e-8) lie "
            "below its resolution, so restarts do not converge; the spin claims need float64"
        )
        ctx.log(f"warning: {msg}")
        notes.append(msg)

    ctx.log("analytic curves")

    def analytic():
        parts = [analytic_table(N, s["analytic_H"]) for N in s["analytic_N"]]
        for N in c["Ns"]:
            hs = [H for H in c["H"] if round(N / H) >= 2]
            parts.append(analytic_table(N, hs, minima_samples=20_000, seed=ctx.seed))
        return pd.concat(parts, ignore_index=True)

    ana = _cached(ctx, "analytic", analytic)
    tables["analytic"] = ana

    ctx.log(f"enumeration at N = {list(c['Ns'])}")
    ecfg = EnumerationConfig(n_starts=c["starts"], max_rounds=c["rounds"], patience=2)

    def counts():
        return pd.concat(
            [
                spin_counts(
                    N,
                    [H for H in c["H"] if round(N / H) >= 2],
                    c["D"],
                    ecfg,
                    seed=ctx.seed,
                    precision=ctx.precision,
                )
                for N in c["Ns"]
            ],
            ignore_index=True,
        )

    cnt = _cached(ctx, "spin_counts", counts)
    tables["spin_counts"] = cnt
    claim1, n1 = _claim_counts(ana, cnt)
    notes += n1

    ctx.log(f"GD restarts at N = {mcfg['N']}")
    dcfg = DescentConfig(grad_tol=1e-8, max_steps=50_000)
    res = {}

    def minima(key):
        if not res:
            res.update(
                spin_minima(
                    mcfg["N"],
                    mcfg["H"],
                    mcfg["D"],
                    mcfg["B"],
                    dcfg,
                    seed=ctx.seed,
                    precision=ctx.precision,
                )
            )
        return res[key]

    samples = _cached(ctx, "spin_samples", lambda: minima("samples"))
    spin_min = _cached(ctx, "spin_minima", lambda: minima("minima"))
    spin_ov = _cached(ctx, "spin_overlaps", lambda: minima("overlaps"))
    tables.update(spin_samples=samples, spin_minima=spin_min, spin_overlaps=spin_ov)

    claims = [claim1, _claim_spin_cluster(samples), _claim_spin_slope(samples)]
    figures = [
        (
            "spin_counts_vs_depth",
            spin_counts_figure(ana, cnt),
            "Stationary points vs depth H at fixed N: analytic (left) and enumeration at small N "
            "against the exact Kac–Rice means (right)",
        ),
        (
            "spin_overlaps",
            spin_overlaps_figure(spin_ov, samples),
            f"Overlaps of distinct minima per H at N = {mcfg['N']} against random directions; "
            "clustering index per H",
        ),
        (
            "spin_logvolume",
            spin_logvolume_figure(spin_min, samples),
            f"Log-volume per direction vs energy of distinct minima at N = {mcfg['N']}, with the "
            "analytic mean curve; fitted slopes per H",
        ),
    ]

    # real nets
    results: dict[str, dict[int, RealNetMinima]] = {}
    for act in ncfg["activations"]:
        base = dict(ncfg["base"], activation=act, seed=ctx.seed)
        if act == "relu":
            base["max_steps"] = ncfg["relu_max_steps"]
        rc = RealNetConfig(**base)
        ctx.log(f"real nets: {act}, depths {list(ncfg['depths'])}, {rc.n_inits} inits each")
        results[act] = realnet_sweep(
            rc,
            ncfg["depths"],
            ctx.out / "sweeps" / f"realnet_{act}",
            chunks=ncfg["chunks"],
            executor=ctx.executor,
            resume=ctx.resume,
            precision=ctx.precision,
            slurm=ctx.slurm,
        )
    nt = _net_tables(results)
    tables.update(nt)
    table = nt["net_table"]
    claims += _net_claims(table)
    runs = nt["net_runs"]
    for act, g in runs.groupby("activation"):
        conv = int(g.converged.sum())
        msg = f"{act} nets: {conv}/{len(g)} runs reached |grad F| < {rc.grad_tol:g}"
        if act == "relu":
            # relu objectives are piecewise smooth: the criterion is the distance from 0 to the
            # subdifferential over the pinned kinks (landscape._kinks), = |grad F| where smooth
            conv_runs = g[g.converged]
            msg = (
                f"{act} nets: {conv}/{len(g)} runs reached stationarity s < {rc.grad_tol:g} "
                f"(distance from 0 to the subdifferential over the kinks |z| < {rc.kink_tol:g})"
            )
            if len(conv_runs):
                msg += (
                    f"; they sit on a median of {conv_runs.n_pinned.median():.0f} kinks with "
                    f"median |grad F| = {conv_runs.grad_norm.median():.1e}"
                )
            unc = g[~g.converged]
            if len(unc):
                msg += (
                    f"; the others stopped with median s = {unc.stationarity.median():.1e} "
                    f"({unc.n_pinned.median():.0f} pinned)"
                )
        notes.append(msg)
    figures += [
        (
            "net_minima_vs_depth",
            net_minima_figure(table),
            "Real nets: distinct minima per minimum found, runs ending at a minimum, and runs "
            "reaching the best loss, per hidden depth",
        ),
        (
            "net_distances",
            net_distances_figure(nt["net_pairs"]),
            "Real nets: distances between distinct minima in function space and in canonical "
            "parameter space; overlaps against canonicalised initial points",
        ),
        (
            "net_logwidth",
            net_logwidth_figure(nt["net_minima"], table),
            "Real nets: log-width vs loss of distinct minima per depth, and the fitted slopes",
        ),
    ]
    headline: dict = {}
    for N, g in ana[ana.N.isin(s["analytic_N"])].groupby("N"):
        headline[f"H_peak of real classes (N={N})"] = _peak(g)
    for r in table.itertuples():
        headline[f"{r.activation} L={r.depth}: distinct/minima"] = f"{r.n_distinct}/{r.n_minima}"
    lam_h = {int(H): int(g.lam.iloc[0]) for H, g in samples.groupby("H")}
    notes.append(
        f"GD restarts at N = {mcfg['N']}: Λ by H {lam_h}; exact Kac–Rice log mean at H = 3: "
        f"{kac_rice_log_mean(lam_h[min(lam_h)], min(lam_h), per='class'):.2f}"
    )
    notes.append("departures from the paper: docs/studies/landscape.md")
    return StudyOutcome(
        claims=claims,
        figures=figures,
        tables=tables,
        headline=headline,
        notes=notes,
        config={
            "scale": ctx.scale,
            "analytic_N": list(s["analytic_N"]),
            "counts": {k: list(v) if isinstance(v, tuple) else v for k, v in c.items()},
            "minima": {k: list(v) if isinstance(v, tuple) else v for k, v in mcfg.items()},
            "descent": {"grad_tol": dcfg.grad_tol, "max_steps": dcfg.max_steps},
            "nets": {
                "activations": list(ncfg["activations"]),
                "depths": list(ncfg["depths"]),
                "config": RealNetConfig(**ncfg["base"]).to_dict(),
                "relu_max_steps": ncfg["relu_max_steps"],
            },
            "verdict_rule": "OLS slope vs depth with the claimed sign at 2 standard errors",
        },
    )


STUDY = register_study(
    Study(
        name="landscape",
        title="Landscape geometry and depth: spin-glass model and real networks",
        paper="Becker, Zhang & Lee, Phys. Rev. Lett. 124, 108301 (2020)",
        run=run,
        plan=plan,
    )
)
