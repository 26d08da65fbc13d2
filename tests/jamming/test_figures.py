"""Figures of study A draw the data they are given: checked point by point on constructed inputs
(N_Δ/N vs N/P per depth, Δ densities on log bins with the fitted power laws, spectra on both
sides of N*, test error vs N with and without early stopping, N*(P) with the fits)."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from weightscape.jamming import (
    fit_capacity,
    fit_gamma,
    fit_theta,
    gap_histogram,
    gaps_figure,
    generalization_figure,
    ndelta_figure,
    phase_figure,
    spectra_figure,
)


def _offsets(ax):
    return {c.get_label(): np.asarray(c.get_offsets()) for c in ax.collections}


def test_ndelta_figure_one_panel_per_depth_with_every_run_at_n_over_p():
    runs = pd.DataFrame(
        {
            "depth": [1, 1, 1, 2, 2, 2, 2],
            "N": [50, 80, 120, 40, 60, 60, 90],
            "P": [100] * 7,
            "ndelta_frac": [0.6, 0.0, 0.0, 0.7, 0.5, 0.0, 0.0],
            "outcome": ["jammed", "sat", "sat", "jammed", "undecided", "sat", "sat"],
        }
    )
    fig = ndelta_figure(runs)
    axes = fig.axes
    assert [a.get_title() for a in axes] == ["depth L = 1", "depth L = 2"]
    for ax, dep in zip(axes, (1, 2), strict=True):
        assert ax.get_xscale() == "log"
        pts = _offsets(ax)
        g = runs[runs.depth == dep]
        for out, h in g.groupby("outcome"):
            got = pts[f"{out} ({len(h)})"]
            np.testing.assert_array_equal(got, np.c_[h.N / h.P, h.ndelta_frac])
        assert sum(len(v) for v in pts.values()) == len(g)


def test_gaps_figure_log_bins_and_fitted_slopes():
    rng = np.random.default_rng(3)
    theta, gamma = 0.3, 0.2
    pos = [rng.random(4000) ** (1 / (1 + theta)) for _ in range(4)]  # CDF x^{1+θ}
    neg = [-(rng.random(4000) ** (1 / (1 - gamma))) for _ in range(4)]  # CDF |x|^{1−γ}
    tr = SimpleNamespace(
        hist_jammed=gap_histogram(pos),
        hist_sat=gap_histogram(neg),
        theta=fit_theta(pos, n_boot=50),
        gamma=fit_gamma(neg, n_boot=50),
    )
    fig = gaps_figure(tr)
    for ax, hist, fit, dens, sign in (
        (fig.axes[0], tr.hist_jammed, tr.theta, tr.hist_jammed.density_pos, 1),
        (fig.axes[1], tr.hist_sat, tr.gamma, tr.hist_sat.density_neg, -1),
    ):
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        data, line = ax.lines[0], ax.lines[1]
        k = dens > 0
        np.testing.assert_array_equal(data.get_xdata(), hist.centers[k])
        np.testing.assert_array_equal(data.get_ydata(), dens[k])
        # bins are 10 per decade on the spec's range
        np.testing.assert_allclose(np.diff(np.log10(hist.edges)), 0.1, rtol=1e-12)
        # the drawn power law has slope +θ (Δ > 0) or −γ (Δ < 0) in log–log
        x, y = np.log(line.get_xdata()), np.log(line.get_ydata())
        assert np.polyfit(x, y, 1)[0] == pytest.approx(sign * fit.exponent, rel=1e-9)
        assert x[0] == pytest.approx(np.log(fit.x_min)) and x[-1] == pytest.approx(
            np.log(fit.x_max)
        )


def test_spectra_figure_marks_the_sat_side_as_exactly_zero():
    rng = np.random.default_rng(0)
    jam = {k: np.sort(rng.normal(size=30)) for k in ("H0", "Hp", "H")}
    sat = {k: np.zeros(30) for k in ("H0", "Hp", "H")}
    fig = spectra_figure(SimpleNamespace(eigs={"jammed-w5": jam, "sat-w9": sat}))
    for ax, k in zip(fig.axes, ("H0", "Hp", "H"), strict=True):
        assert ax.get_title() == k
        labels = [h.get_label() for h in ax.get_legend_handles_labels()[0]]
        assert "sat-w9: all zero" in labels and "jammed-w5" in labels
        (vline,) = [ln for ln in ax.lines if ln.get_label() == "sat-w9: all zero"]
        assert list(vline.get_xdata()) == [0, 0]
        # the jammed histogram holds every eigenvalue (density normalised to 1)
        (patch,) = ax.patches
        xy = patch.get_xy()
        assert xy[:, 0].min() == pytest.approx(jam[k].min())
        assert xy[:, 0].max() == pytest.approx(jam[k].max())


def test_generalization_figure_draws_final_and_early_stopped_curves_and_names_the_dataset():
    t = pd.DataFrame(
        {
            "N": [20, 40, 80, 160],
            "test_err": [0.30, 0.40, 0.35, 0.30],
            "test_err_se": [0.01] * 4,
            "test_err_es": [0.30, 0.29, 0.27, 0.26],
            "test_err_es_se": [0.01] * 4,
        }
    )
    gen = SimpleNamespace(table=t, nstar=40.0, dataset="mnist-sample", P=300, n_test=2000)
    fig = generalization_figure(gen)
    ax = fig.axes[0]
    assert "mnist-sample" in ax.get_title()
    curves = {c.get_label(): c.lines[0] for c in ax.containers}  # errorbar containers
    fin = curves["end of training"]
    es = curves["early stopping (best over training)"]
    np.testing.assert_array_equal(fin.get_xdata(), t.N)
    np.testing.assert_array_equal(fin.get_ydata(), t.test_err)
    np.testing.assert_array_equal(es.get_ydata(), t.test_err_es)
    by_label = {ln.get_label(): ln for ln in ax.lines}
    np.testing.assert_array_equal(by_label["N* ≈ 40"].get_xdata(), [40, 40])


def test_phase_figure_fit_lines_have_slope_one_over_c():
    table = pd.DataFrame(
        {
            "depth": [1, 1, 1, 2, 2, 2],
            "P": [100, 200, 300, 100, 200, 300],
            "nstar": [50.0, 98.0, 152.0, 40.0, 81.0, 119.0],
            "nstar_err": [3.0, 5.0, 7.0, 3.0, 5.0, 6.0],
        }
    )
    table["ratio"] = table.P / table.nstar
    table["ratio_err"] = table.P * table.nstar_err / table.nstar**2
    fits = {d: fit_capacity(g.P, g.nstar, g.nstar_err) for d, g in table.groupby("depth")}
    fig = phase_figure(table, fits)
    ax = fig.axes[0]
    lines = [ln for ln in ax.lines if ln.get_label().startswith("P/N*")]
    assert len(lines) == 2
    for ln, d in zip(lines, (1, 2), strict=True):
        x, y = ln.get_xdata(), ln.get_ydata()
        np.testing.assert_allclose(y[1:] / x[1:], 1 / fits[d].c, rtol=1e-12)
