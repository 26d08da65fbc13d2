"""Depth-0 anchor: Cover's capacity, exact LP separability, hard margin."""

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats
from sklearn.svm import LinearSVC

from weightscape.errors import ConfigError
from weightscape.jamming import (
    cover_log_probability,
    cover_probability,
    hard_margin,
    lp_max_margin,
    lp_separable,
)


def cover_exact(P, N) -> Fraction:
    """Cover's formula in exact rational arithmetic (independent of scipy's binomial CDF)."""
    return Fraction(sum(math.comb(P - 1, k) for k in range(N)), 2 ** (P - 1))


def test_cover_against_exact_rationals():
    for N in range(1, 21):
        for P in range(1, 60):
            # 1e-12 relative: binom.cdf is an incomplete-beta evaluation accurate to ~1e-14
            assert cover_probability(P, N) == pytest.approx(float(cover_exact(P, N)), rel=1e-12)


def test_cover_known_values():
    N = np.arange(1, 2001)
    np.testing.assert_allclose(cover_probability(2 * N, N), 0.5, rtol=1e-12)
    np.testing.assert_array_equal(cover_probability(N, N), 1.0)
    assert cover_probability(5, 10) == 1.0
    # deep UNSAT tail: the log version stays accurate where C underflows
    P, n = 2000, 10
    exact = cover_exact(P, n)
    log_exact = math.log(exact.numerator) - math.log(exact.denominator)
    assert cover_log_probability(P, n) == pytest.approx(log_exact, rel=1e-10)
    logs = cover_log_probability(np.array([[30, P]]), n)  # broadcasts, mixes both branches
    np.testing.assert_allclose(logs, [[math.log(float(cover_exact(30, n))), log_exact]], rtol=1e-10)
    with pytest.raises(ConfigError):
        cover_probability(0, 3)
    with pytest.raises(ConfigError):
        cover_probability(2.5, 3)


def _monte_carlo(N, Ps, trials, seed):
    """Separable counts per P for raw Gaussian inputs and iid random ±1 labels."""
    rng = np.random.default_rng(seed)
    counts = []
    for P in Ps:
        k = 0
        for _ in range(trials):
            x = rng.standard_normal((P, N))
            y = rng.choice([-1.0, 1.0], P)
            sep = lp_separable(x, y)
            # two exact methods (LP feasibility, NNLS least-distance program) must agree
            assert hard_margin(x, y).separable == sep
            k += sep
        counts.append(k)
    return np.array(counts)


def _chi2_p(counts, Ps, N, trials):
    c = cover_probability(np.array(Ps), N)
    var = trials * c * (1 - c)
    chi2 = np.sum((counts - trials * c) ** 2 / var)
    return stats.chi2.sf(chi2, len(Ps))


def test_lp_separability_matches_cover_monte_carlo():
    # N = 10 and N = 20 around P = 2N, 30 instances per P: one aggregate χ² of the separable
    # counts against the binomial expectation T·C(P, N); p > 1e-3 (seeded).
    p10 = _chi2_p(_monte_carlo(10, [14, 20, 26], 30, 0), [14, 20, 26], 10, 30)
    p20 = _chi2_p(_monte_carlo(20, [34, 40, 46], 30, 1), [34, 40, 46], 20, 30)
    assert p10 > 1e-3 and p20 > 1e-3


@pytest.mark.slow
def test_lp_separability_matches_cover_monte_carlo_slow():
    # 400 instances per P at 8 values: the same χ² test with power to see a 0.03 shift in C
    # (the shift from centring / balanced labels at N = 10, P = 20 is 0.075).
    Ps10, Ps20 = [12, 16, 20, 24, 28], [30, 40, 50]
    assert _chi2_p(_monte_carlo(10, Ps10, 400, 2), Ps10, 10, 400) > 1e-3
    assert _chi2_p(_monte_carlo(20, Ps20, 400, 3), Ps20, 20, 400) > 1e-3


def test_hard_margin_analytic_cases():
    # two orthogonal points with opposite labels: w = (1, −1), margin 1/√2
    r = hard_margin([[1.0, 0.0], [0.0, 1.0]], [1, -1])
    assert r.separable
    np.testing.assert_allclose(r.w, [1.0, -1.0], atol=1e-12)
    assert r.margin == pytest.approx(1 / math.sqrt(2), rel=1e-12)
    # the same point with both labels: not separable
    r = hard_margin([[1.0, 2.0], [1.0, 2.0]], [1, -1])
    assert not r.separable and r.margin == 0.0
    assert not lp_separable([[1.0, 2.0], [1.0, 2.0]], [1, -1])
    # ∞-norm LP margin: x = I_N, y = +1 → w_i ≥ t with |w_i| ≤ 1 → t = 1
    t, w = lp_max_margin(np.eye(4), np.ones(4))
    assert t == pytest.approx(1.0) and np.all(w >= 1 - 1e-9)
    t, _ = lp_max_margin([[1.0, 2.0], [1.0, 2.0]], [1, -1])
    assert t == pytest.approx(0.0, abs=1e-12)


def test_hard_margin_kkt_and_sklearn():
    # Easy separable data: labels from a teacher with a clear margin.
    rng = np.random.default_rng(8)
    x = rng.standard_normal((40, 5))
    teacher = np.array([1.0, -0.5, 0.3, 0.0, 0.8])
    keep = np.abs(x @ teacher) > 0.5
    x = x[keep]
    y = np.sign(x @ teacher)
    r = hard_margin(x, y)
    z = y[:, None] * x
    # KKT oracle: feasible, active constraints at 1, w in the cone of the active z_μ
    margins = z @ r.w
    assert margins.min() == pytest.approx(1.0, abs=1e-9)
    active = np.abs(margins - 1) < 1e-8
    alpha = np.linalg.lstsq(z[active].T, r.w, rcond=None)[0]
    assert np.all(alpha > -1e-8) and np.allclose(z[active].T @ alpha, r.w, atol=1e-8)
    # Peer: sklearn's linear SVM without intercept at large C approaches the hard margin
    # (liblinear stops at tol; 1e-3 relative covers that).
    svc = LinearSVC(fit_intercept=False, C=1e4, loss="hinge", tol=1e-10, max_iter=1_000_000)
    svc.fit(x, y)
    w_svc = svc.coef_[0]
    assert np.min(z @ w_svc) / np.linalg.norm(w_svc) == pytest.approx(r.margin, rel=1e-3)
    # the LP agrees it is separable and the ∞-norm margin is positive
    assert lp_separable(x, y) and lp_max_margin(x, y)[0] > 0


def test_input_validation():
    with pytest.raises(ConfigError):
        lp_separable(np.ones((3, 2)), [1, -1])
    with pytest.raises(ConfigError):
        hard_margin(np.ones((2, 2)), [1, 0])


def test_lp_separable_on_an_instance_where_the_feasibility_lp_stalls():
    # The depth-0 instance (N = 50, P = 120, raw Gaussian inputs, iid labels) on which HiGHS
    # ended the free-variable feasibility LP with "model status Unknown" in a `--scale small`
    # run. lp_separable falls back to the total-slack LP; oracles: the ∞-norm max-margin LP
    # (t = 0: not separable), sklearn's LinearSVC (training errors remain), and the slack LP's
    # optimum being ≥ 1 as it must be for non-separable data.
    from weightscape.data import load
    from weightscape.jamming import depth0_protocol
    from weightscape.jamming._cover import _signed, _slack_lp
    from weightscape.runs import member_recipes

    cfg = depth0_protocol(max_steps=6000).run_config(
        depth=0, width=50, seed=0, P=120, d=50, data_seed=100_003 * 120 + 14,
        data_options={"labels": "iid"},
    )  # fmt: skip
    r = member_recipes([cfg])[0]
    ds = load(r.data_name, **dict(r.data_options))
    x, y = np.asarray(ds.x), np.asarray(ds.y)
    assert x.shape == (120, 50)
    assert lp_separable(x, y) is False
    assert lp_max_margin(x, y)[0] == pytest.approx(0.0, abs=1e-9)
    assert _slack_lp(_signed(x, y)) >= 1.0
    svc = LinearSVC(C=1e4, fit_intercept=False, max_iter=200_000).fit(x, y)
    assert np.any(svc.predict(x) != y)
    # separable data: the slack LP's optimum is 0
    w = np.random.default_rng(0).normal(size=50)
    assert _slack_lp(_signed(x, np.sign(x @ w))) == pytest.approx(0.0, abs=1e-9)
