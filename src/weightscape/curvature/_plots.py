"""Pure plotting functions for Hessian spectra (data → matplotlib Figure, log-scale axes).

Kept here, beside the data they draw, for :mod:`weightscape.plots` to wire into the report.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from ._lanczos import SpectralDensity
from ._spectrum import DEFAULT_RTOL, _as_numpy

__all__ = ["log_bins", "slq_density_figure", "spectrum_histogram"]


def log_bins(eigs, bins: int = 50, rtol: float = DEFAULT_RTOL) -> np.ndarray:
    """Log-spaced bin edges covering the nonzero ``|λ|`` (those above ``rtol · max|λ|``)."""
    a = np.abs(_as_numpy(eigs))
    top = float(a.max()) if a.size else 0.0
    nz = a[a > rtol * top] if top > 0 else a[:0]
    if nz.size == 0:
        return np.logspace(-1, 0, bins + 1)
    lo, hi = float(nz.min()), float(nz.max())
    if hi <= lo:
        lo, hi = lo / 2, hi * 2
    return np.logspace(np.log10(lo), np.log10(hi) + 1e-9, bins + 1)


def spectrum_histogram(
    spectra,
    *,
    bins: int = 50,
    rtol: float = DEFAULT_RTOL,
    title: str | None = None,
) -> Figure:
    """Histograms of Hessian eigenvalue magnitudes on log–log axes, as in the jamming papers.

    Each spectrum gets one line for its positive eigenvalues (solid) and one for the magnitudes of
    its negative eigenvalues (dashed), as densities per unit ``log10|λ|`` normalised by the total
    number of eigenvalues N (so the area under both lines is the nonzero fraction). Eigenvalues
    with ``|λ| <= rtol · max|λ|`` count as zero and are given in the legend.

    Args:
        spectra: eigenvalues ``[N]``, or a mapping name → eigenvalues (e.g. ``{"H": ..., "H0":
            ..., "Hp": ...}``).
        bins: number of log-spaced bins (shared by all spectra).
        rtol: zero tolerance.
        title: figure title.

    Returns:
        A Figure with one Axes (``xscale = yscale = "log"``).
    """
    if not isinstance(spectra, Mapping):
        spectra = {"H": spectra}
    arrays = {k: _as_numpy(v) for k, v in spectra.items()}
    edges = log_bins(np.concatenate(list(arrays.values())), bins, rtol)
    widths = np.diff(np.log10(edges))
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    for i, (name, a) in enumerate(arrays.items()):
        color = f"C{i}"
        tol = rtol * float(np.abs(a).max()) if a.size else 0.0
        n_zero = int((np.abs(a) <= tol).sum())
        for sign, style in ((1, "-"), (-1, "--")):
            part = sign * a[sign * a > tol]
            if part.size == 0:
                continue
            counts, _ = np.histogram(part, edges)
            dens = counts / (a.size * widths)
            label = f"{name} {'λ>0' if sign > 0 else '|λ|, λ<0'} ({part.size})"
            if sign > 0:
                label += f", {n_zero} zero"
            mask = dens > 0
            centers = np.sqrt(edges[:-1] * edges[1:])
            ax.plot(centers[mask], dens[mask], style, color=color, marker=".", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("|λ|")
    ax.set_ylabel("density per unit log10|λ|")
    if title:
        ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def slq_density_figure(
    density: SpectralDensity,
    *,
    sigma: float = 0.1,
    grid_points: int = 200,
    lim: tuple[float, float] | None = None,
    title: str | None = None,
) -> Figure:
    """An SLQ spectral density per unit ``log10|λ|`` on log–log axes (positive: solid, negative
    magnitudes: dashed), smoothed with a Gaussian of width ``sigma`` decades.

    Args:
        density: from :func:`~weightscape.curvature.slq_density`.
        sigma: kernel width in decades.
        grid_points: evaluation points.
        lim: ``(min, max)`` of ``|λ|`` (default: the Ritz values' nonzero range).
    """
    if lim is None:
        nz = np.abs(density.nodes[density.weights > 0])
        nz = nz[nz > 0]
        lim = (float(nz.min()), float(nz.max())) if nz.size else (0.1, 1.0)
    grid = np.logspace(np.log10(lim[0]) - 2 * sigma, np.log10(lim[1]) + 2 * sigma, grid_points)
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    for sign, style, label in ((1, "-", "λ>0"), (-1, "--", "|λ|, λ<0")):
        d = density.density(grid, sigma, log=True, sign=sign)
        mask = d > 1e-12 * max(float(d.max()), 1e-300)
        if mask.any():
            ax.plot(grid[mask], d[mask], style, color="C0", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("|λ|")
    ax.set_ylabel("density per unit log10|λ| (SLQ)")
    if title:
        ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
