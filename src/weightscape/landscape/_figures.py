"""Figures of study B: pure functions data -> :class:`matplotlib.figure.Figure` (no pyplot).

matplotlib is imported inside the functions, so importing the package does not load it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from ._analytic import log_volume_curve, random_overlap_pdf

__all__ = [
    "net_distances_figure",
    "net_logwidth_figure",
    "net_minima_figure",
    "spin_counts_figure",
    "spin_logvolume_figure",
    "spin_overlaps_figure",
]


def spin_counts_figure(analytic: pd.DataFrame, counts: pd.DataFrame | None = None) -> Figure:
    """Stationary points vs depth H at fixed N.

    Left: analytic log counts (complex classes, dashed; exact Kac–Rice mean of real classes,
    solid; leading-order minima ``Lambda Theta_0``, dotted) for each N of ``analytic``
    (:func:`analytic_table` rows). Right: enumeration at small N (mean ± s.e. over disorder
    samples of classes and of minima) against the exact Kac–Rice means.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    ax, bx = fig.subplots(1, 2)
    for N, g in analytic[analytic.N.isin(sorted(set(analytic.N) - set(_small(counts))))].groupby(
        "N"
    ):
        line = ax.plot(g.H, g.log_kr_classes, "o-", ms=3, label=f"N = {N}: real (Kac–Rice)")
        c = line[0].get_color()
        ax.plot(g.H, g.log_complex_classes, "--", color=c, alpha=0.7, label=f"N = {N}: complex")
        ax.plot(g.H, g.lam_theta0_threshold, ":", color=c, alpha=0.8)
        peak = g.loc[g.log_kr_classes.idxmax()]
        ax.axvline(peak.H, color=c, lw=0.5, alpha=0.4)
    ax.set(
        xlabel="H (depth)",
        ylabel="log(number of classes)",
        title="analytic counts at fixed N (dotted: minima, leading order)",
    )
    ax.legend(fontsize=7)
    if counts is not None and len(counts):
        for N, g in counts.groupby("N"):
            agg = g.groupby("H").agg(
                lam=("lam", "first"),
                k=("n_classes", "mean"),
                k_se=("n_classes", _se),
                m=("n_minima", "mean"),
                m_se=("n_minima", _se),
            )
            eb = bx.errorbar(
                agg.index, agg.k, yerr=agg.k_se, fmt="o", capsize=3, label=f"N = {N}: classes"
            )
            c = eb[0].get_color()
            bx.errorbar(agg.index, agg.m, yerr=agg.m_se, fmt="s", mfc="none", capsize=3, color=c)
            a = analytic[analytic.N == N].set_index("H").reindex(agg.index)
            bx.plot(agg.index, np.exp(a.log_kr_classes), "-", color=c, alpha=0.7)
            if "log_kr_minima" in a:
                bx.plot(agg.index, np.exp(a.log_kr_minima), ":", color=c, alpha=0.7)
        bx.set_yscale("log")
        bx.set(
            xlabel="H (depth)",
            ylabel="count per disorder sample",
            title="enumeration (squares: minima) vs Kac–Rice (lines)",
        )
        bx.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _small(counts) -> list:
    return [] if counts is None or not len(counts) else sorted(counts.N.unique())


def _se(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan


def spin_overlaps_figure(overlaps: pd.DataFrame, samples: pd.DataFrame) -> Figure:
    """Overlaps between distinct minima per H, in units of the random baseline: histograms of
    ``q sqrt(Lambda)`` against the density of random directions (black); right: clustering index
    per H (mean ± s.e. over disorder samples)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    ax, bx = fig.subplots(1, 2)
    for H, g in overlaps.groupby("H"):
        lam = int(g.lam.iloc[0])
        ax.hist(
            g.q * math.sqrt(lam),
            bins=30,
            density=True,
            histtype="step",
            label=f"H = {H} (Λ = {lam}, {len(g)} pairs)",
        )
    if len(overlaps):
        lam = int(overlaps.lam.max())
        z = np.linspace(-3.5, 3.5, 200)
        ax.plot(
            z,
            random_overlap_pdf(z / math.sqrt(lam), lam) / math.sqrt(lam),
            "k-",
            lw=1,
            label=f"random directions (Λ = {lam})",
        )
    ax.set(xlabel="q √Λ", ylabel="density", title="overlaps of distinct minima")
    ax.legend(fontsize=7)
    agg = samples.groupby("H").agg(c=("clustering", "mean"), se=("clustering", _se))
    bx.errorbar(agg.index, agg.c, yerr=agg.se, fmt="o-", capsize=3)
    bx.axhline(0, color="k", lw=0.5)
    bx.set(
        xlabel="H (depth)",
        ylabel="(⟨q²⟩ − 1/Λ) / (1 − 1/Λ)",
        title="clustering index (0 = random baseline)",
    )
    fig.tight_layout()
    return fig


def spin_logvolume_figure(minima: pd.DataFrame, samples: pd.DataFrame) -> Figure:
    """Hessian log-volume per direction vs energy per weight of distinct minima, per H, with the
    analytic mean curve ``v(u)`` (dashed); right: fitted slopes per H (mean ± s.e.)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    ax, bx = fig.subplots(1, 2)
    for H, g in minima.groupby("H"):
        lam = int(g.lam.iloc[0])
        sc = ax.plot(g.energy, g.log_volume, ".", ms=3, alpha=0.6, label=f"H = {H}")
        r = 2.0 * math.sqrt(H * (H - 1) * (lam - 1) / lam)
        u_hi = -r / H
        u = np.linspace(min(g.energy.min(), u_hi) - 0.02, u_hi, 50)
        ax.plot(u, log_volume_curve(u, H, lam), "--", color=sc[0].get_color(), lw=1)
    ax.set(xlabel="u = L/Λ", ylabel="log-volume per direction", title="width vs depth of minima")
    ax.legend(fontsize=7)
    agg = samples.groupby("H").agg(s=("slope", "mean"), se=("slope", _se))
    bx.errorbar(agg.index, agg.s, yerr=agg.se, fmt="o-", capsize=3, label="numerical")
    hs = np.array(sorted(minima.H.unique()))
    bx.plot(hs, 0.5 * np.sqrt(hs / (hs - 1)), "k--", lw=1, label="analytic at −E_∞")
    bx.set(xlabel="H (depth)", ylabel="d(log-volume)/du", title="log-volume–energy slope")
    bx.legend(fontsize=7)
    fig.tight_layout()
    return fig


def net_minima_figure(table: pd.DataFrame) -> Figure:
    """Real nets per depth and activation: distinct minima per minimum found (left), runs that
    converged to a minimum (middle), fraction of minima runs reaching the best loss (right)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.8))
    axs = fig.subplots(1, 3)
    for act, g in table.groupby("activation"):
        g = g.sort_values("depth")
        axs[0].plot(g.depth, g.distinct_fraction, "o-", label=act)
        axs[1].plot(g.depth, g.n_minima / g.n_runs, "o-", label=act)
        axs[2].plot(g.depth, g.best_fraction, "o-", label=act)
    axs[0].set(xlabel="hidden depth", ylabel="distinct / minima found", title="distinct minima")
    axs[1].set(xlabel="hidden depth", ylabel="fraction", title="runs ending at a minimum")
    axs[2].set(xlabel="hidden depth", ylabel="fraction", title="runs reaching the best loss")
    for a in axs:
        a.legend(fontsize=7)
    fig.tight_layout()
    return fig


def net_distances_figure(pairs: pd.DataFrame) -> Figure:
    """Distributions per depth of the RMS distances between distinct minima in function space
    and in canonical parameter space, and of the canonical overlaps against the canonicalised
    initial points (``kind == "init"``)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.8))
    axs = fig.subplots(1, 3)
    for i, (col, title) in enumerate(
        (("d_function", "function space (training outputs)"), ("d_param", "parameter space"))
    ):
        sub = pairs[pairs.kind == "minima"]
        groups = [
            (f"{a} L={d}", g[col].to_numpy()) for (a, d), g in sub.groupby(["activation", "depth"])
        ]
        groups = [(k, v) for k, v in groups if len(v)]
        if groups:
            axs[i].boxplot([v for _, v in groups], showfliers=False)
            axs[i].set_xticks(
                range(1, len(groups) + 1), [k for k, _ in groups], rotation=45, fontsize=7
            )
        axs[i].set(ylabel="RMS distance", title=title)
    for (a, d), g in pairs.groupby(["activation", "depth"]):
        m = g[g.kind == "minima"].q
        if len(m):
            axs[2].hist(m, bins=20, density=True, histtype="step", label=f"{a} L={d}")
    for _, g in pairs[pairs.kind == "init"].groupby(["activation", "depth"]):
        axs[2].hist(g.q, bins=20, density=True, histtype="step", ls=":", color="gray")
    axs[2].set(
        xlabel="cosine of canonical parameters", ylabel="density", title="overlaps (dotted: inits)"
    )
    if axs[2].get_legend_handles_labels()[0]:
        axs[2].legend(fontsize=6)
    fig.tight_layout()
    return fig


def net_logwidth_figure(minima: pd.DataFrame, table: pd.DataFrame) -> Figure:
    """Log-width vs training loss of distinct minima per depth (lines: OLS fits), and the fitted
    slopes vs depth."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    ax, bx = fig.subplots(1, 2)
    for (a, d), g in minima.groupby(["activation", "depth"]):
        sc = ax.plot(g.loss, g.log_width, "o", ms=3, alpha=0.7, label=f"{a} L={d}")
        row = table[(table.activation == a) & (table.depth == d)]
        if len(row) and math.isfinite(float(row.slope.iloc[0])) and len(g) >= 3:
            x = np.linspace(g.loss.min(), g.loss.max(), 10)
            b = float(row.slope.iloc[0])
            ax.plot(x, g.log_width.mean() + b * (x - g.loss.mean()), "-", color=sc[0].get_color())
    ax.set(
        xlabel="training loss (MSE)", ylabel="log-width −½Σ log λ", title="width vs depth of minima"
    )
    ax.legend(fontsize=6)
    for a, g in table.groupby("activation"):
        g = g.sort_values("depth")
        bx.errorbar(g.depth, g.slope, yerr=g.slope_stderr, fmt="o-", capsize=3, label=a)
    bx.set(xlabel="hidden depth", ylabel="d(log-width)/d(loss)", title="log-width–loss slope")
    bx.legend(fontsize=7)
    fig.tight_layout()
    return fig
