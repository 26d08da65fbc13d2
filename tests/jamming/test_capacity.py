"""N*(P) = P / c by weighted least squares, and the depth-independence test of c."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from weightscape.errors import ConfigError
from weightscape.jamming import depth_independence, fit_capacity, fit_capacity_by_depth

P_GRID = np.array([500.0, 1000, 2000, 4000, 8000, 16000])


def test_fit_matches_scipy_curve_fit():
    # Peer: curve_fit of N* = s P with absolute sigmas gives the same slope and error
    # (slope 1e-8 relative: Levenberg–Marquardt converges to the linear LS solution; errors 1e-6:
    # curve_fit's covariance comes from a finite-difference Jacobian).
    rng = np.random.default_rng(0)
    sig = 0.05 * P_GRID / 3
    N = P_GRID / 3 + sig * rng.standard_normal(P_GRID.size)
    fit = fit_capacity(P_GRID, N, sig)
    popt, pcov = optimize.curve_fit(
        lambda p, s: s * p, P_GRID, N, p0=[0.3], sigma=sig, absolute_sigma=True
    )
    assert fit.s == pytest.approx(popt[0], rel=1e-8)
    assert fit.s_err == pytest.approx(math.sqrt(pcov[0, 0]), rel=1e-6)
    assert fit.c == pytest.approx(1 / popt[0], rel=1e-8)
    assert fit.c_err == pytest.approx(math.sqrt(pcov[0, 0]) / popt[0] ** 2, rel=1e-6)
    # unknown errors: ordinary LS, error scaled by the residual, as curve_fit's default
    fit = fit_capacity(P_GRID, N)
    popt, pcov = optimize.curve_fit(lambda p, s: s * p, P_GRID, N, p0=[0.3])
    assert fit.s == pytest.approx(popt[0], rel=1e-8)
    assert fit.s_err == pytest.approx(math.sqrt(pcov[0, 0]), rel=1e-6)
    assert math.isnan(fit.p_value)


def test_exact_line_and_r2():
    fit = fit_capacity(P_GRID, P_GRID / 3.0, np.full(P_GRID.size, 10.0))
    assert fit.c == pytest.approx(3.0, rel=1e-12)
    assert fit.r2 == pytest.approx(1.0) and fit.chi2 == pytest.approx(0.0, abs=1e-18)
    assert fit.dof == 5 and fit.p_value == pytest.approx(1.0)


def test_capacity_recovery_aggregate():
    # 300 synthetic sweeps: the pulls (c − 3)/σ_c follow N(0, 1) to the delta-method accuracy
    # (σ_c = σ_s/s², relative errors of 2 % here): mean within 4/√300, std within 10 %, and
    # the goodness-of-fit χ² is χ²(5) (KS p > 1e-3). Seeded.
    rng = np.random.default_rng(1)
    sig = 0.05 * P_GRID / 3
    pulls, pvals = [], []
    for _ in range(300):
        N = P_GRID / 3 + sig * rng.standard_normal(P_GRID.size)
        fit = fit_capacity(P_GRID, N, sig)
        pulls.append((fit.c - 3.0) / fit.c_err)
        pvals.append(fit.p_value)
    pulls = np.array(pulls)
    assert abs(pulls.mean()) < 4 / math.sqrt(pulls.size)
    assert pulls.std() == pytest.approx(1.0, rel=0.1)
    assert stats.kstest(pvals, "uniform").pvalue > 1e-3


def test_depth_independence_analytic():
    # c = 1.0 ± 0.1 and 1.3 ± 0.1: mean 1.15 ± 0.1/√2, χ² = 2·1.5² = 4.5 with 1 dof
    t = depth_independence([1.0, 1.3], [0.1, 0.1], depth=[2, 5])
    assert t.c_mean == pytest.approx(1.15)
    assert t.c_mean_err == pytest.approx(0.1 / math.sqrt(2))
    assert t.chi2 == pytest.approx(4.5) and t.dof == 1
    assert t.p_value == pytest.approx(0.033894853524689274, rel=1e-9)
    np.testing.assert_allclose(t.table["pull"], [-1.5, 1.5])
    assert list(t.table["depth"]) == [2, 5]


def test_depth_independence_pvalues_uniform_under_null_and_small_otherwise():
    rng = np.random.default_rng(2)
    err = np.array([0.05, 0.1, 0.2])
    p_null = [depth_independence(3 + err * rng.standard_normal(3), err).p_value for _ in range(500)]
    assert stats.kstest(p_null, "uniform").pvalue > 1e-3  # seeded
    shifted = depth_independence([3.0, 3.5, 4.0], [0.05, 0.05, 0.05])  # 10σ apart
    assert shifted.p_value < 1e-10


def test_fit_by_depth_table():
    rows = []
    for depth, c in [(2, 3.0), (3, 3.0), (5, 3.0)]:
        for P in P_GRID:
            rows.append({"depth": depth, "P": P, "nstar": P / c, "nstar_err": 0.02 * P / c})
    fits, test = fit_capacity_by_depth(pd.DataFrame(rows))
    assert sorted(fits) == [2, 3, 5]
    assert all(f.c == pytest.approx(3.0) for f in fits.values())
    assert test.chi2 == pytest.approx(0.0, abs=1e-16) and test.p_value == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        fit_capacity_by_depth(pd.DataFrame(rows).drop(columns="nstar_err"))


def test_validation():
    with pytest.raises(ConfigError):
        fit_capacity([1, 2], [1])
    with pytest.raises(ConfigError):
        fit_capacity([1, 2], [1, 2], [0, 1])
    with pytest.raises(ConfigError):
        depth_independence([1.0], [0.1])
    with pytest.raises(ConfigError):
        depth_independence([1.0, 2.0], [0.1, -0.1])
