"""Figures of study A: pure functions data -> :class:`matplotlib.figure.Figure` (no pyplot)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ._cover import cover_probability

__all__ = [
    "cover_figure",
    "fixed_n_figure",
    "gaps_figure",
    "generalization_figure",
    "ndelta_figure",
    "phase_figure",
    "spectra_figure",
]


def phase_figure(table: pd.DataFrame, fits: dict, title: str = "") -> Figure:
    """Left: N* vs P per depth with bootstrap errors and the fits N* = P / c. Right: P/N* vs P."""
    fig = Figure(figsize=(10, 4))
    ax, bx = fig.subplots(1, 2)
    for dep, g in table.groupby("depth"):
        g = g.dropna(subset=["nstar"])
        eb = ax.errorbar(g.P, g.nstar, yerr=g.nstar_err, fmt="o", capsize=3, label=f"L = {dep}")
        f = fits.get(dep)
        if f is not None:
            ps = np.linspace(0, g.P.max() * 1.05, 20)
            ax.plot(
                ps,
                ps / f.c,
                "-",
                color=eb[0].get_color(),
                alpha=0.6,
                label=f"P/N* = {f.c:.2f} ± {f.c_err:.2f} (R² {f.r2:.3f})",
            )
        bx.errorbar(g.P, g.ratio, yerr=g.ratio_err, fmt="o-", capsize=3, label=f"L = {dep}")
    ax.set(xlabel="P", ylabel="N* (weights)", title=title or "N*(P) per depth")
    ax.legend(fontsize=7)
    bx.set(xlabel="P", ylabel="P / N*", title="P/N* at the transition")
    bx.legend(fontsize=7)
    fig.tight_layout()
    return fig


def fixed_n_figure(fx) -> Figure:
    """P swept at fixed N per depth (:class:`~weightscape.jamming.FixedNDiagram`). Left: the
    jammed fraction of the decided runs vs P/N with its binomial standard error, P*/N marked.
    Right: N_Δ/N at the end of every run vs P/N (bimodal at the transition)."""
    fig = Figure(figsize=(10, 4))
    ax, bx = fig.subplots(1, 2)
    for i, row in enumerate(fx.table.itertuples()):
        color = f"C{i}"
        g = fx.runs[fx.runs.depth == row.depth]
        dec = g[g.outcome.isin(["jammed", "sat"])]
        label = f"L = {row.depth}, h = {row.width}, N = {row.N}"
        if len(dec):
            frac = (dec.outcome == "jammed").groupby(dec.alpha).mean()
            se = np.sqrt(frac * (1 - frac) / dec.groupby("alpha").size())
            ax.errorbar(frac.index, frac, yerr=se, fmt="o-", capsize=3, color=color, label=label)
        else:  # every run undecided or a trap: nothing to plot, say so in the legend
            ax.plot([], [], "o-", color=color, label=f"{label}: no decided run")
        if math.isfinite(row.ratio):
            err = f" ± {row.ratio_err:.2f}" if math.isfinite(row.ratio_err) else ""
            ax.axvline(row.ratio, ls="--", color=color, alpha=0.6,
                       label=f"P*/N = {row.ratio:.2f}{err}")  # fmt: skip
        bx.scatter(g.alpha, g.ndelta_frac, s=14, alpha=0.7, color=color, label=f"L = {row.depth}")
    ax.set(xlabel="P / N", ylabel="fraction jammed (decided runs)",
           title="P swept at fixed N (companion Fig. 1B)")  # fmt: skip
    ax.legend(fontsize=7)
    bx.set(xlabel="P / N", ylabel="N_Δ / N at the end", title="N_Δ/N at the end of every run")
    bx.legend(fontsize=7)
    fig.tight_layout()
    return fig


def ndelta_figure(runs: pd.DataFrame) -> Figure:
    """N_Δ/N at the end of every run vs N/P, one panel per depth (marker: outcome)."""
    deps = sorted(runs.depth.unique())
    fig = Figure(figsize=(4 * len(deps), 3.6))
    axes = np.atleast_1d(fig.subplots(1, len(deps), sharey=True))
    marks = {
        "sat": ("o", "C2"),
        "jammed": ("s", "C3"),
        "undecided": ("^", "C7"),
        "trap": ("x", "k"),
    }
    for ax, dep in zip(axes, deps, strict=True):
        g = runs[runs.depth == dep]
        for out, (m, c) in marks.items():
            h = g[g.outcome == out]
            if len(h):
                ax.scatter(
                    h.N / h.P,
                    h.ndelta_frac,
                    marker=m,
                    color=c,
                    s=14,
                    alpha=0.7,
                    label=f"{out} ({len(h)})",
                )
        ax.set_xscale("log")
        ax.set(xlabel="N / P", title=f"depth L = {dep}")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("N_Δ / N at the end")
    fig.tight_layout()
    return fig


def _power_line(ax, fit, hist, color, sign):
    if fit is None or hist is None:
        return
    x = np.geomspace(fit.x_min, fit.x_max, 20)
    c = hist.centers
    dens = hist.density_pos if sign > 0 else hist.density_neg
    k = (c >= fit.x_min) & (c <= fit.x_max) & (dens > 0)
    if not k.any():
        return
    expo = fit.exponent if sign > 0 else -fit.exponent
    a = np.exp(np.mean(np.log(dens[k]) - expo * np.log(c[k])))
    name = "θ" if sign > 0 else "γ"
    err = f"± {fit.err:.2f}" if np.isfinite(fit.err) else "(error undefined)"
    ax.plot(x, a * x**expo, "--", color=color, label=f"{name} = {fit.exponent:.2f} {err}")


def gaps_figure(tr) -> Figure:
    """Δ densities on log bins near N*: Δ > 0 of jammed runs, |Δ| of Δ < 0 of SAT runs, with the
    fitted power laws P+(Δ) ~ Δ^θ and P−(Δ) ~ |Δ|^−γ."""
    fig = Figure(figsize=(10, 4))
    ax, bx = fig.subplots(1, 2)
    for a, hist, fit, sign, lab, col in (
        (ax, tr.hist_jammed, tr.theta, +1, "Δ > 0 (jammed runs near N*)", "C3"),
        (bx, tr.hist_sat, tr.gamma, -1, "|Δ|, Δ < 0 (SAT runs near N*)", "C2"),
    ):
        if hist is not None:
            dens = hist.density_pos if sign > 0 else hist.density_neg
            k = dens > 0
            a.loglog(hist.centers[k], dens[k], "o", color=col, ms=4, label=lab)
            _power_line(a, fit, hist, "k", sign)
        a.set(xlabel="|Δ|", ylabel="density")
        a.legend(fontsize=7)
    ax.set_title("positive gaps (θ ≈ 0.3 in the paper)")
    bx.set_title("negative gaps (γ ≈ 0.2 in the paper)")
    fig.tight_layout()
    return fig


def spectra_figure(spectra) -> Figure:
    """Eigenvalue histograms of H0, Hp and H for the nets on each side of N*."""
    fig = Figure(figsize=(12, 3.8))
    axes = fig.subplots(1, 3)
    for ax, k in zip(axes, ("H0", "Hp", "H"), strict=True):
        for label, e in spectra.eigs.items():
            v = e[k]
            if np.all(v == 0):
                ax.axvline(0, ls=":", color="C2", label=f"{label}: all zero")
                continue
            ax.hist(v, bins=40, histtype="step", density=True, label=label)
        ax.set_yscale("log")
        ax.set(xlabel="eigenvalue", title=k)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def generalization_figure(gen) -> Figure:
    """Test error vs N at fixed P (final and early-stopped), N* marked; dataset in the title."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    t = gen.table
    ax.errorbar(t.N, t.test_err, yerr=t.test_err_se, fmt="o-", capsize=3, label="end of training")
    ax.errorbar(
        t.N,
        t.test_err_es,
        yerr=t.test_err_es_se,
        fmt="s--",
        capsize=3,
        label="early stopping (best over training)",
    )
    if math.isfinite(gen.nstar):
        ax.axvline(gen.nstar, color="k", ls=":", label=f"N* ≈ {gen.nstar:.0f}")
    ax.set_xscale("log")
    ax.set(
        xlabel="N (weights)",
        ylabel="test error",
        title=f"{gen.dataset} (PCA-10, parity), P = {gen.P}, {gen.n_test} test points",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def cover_figure(checks) -> Figure:
    """Depth 0: SAT fraction and LP-separable fraction vs P/N against Cover's C(P, N)."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for i, chk in enumerate(checks):
        t = chk.table
        N = int(t.N.iloc[0])
        a = np.linspace(t.alpha.min() * 0.9, t.alpha.max() * 1.05, 100)
        ps = np.unique(np.round(a * N).astype(int))
        ax.plot(ps / N, cover_probability(ps, N), "-", color=f"C{i}", label=f"C(P, N={N})")
        ax.errorbar(
            t.alpha,
            t.frac_sat,
            yerr=t.se,
            fmt="o",
            color=f"C{i}",
            capsize=3,
            label=f"trained SAT, N = {N}",
        )
        ax.plot(t.alpha, t.frac_lp, "x", color=f"C{i}", label=f"LP separable, N = {N}")
    ax.set(xlabel="P / N", ylabel="fraction SAT", title="depth 0: linear classifier vs Cover")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
