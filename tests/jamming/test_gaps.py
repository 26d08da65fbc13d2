"""Gap histograms and the power-law exponents θ and γ."""

import math

import numpy as np
import pytest
from scipy import stats

from weightscape.errors import ConfigError, NumericalError
from weightscape.jamming import (
    GAP_RANGE,
    fit_gamma,
    fit_gap_exponent,
    fit_theta,
    gap_bins,
    gap_histogram,
)
from weightscape.jamming._gaps import _mle_exponent


def power_law_gaps(rng, n, side, exponent, scale=1.0):
    """Gaps whose |Δ| has CDF (x/scale)^a on (0, scale): a = 1 + θ (pos) or 1 − γ (neg)."""
    a = 1 + exponent if side == "pos" else 1 - exponent
    x = scale * rng.random(n) ** (1 / a)
    return x if side == "pos" else -x


# ------------------------------------------------------------------------------------------------
# histograms


def test_bins_cover_the_spec_range():
    e = gap_bins()
    assert e[0] == pytest.approx(GAP_RANGE[0]) and e[-1] == pytest.approx(GAP_RANGE[1])
    assert len(e) == 131  # 13 decades x 10
    np.testing.assert_allclose(np.diff(np.log10(e)), 0.1, rtol=1e-12)


def test_histogram_integrates_to_the_fraction_in_range():
    rng = np.random.default_rng(0)
    d = np.concatenate(
        [rng.normal(0, 1, 5000), [0.0, 0.0, 1e-12, -1e-11, 2e5, -3e6], 1e-3 * rng.normal(size=50)]
    )
    h = gap_histogram(d)
    inside_pos = np.sum((d > 0) & (d >= 1e-9) & (d <= 1e4))
    inside_neg = np.sum((d < 0) & (-d >= 1e-9) & (-d <= 1e4))
    # exact counting identities (1e-12: float summation of ~130 terms)
    assert np.sum(h.density_pos * h.widths) == pytest.approx(inside_pos / d.size, rel=1e-12)
    assert np.sum(h.density_neg * h.widths) == pytest.approx(inside_neg / d.size, rel=1e-12)
    assert (h.n_pos, h.n_neg, h.n_zero, h.n_total) == (
        np.sum(d > 0),
        np.sum(d < 0),
        2,
        d.size,
    )
    assert h.n_pos_outside == 2 and h.n_neg_outside == 2
    assert list(h.to_frame().columns)[:3] == ["lo", "hi", "center"]


def test_histogram_density_matches_the_analytic_density():
    # Δ ~ N(0.3, 1): expected counts per bin are n (Φ(hi − 0.3) − Φ(lo − 0.3)) on the positive
    # side. Aggregate Pearson χ² over bins with ≥ 5 expected counts; p > 1e-3 (seeded).
    rng = np.random.default_rng(1)
    n = 20_000
    d = rng.normal(0.3, 1.0, n)
    for per_run in (False, True):
        h = gap_histogram(np.array_split(d, 7) if per_run else d, per_decade=5)
        e = h.edges
        exp_pos = n * (stats.norm.cdf(e[1:] - 0.3) - stats.norm.cdf(e[:-1] - 0.3))
        exp_neg = n * (stats.norm.cdf(-e[:-1] - 0.3) - stats.norm.cdf(-e[1:] - 0.3))
        obs = np.concatenate([h.density_pos, h.density_neg]) * n * np.tile(h.widths, 2)
        exp = np.concatenate([exp_pos, exp_neg])
        keep = exp >= 5
        chi2 = np.sum((obs[keep] - exp[keep]) ** 2 / exp[keep])
        assert stats.chi2.sf(chi2, keep.sum()) > 1e-3


# ------------------------------------------------------------------------------------------------
# exponents


@pytest.mark.parametrize("method", ["cdf", "mle"])
@pytest.mark.parametrize(("side", "exponent"), [("pos", 0.3), ("neg", 0.2)])
def test_recovers_paper_exponents(method, side, exponent):
    # 20k gaps: the fit must lie within 4 bootstrap errors of the truth (seeded)
    rng = np.random.default_rng(2)
    d = power_law_gaps(rng, 20_000, side, exponent)
    f = fit_gap_exponent(d, side, method=method, n_boot=100, seed=0)
    assert abs(f.exponent - exponent) < 4 * f.err
    assert f.err < 0.05 and f.interval[0] < f.exponent < f.interval[1]
    assert f.cdf_exponent == pytest.approx(1 + exponent if side == "pos" else 1 - exponent, abs=0.1)


def _z_scores(cases, n_sets, n, n_boot, method):
    z = []
    for k, (side, exponent) in enumerate(cases):
        for s in range(n_sets):
            rng = np.random.default_rng(10_000 * k + s)
            f = fit_gap_exponent(
                power_law_gaps(rng, n, side, exponent), side, method=method, n_boot=n_boot, seed=s
            )
            z.append((f.exponent - exponent) / f.err)
    return np.array(z)


CASES = [("pos", 0.3), ("pos", 0.0), ("pos", 0.7), ("neg", 0.2), ("neg", 0.5)]


@pytest.mark.parametrize("method", ["cdf", "mle"])
def test_exponent_errors_are_calibrated_aggregate(method):
    # 5 exponents x 3 data sets of 2000 gaps: Σ z² ~ χ²(15) if the bootstrap error is right and
    # the estimator unbiased; two-sided p > 1e-3 (seeded).
    z = _z_scores(CASES, 3, 2000, 60, method)
    chi2 = float(np.sum(z**2))
    p = 2 * min(stats.chi2.sf(chi2, z.size), stats.chi2.cdf(chi2, z.size))
    assert p > 1e-3, z


@pytest.mark.slow
@pytest.mark.parametrize("method", ["cdf", "mle"])
def test_exponent_errors_are_calibrated_aggregate_slow(method):
    # 5 exponents x 30 data sets: χ² calibration as above, and |mean z| < 4/√150 (no bias
    # beyond a small fraction of the error).
    z = _z_scores(CASES, 30, 3000, 200, method)
    chi2 = float(np.sum(z**2))
    assert 2 * min(stats.chi2.sf(chi2, z.size), stats.chi2.cdf(chi2, z.size)) > 1e-3
    assert abs(z.mean()) < 4 / math.sqrt(z.size)


def test_power_law_below_a_different_bulk():
    # Δ > 0: 40 % of the gaps follow Δ^θ on (0, 0.1), the rest are uniform on (0.1, 3); with the
    # window capped at 0.1 both estimators see a pure power law (4σ, seeded).
    rng = np.random.default_rng(4)
    n = 30_000
    small = rng.random(n) < 0.4
    d = np.where(small, 0.1 * rng.random(n) ** (1 / 1.3), rng.uniform(0.1, 3.0, n))
    d = np.concatenate([d, -rng.exponential(1.0, 5000)])  # negative gaps are ignored
    for method in ("cdf", "mle"):
        f = fit_theta(d, method=method, x_max=0.1, n_boot=100)
        assert abs(f.exponent - 0.3) < 4 * f.err
        assert f.n_side == n and f.x_max == 0.1


def test_mle_matches_brute_force_likelihood():
    # Oracle: the truncated power-law log-likelihood written naively, maximised on a fine grid
    # (grid step 1e-4 bounds the agreement).
    rng = np.random.default_rng(5)
    lo, hi = 1e-3, 0.5
    for a_true in (0.8, 1.0, 1.7, -0.3):
        # inverse-CDF draws from a x^{a−1} on [lo, hi]
        u = rng.random(4000)
        x = (lo**a_true + u * (hi**a_true - lo**a_true)) ** (1 / a_true)
        grid = np.arange(-1.0, 3.0, 1e-4)
        grid = grid[np.abs(grid) > 1e-6]
        n, S = x.size, np.sum(np.log(x))  # the likelihood depends on x only through Σ ln x
        ll = n * np.log(np.abs(grid)) + (grid - 1) * S - n * np.log(np.abs(hi**grid - lo**grid))
        a_hat = _mle_exponent(np.sort(x), lo, hi)
        assert a_hat == pytest.approx(grid[int(np.argmax(ll))], abs=2e-4)


def test_runs_bootstrap_and_pooling():
    rng = np.random.default_rng(6)
    runs = [power_law_gaps(rng, 500, "neg", 0.2) for _ in range(12)]
    by_run = fit_gamma(runs, n_boot=100)
    pooled = fit_gamma(np.concatenate(runs), n_boot=100)
    # same pooled data: same point estimate and window; the bootstrap unit differs
    assert by_run.exponent == pooled.exponent and by_run.x_min == pooled.x_min
    assert (by_run.resample, pooled.resample) == ("runs", "points")
    assert by_run.n_runs == 12
    # independent runs: the two bootstraps estimate the same error (within 40 %, which is the
    # scatter of a 12-run bootstrap)
    assert by_run.err == pytest.approx(pooled.err, rel=0.4)
    same = fit_gamma(runs, n_boot=100)
    assert same.err == by_run.err  # seeded
    as_2d = fit_gamma(np.stack(runs), n_boot=100)  # [runs, P] rows are runs
    assert as_2d.n_runs == 12 and as_2d.err == by_run.err


def test_window_held_by_one_run_has_no_error_bar():
    """Oracle: when the fit window's gaps all come from one run of six, a run bootstrap's
    replicates either miss that run (no estimate: < 3 gaps in the window, probability
    (5/6)^6 = 0.33 each) or repeat its gaps, so the survivors' spread (≈ 0.001 before the rule)
    is not an error bar; the fit reports the failures and an undefined error."""
    rng = np.random.default_rng(8)
    runs = [rng.uniform(1e-3, 1.0, 50) for _ in range(5)]
    runs.append(np.concatenate([10 ** rng.uniform(-8, -6.5, 23), rng.uniform(1e-3, 1.0, 30)]))
    f = fit_theta(runs, decades=2.0, n_boot=300)
    assert (f.resample, f.n_runs, f.n_runs_fit) == ("runs", 6, 1)
    # binomial(300, 0.335): mean 100, sd 8; ±5 sd
    assert 60 <= f.n_boot_failed <= 140
    assert math.isnan(f.err) and all(math.isnan(v) for v in f.interval)
    assert np.isfinite(f.exponent)  # the point estimate itself is still reported
    # the same rule switched off gives the misleading tiny spread
    loose = fit_theta(runs, decades=2.0, n_boot=300, max_failed=0.9)
    assert loose.err < 0.05 and loose.n_boot_failed == f.n_boot_failed
    # a window spread over all runs keeps its error bar and loses no replicate
    good = fit_gamma([power_law_gaps(rng, 500, "neg", 0.2) for _ in range(12)], n_boot=100)
    assert good.n_boot_failed == 0 and good.n_runs_fit == 12 and np.isfinite(good.err)
    with pytest.raises(ConfigError):
        fit_theta(runs, max_failed=1.0)


@pytest.mark.parametrize("method", ["cdf", "mle"])
def test_gaps_below_the_floor_keep_their_place_in_the_cdf(method):
    """Oracle: γ = 0.9 (CDF |Δ|^0.1, so 10 % of the gaps lie below 1e-10) fitted two decades
    above a floor of 1e-10. Gaps below the floor never enter the window, but the CDF counts them:
    the estimate recovers γ; dropping them from the data first (right for a separate population
    of contacts at 0, wrong for this one) fits F(x) − F(floor) and gives γ ≈ 0.27. The MLE of a
    power law truncated to the window does not depend on what lies outside it."""
    rng = np.random.default_rng(11)
    runs = [power_law_gaps(rng, 400, "neg", 0.9) for _ in range(40)]
    floor = 1e-10
    f = fit_gamma(runs, decades=2.0, n_boot=200, floor=floor, method=method)
    above = [r[np.abs(r) >= floor] for r in runs]
    assert f.x_min == np.sort(-np.concatenate(above)[np.concatenate(above) < 0])[9]
    assert f.n_below_floor == sum(int(np.sum(np.abs(r) < floor)) for r in runs) > 1000
    assert f.n_side == 16000
    assert abs(f.exponent - 0.9) < 3 * f.err + 0.01  # err ≈ 0.004 (cdf), 0.01 (mle)
    dropped = fit_gamma(above, decades=2.0, n_boot=0, method=method)
    assert (dropped.x_min, dropped.x_max) == (f.x_min, f.x_max)  # same window
    if method == "cdf":
        assert dropped.exponent < 0.4  # the bias this guards against
    else:
        assert dropped.exponent == pytest.approx(f.exponent, abs=1e-9)
    # floor = 0 is the old behaviour on data without tiny gaps; x_min below the floor is refused
    assert fit_gamma(above, n_boot=0, floor=0.0).exponent == fit_gamma(above, n_boot=0).exponent
    with pytest.raises(ConfigError, match="x_min"):
        fit_gamma(runs, floor=floor, x_min=1e-12, x_max=1e-9)
    with pytest.raises(ConfigError, match="floor"):
        fit_gamma(runs, floor=float("nan"))


def test_window_and_input_errors():
    rng = np.random.default_rng(7)
    d = power_law_gaps(rng, 1000, "pos", 0.3)
    f = fit_theta(d, n_boot=0)
    assert f.x_min == np.sort(d)[9]  # the 10th smallest gap
    assert f.x_max == pytest.approx(min(1e3 * f.x_min, d.max()))
    assert math.isnan(f.err)
    with pytest.raises(ConfigError):
        fit_gap_exponent(d, "both")
    with pytest.raises(ConfigError):
        fit_theta(d, method="ls")
    with pytest.raises(ConfigError):
        fit_theta(d, x_min=0.5, x_max=0.1)
    with pytest.raises(NumericalError):
        fit_theta(d, x_min=1e-8, x_max=1e-7)  # empty window
    with pytest.raises(NumericalError):
        fit_gamma(d)  # no negative gaps
    with pytest.raises(NumericalError):
        gap_histogram([0.1, np.nan])
