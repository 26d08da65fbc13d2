"""Oracles for the analytic curves: exact GOE density vs Monte Carlo, Kac–Rice exact cases
(H = 2, Lambda = 2), index sum rule, E_0 / E_inf from the literature, semicircle integrals."""

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, stats

from weightscape.errors import ConfigError
from weightscape.landscape import (
    analytic_table,
    complexity,
    complexity_by_index,
    e_0,
    e_inf,
    goe_abs_det_mean,
    goe_density,
    hessian_semicircle_density,
    hessian_semicircle_radius,
    kac_rice_by_index,
    kac_rice_log_mean,
    log_complex_classes,
    log_volume_curve,
    log_volume_slope,
    random_overlap_pdf,
    random_overlaps,
)


def _goe(rng, m, n):
    g = rng.standard_normal((m, n, n))
    return (g + np.swapaxes(g, 1, 2)) / 2  # off-diagonal var 1/2, diagonal var 1


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 40, 121])
def test_goe_density_normalised(n):
    tot, _ = integrate.quad(lambda x: goe_density(np.array(x), n), -np.inf, np.inf, limit=500)
    assert abs(tot - n) < 1e-9 * n


@pytest.mark.parametrize("n", [2, 3, 6])
def test_goe_density_vs_monte_carlo(n):
    rng = np.random.default_rng(n)
    m = 40_000
    ev = np.linalg.eigvalsh(_goe(rng, m, n)).ravel()
    edges = np.linspace(-np.sqrt(2 * n) - 2.5, np.sqrt(2 * n) + 2.5, 25)
    obs, _ = np.histogram(ev, bins=edges)
    bins = itertools.pairwise(edges)
    exp = m * np.array([integrate.quad(goe_density, a, b, args=(n,))[0] for a, b in bins])
    keep = exp > 5
    # Eigenvalues of one matrix are correlated, so the multinomial chi-square is only
    # approximate; we use a generous p > 1e-6 (a wrong formula, e.g. the GUE density, fails by
    # thousands of chi-square units).
    chi2 = (((obs - exp) ** 2) / exp)[keep].sum()
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-6, chi2


def test_abs_det_mean_exact_n1_and_monte_carlo_n3():
    t = np.array([-2.0, -0.3, 0.0, 1.1, 3.0])
    # n = 1: E|Z - t| = t (2 Phi(t) - 1) + 2 phi(t) for Z ~ N(0, 1) (exact).
    exact = t * (2 * stats.norm.cdf(t) - 1) + 2 * stats.norm.pdf(t)
    assert np.allclose(np.exp(goe_abs_det_mean(t, 1)), exact, rtol=1e-12)
    rng = np.random.default_rng(0)
    a = _goe(rng, 200_000, 3)
    eye = np.eye(3)
    for tt in t:
        v = np.abs(np.linalg.det(a - tt * eye))
        # Monte Carlo: within 4 standard errors.
        assert abs(v.mean() - math.exp(goe_abs_det_mean(tt, 3))) < 4 * v.std() / math.sqrt(len(v))


def test_complex_classes_special_cases():
    for H in range(3, 9):
        assert math.isclose(math.exp(log_complex_classes(2, H)), H, rel_tol=1e-12)
    assert math.isclose(math.exp(log_complex_classes(7, 2)), 7, rel_tol=1e-12)
    assert math.isclose(math.exp(log_complex_classes(4, 3)), 15, rel_tol=1e-12)
    # huge counts stay finite in log space
    assert math.isclose(
        log_complex_classes(1000, 15), 1000 * math.log(14) - math.log(13), rel_tol=1e-12
    )


@pytest.mark.parametrize("lam", [2, 3, 8, 60])
def test_kac_rice_h2_counts_eigenvectors(lam):
    # H = 2: the critical points are the 2 lam points ±v_k for every disorder (exact).
    assert math.isclose(math.exp(kac_rice_log_mean(lam, 2)), 2 * lam, rel_tol=1e-9)
    # split into energy windows, the counts add up
    cut = 0.3
    lo = math.exp(kac_rice_log_mean(lam, 2, (-math.inf, cut)))
    hi = math.exp(kac_rice_log_mean(lam, 2, (cut, math.inf)))
    assert math.isclose(lo + hi, 2 * lam, rel_tol=1e-8)


@pytest.mark.parametrize("H", [3, 4, 5, 8])
def test_kac_rice_lambda2_is_sqrt_3h_minus_2(H):
    assert math.isclose(
        math.exp(kac_rice_log_mean(2, H, per="class")), math.sqrt(3 * H - 2), rel_tol=1e-9
    )


@pytest.mark.parametrize(("lam", "H"), [(2, 2), (3, 3), (4, 3), (3, 4), (6, 5)])
def test_kac_rice_by_index_sums_to_total(lam, H):
    ic = kac_rice_by_index(lam, H, n_samples=40_000, seed=lam + H)
    total = math.exp(kac_rice_log_mean(lam, H))
    # Monte Carlo over GOE_lam: the sum over k of the per-index estimates is itself a mean of
    # sum_k f(lambda_k), whose SE we bound by the sum of SEs; 4 SE.
    assert abs(ic.points.sum() - total) <= 4 * ic.points_stderr.sum() + 1e-12 * total
    if H == 2:  # every index is one class (two points): exact, no Monte Carlo error
        assert np.allclose(ic.points, 2.0)
    # Morse symmetry for odd H: L(-w) = -L(w) maps index k to lam - 1 - k.
    if H % 2:
        assert np.all(
            np.abs(ic.points - ic.points[::-1]) < 4 * (ic.points_stderr + ic.points_stderr[::-1])
        )


def test_real_classes_below_complex_bound():
    for lam in range(2, 10):
        for H in range(3, 8):
            assert kac_rice_log_mean(lam, H, per="class") < log_complex_classes(lam, H)


def test_e0_einf_literature():
    assert math.isclose(e_inf(3), 2 * math.sqrt(2 / 3), rel_tol=1e-15)
    assert abs(e_0(3) - 1.657) < 1e-3  # ABC 2013 / Crisanti-Sommers: E_0(3) = 1.657
    assert math.isclose(e_0(2), math.sqrt(2), rel_tol=1e-12)
    for H in range(3, 12):
        assert e_0(H) > e_inf(H)
        assert abs(complexity_by_index(-e_0(H), H, 0)) < 1e-10
    # E_inf -> 2 and E_0 -> sqrt(2 log H) growth: both increase with H
    assert all(e_0(H + 1) > e_0(H) for H in range(2, 12))


def test_complexity_limits_and_finite_lambda():
    H = 3
    assert math.isclose(float(complexity(0.0, H)), 0.5 * math.log(2))
    assert math.isclose(float(complexity(5.0, H)), 0.5 * math.log(2))
    # the total density complexity is symmetric in u
    u = np.linspace(-2, 2, 9)
    assert np.allclose(complexity(u, H, cumulative=False), complexity(-u, H, cumulative=False))
    # finite-Lambda exact mean approaches the annealed complexity: (1/lam) log E Crt -> 1/2 log 2
    # with O(log(lam)/lam) corrections (0.02 at lam = 300).
    lam = 300
    assert abs(kac_rice_log_mean(lam, H) / lam - 0.5 * math.log(2)) < 0.03
    # and the number of points below -E_inf decays at rate Theta_{H}(-E_inf - 0.05) < 1/2 log 2
    u0 = -e_inf(H) - 0.05
    rate = kac_rice_log_mean(lam, H, (-math.inf, u0)) / lam
    assert abs(rate - float(complexity(u0, H))) < 0.03
    # index-k complexity falls with k below the threshold
    assert complexity_by_index(-1.64, H, 0) > complexity_by_index(-1.64, H, 1)
    assert np.isneginf(complexity_by_index(-1.0, H, 0, cumulative=False))


def test_semicircle_and_log_volume():
    H, u = 4, -1.8
    r = hessian_semicircle_radius(H)
    assert math.isclose(r, 2 * math.sqrt(12))
    tot, _ = integrate.quad(lambda x: hessian_semicircle_density(x, u, H), -H * u - r, -H * u + r)
    assert abs(tot - 1) < 1e-9
    # log-volume vs direct quadrature of -1/2 ∫ log(x) rho(x) dx over the shifted semicircle
    val, _ = integrate.quad(
        lambda x: -0.5 * math.log(x) * hessian_semicircle_density(x, u, H), -H * u - r, -H * u + r
    )
    assert abs(val - float(log_volume_curve(u, H))) < 1e-8
    # slope vs central finite difference
    h = 1e-5
    fd = (log_volume_curve(u + h, H) - log_volume_curve(u - h, H)) / (2 * h)
    assert abs(fd - log_volume_slope(u, H)) < 1e-7
    # threshold slope sqrt(H/(H-1))/2 falls with H
    s = [float(log_volume_slope(-e_inf(k), k)) for k in range(2, 8)]
    assert np.allclose(s, [0.5 * math.sqrt(k / (k - 1)) for k in range(2, 8)])
    assert np.all(np.diff(s) < 0)
    with pytest.raises(ConfigError):
        log_volume_curve(-1.0, H)  # above the threshold: not a minimum


def test_random_overlap_pdf_vs_samples():
    lam = 12
    tot, _ = integrate.quad(lambda q: random_overlap_pdf(q, lam), -1, 1)
    assert abs(tot - 1) < 1e-10
    # (1 + q)/2 ~ Beta((lam-1)/2, (lam-1)/2) for a uniform direction (independent closed form)
    a = (lam - 1) / 2
    x = np.linspace(-0.99, 0.99, 41)
    assert np.allclose(
        random_overlap_pdf(x, lam), 0.5 * stats.beta.pdf((x + 1) / 2, a, a), rtol=1e-10
    )
    q = random_overlaps(20_000, lam, seed=0)
    # KS test of the sampler against the same law (seeded), p > 1e-4
    assert stats.kstest(q, lambda t: stats.beta.cdf((t + 1) / 2, a, a)).pvalue > 1e-4
    assert abs(q.std() - 1 / math.sqrt(lam)) < 0.01


def test_analytic_table_shape_and_peak():
    df = analytic_table(60, range(2, 16))
    assert list(df["H"]) == list(range(2, 16))
    assert list(df["lam"]) == [round(60 / H) for H in range(2, 16)]
    # the complex log-count rises from H = 2 to a peak and then falls (spec)
    peak = int(df["log_complex_classes"].idxmax())
    assert 0 < peak < len(df) - 1
    assert np.all(df["log_kr_classes"] <= df["log_complex_classes"] + 1e-12)
