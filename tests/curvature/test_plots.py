"""Spectrum figures: log axes and histogram contents against numpy."""

from __future__ import annotations

import numpy as np

from weightscape.curvature import slq_density
from weightscape.curvature._plots import log_bins, slq_density_figure, spectrum_histogram


def test_spectrum_histogram_log_axes_and_counts():
    rng = np.random.default_rng(0)
    pos = 10 ** rng.uniform(-3, 1, 300)
    neg = -(10 ** rng.uniform(-4, -2, 50))
    eigs = np.concatenate([pos, neg, np.zeros(20)])
    fig = spectrum_histogram({"H": eigs}, bins=20)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    lines = ax.get_lines()
    assert len(lines) == 2
    # the plotted densities integrate (per log10 unit) to the positive / negative fractions
    edges = log_bins(eigs, 20)
    widths = np.diff(np.log10(edges))
    centers = np.sqrt(edges[:-1] * edges[1:])
    for line, part in zip(lines, (pos, -neg), strict=True):
        xs, ys = line.get_data()
        idx = np.searchsorted(centers, xs)
        assert np.isclose((ys * widths[idx]).sum(), part.size / eigs.size)
    assert "20 zero" in lines[0].get_label()


def test_slq_density_figure():
    import torch

    A = torch.diag(torch.logspace(-2, 1, 50, dtype=torch.float64))
    fig = slq_density_figure(slq_density(A, num_probes=3, num_steps=50))
    assert fig.axes[0].get_xscale() == "log" and len(fig.axes[0].get_lines()) == 1
