"""Entropy landscape: analytic cases (J = 0), exact enumeration on trees, a planted two-cluster
model (jump, hysteresis, coexisting fixed points vs the Curie–Weiss BP equation), summaries on
hand-made data, batching, conventions, iso-energy vs a scalar root, figures."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from scipy import optimize

from weightscape.errors import ConfigError, DatasetError
from weightscape.maxent import (
    BetheConfig,
    IsingModel,
    IsoEnergyConfig,
    LandscapeConfig,
    LandscapeResult,
    binary_entropy,
    bp_fixed_points,
    entropy_landscape,
    entropy_landscapes,
    exact_log_partition,
    exact_moments,
    iso_energy_landscape,
    plot_d_of_x,
    plot_entropy_landscape,
)

from .conftest import random_model, tree_model

TIGHT_BP = BetheConfig(tol=1e-12, criterion="max_residual", max_iter=5000)
COARSE = {"x_min": -2.0, "x_max": 2.0, "x_step": 0.25}  # 17 tilts: fast tests


def planted(n=40, j0=2.0, seed=0):
    """Hopfield model with one pattern ξ (J = J0 ξξᵀ/N, h = 0): two clusters ±ξ for J0 > 1."""
    rng = np.random.default_rng(seed)
    xi = rng.choice([-1.0, 1.0], n)
    J = j0 / n * np.outer(xi, xi)
    return IsingModel.from_couplings(J, np.zeros(n)), xi


def curie_weiss_bp_magnetisation(n, j0):
    """Symmetric BP fixed point of the ferromagnet J_ij = j0/n (in the gauge of ξ), m > 0."""
    t = math.tanh(j0 / n)

    def cavity(mc):
        return math.tanh((n - 2) * math.atanh(t * mc)) - mc

    mc = optimize.brentq(cavity, 1e-6, 1 - 1e-15, xtol=1e-15)
    return math.tanh((n - 1) * math.atanh(t * mc))


@pytest.mark.parametrize("accel", ["adaptive", "anderson", "adaptive+anderson"])
def test_independent_unbiased_spins_sit_on_the_bound(accel):
    """J = 0, h = 0: d = (1 - tanh x)/2 and s(d) = H(d) exactly at every x."""
    res = entropy_landscape(
        IsingModel.zeros(7), np.ones(7), LandscapeConfig(bp=BetheConfig(accel=accel))
    )
    x = res.x
    assert len(x) == 121 and math.isclose(x[0], -3) and math.isclose(x[-1], 3)
    np.testing.assert_allclose(res.d, np.broadcast_to((1 - np.tanh(x)) / 2, (2, 121)), atol=1e-15)
    # closed forms agree to round-off (s = ln 2cosh x - x tanh x)
    np.testing.assert_allclose(res.s, res.bound, atol=1e-14)
    assert res.converged.all()
    summ = res.summary()
    assert abs(summ.mean_gap) < 1e-14 and not summ.has_jump and not summ.has_hysteresis


def test_non_uniform_fields_stay_below_the_bound():
    h = np.array([0.8, -0.3, 0.0, 1.5, -1.0])
    model = IsingModel.from_couplings(np.zeros((5, 5)), h)
    ref = np.array([1, 1, -1, -1, 1])
    res = entropy_landscape(model, ref, LandscapeConfig(**COARSE))
    a = h[None, :] + res.x[:, None] * ref[None, :]
    s_exact = np.mean(np.log(2 * np.cosh(a)) - a * np.tanh(a), axis=1)
    np.testing.assert_allclose(res.s[0], s_exact, atol=1e-13)
    assert (res.gap > 1e-3).all()  # strictly below H(d) (the fields differ between spins)


@pytest.mark.parametrize("accel", ["adaptive", "anderson", "adaptive+anderson"])
@pytest.mark.parametrize("seed", [0, 1])
def test_tilted_entropy_on_trees_equals_enumeration(seed, accel):
    model, _ = tree_model(11, seed, coupling=0.8, field=0.4)
    ref = np.random.default_rng(seed).choice([-1, 1], 11)
    bp = dataclasses.replace(TIGHT_BP, accel=accel)
    cfg = LandscapeConfig(x_min=-1.0, x_max=1.0, x_step=0.5, bp=bp)
    res = entropy_landscape(model, ref, cfg)
    for k, x in enumerate(res.x):
        tilted = model.tilted(float(x), torch.as_tensor(ref, dtype=torch.float64))
        ex = exact_moments(tilted)
        lz = float(exact_log_partition(tilted)) / 11
        e = float(-(0.5 * (tilted.J * ex.C).sum() + tilted.h @ ex.m)) / 11
        d = 0.5 * (1 - float(ex.m @ torch.as_tensor(ref, dtype=torch.float64)) / 11)
        for row in (0, 1):  # unique fixed point: both sweeps equal
            assert abs(res.s[row, k] - (lz + e)) < 1e-10
            assert abs(res.d[row, k] - d) < 1e-10
            assert abs(res.free_entropy[row, k] - lz) < 1e-10
        # e0 = βe + xq is the untilted model's exact energy per spin
        e_untilted = float(-(0.5 * (model.J * ex.C).sum() + model.h @ ex.m)) / 11
        assert abs(res.e0[0, k] - e_untilted) < 1e-10


def test_planted_two_clusters_jump_hysteresis_and_fixed_points():
    n, j0 = 40, 2.0
    model, xi = planted(n, j0)
    cfg = LandscapeConfig(x_min=-1.0, x_max=1.0, x_step=0.05, bp=BetheConfig(tol=1e-10))
    res = entropy_landscape(model, xi, cfg)
    summ = res.summary()
    assert res.converged.all()
    assert summ.has_jump and summ.has_hysteresis and summ.n_jumps == 1
    assert summ.max_jump > 0.8  # from near ξ (d ≈ 0.02) to near -ξ (d ≈ 0.98)
    x_hi, x_lo = summ.max_jump_x
    assert x_lo < x_hi < 0  # the downward sweep holds the +ξ cluster past x = 0
    assert summ.max_jump_up_x[0] > 0  # and the upward sweep jumps back only at x > 0
    # at x = 0 the two sweeps sit in the two coexisting fixed points ±ξ of the Curie-Weiss BP
    m_star = curie_weiss_bp_magnetisation(n, j0)
    i0 = int(np.argmin(np.abs(res.x)))
    assert abs(res.d[0, i0] - (1 - m_star) / 2) < 1e-8
    assert abs(res.d[1, i0] - (1 + m_star) / 2) < 1e-8
    assert abs(summ.d_at_zero - (1 - m_star) / 2) < 1e-8
    # random starts at x = 0 find exactly these two (the paramagnet m = 0 is unstable)
    fp = bp_fixed_points(model, n_starts=12, reference=xi, config=BetheConfig(tol=1e-10))
    assert fp.n_converged == 12 and fp.n_fixed_points == 2 and fp.counts.sum() == 12
    np.testing.assert_allclose(np.sort(fp.overlaps), [-m_star, m_star], atol=1e-8)
    assert abs(fp.free_entropy[0] - fp.free_entropy[1]) < 1e-10  # symmetric clusters


def test_refine_jump_tells_a_discontinuity_from_a_steep_curve():
    """Planted two clusters: the downward sweep's jump stays in one sub-step (ratio → 1);
    J = 0 (d = (1 - tanh x)/2, analytic): the largest coarse step splits into 8 nearly equal
    sub-steps, ratio = max sub-step / coarse step computed in closed form."""
    from weightscape.maxent import refine_jump

    model, xi = planted(40, 2.0)
    cfg = LandscapeConfig(x_min=-1.0, x_max=1.0, x_step=0.1, bp=BetheConfig(tol=1e-10))
    res = entropy_landscape(model, xi, cfg)
    r = refine_jump(model, xi, res, factor=8)
    # BP does not converge at the spinodal point itself: the change spans it (2 sub-steps)
    assert r["discontinuous"] and r["ratio"] > 0.9 and r["n_substeps"] == 8
    assert r["max_span"] <= 2 and r["n_unconverged"] <= 1
    assert r["coarse_jump"] == pytest.approx(res.summary().max_jump)
    free = IsingModel.zeros(9)
    ref = np.ones(9)
    cfg = LandscapeConfig(x_min=-2.0, x_max=2.0, x_step=0.25)
    res = entropy_landscape(free, ref, cfg)
    r = refine_jump(free, ref, res, factor=8)
    a, b = r["x_from"], r["x_to"]
    x = np.linspace(b, a, 9)
    exact = np.abs(np.diff((1 - np.tanh(x)) / 2)).max() / abs((np.tanh(a) - np.tanh(b)) / 2)
    assert not r["discontinuous"] and r["ratio"] == pytest.approx(exact, abs=1e-9)
    assert r["max_span"] == 1 and r["n_unconverged"] == 0
    assert r["ratio"] < 0.2
    with pytest.raises(ConfigError, match="factor"):
        refine_jump(free, ref, res, factor=1)
    one = entropy_landscape(free, ref, dataclasses.replace(cfg, both_directions=False))
    with pytest.raises(ConfigError, match="not swept"):
        refine_jump(free, ref, one, direction="up")


def curie_weiss_bp_spinodal(n, j0):
    """Tilt ``x_s > 0`` at which the m > 0 branch of the symmetric BP fixed point of the
    ferromagnet J_ij = j0/n in a uniform field -x ends: the cavity map
    ``g(μ) = tanh(-x + (n - 2) atanh(t μ))`` touches the diagonal (``g = μ``, ``g' = 1``)."""
    t = math.tanh(j0 / n)

    def eqs(v):
        mu, x = v
        g = math.tanh(-x + (n - 2) * math.atanh(t * mu))
        return [g - mu, (1 - g * g) * (n - 2) * t / (1 - (t * mu) ** 2) - 1]

    mu, x = optimize.fsolve(eqs, [0.27, 0.014], xtol=1e-14)
    assert max(abs(e) for e in eqs([mu, x])) < 1e-12 and mu > 0
    return x, mu


def curie_weiss_bp_distance(n, j0, x, mu0):
    """``d`` of the symmetric BP fixed point at tilt ``x`` on the branch through ``mu0``."""
    t = math.tanh(j0 / n)
    mu = optimize.fixed_point(lambda m: math.tanh(x + (n - 2) * math.atanh(t * m)), mu0,
                              xtol=1e-15, maxiter=100_000)  # fmt: skip
    return (1 - math.tanh(x + (n - 1) * math.atanh(t * float(mu)))) / 2


def test_refine_jump_of_the_second_sweep_stays_on_its_branch(monkeypatch):
    # first_sweep="up" ending at x = 0.3, inside the coexistence range of the planted model:
    # the downward (second) sweep starts there on the branch the upward sweep ended on (d ≈ 0.94
    # at this reference). Its refinement must begin there too, not from zero messages, which
    # land on the other cluster (d ≈ 0.01). The fine sweep's points on the coarse grid equal
    # the coarse sweep's.
    from weightscape.maxent import _landscape, refine_jump

    model, xi = planted(40, 2.0)
    cfg = LandscapeConfig(x_min=-1.0, x_max=0.3, x_step=0.05, first_sweep="up",
                          bp=BetheConfig(tol=1e-12))  # fmt: skip
    coarse = entropy_landscape(model, xi, cfg)
    assert coarse.d[0, -1] > 0.9 and coarse.converged.all()
    seen = []
    fine_landscape = _landscape._fine_landscape
    monkeypatch.setattr(_landscape, "_fine_landscape",
                        lambda *a: seen.append(fine_landscape(*a)) or seen[-1])  # fmt: skip
    out = refine_jump(model, xi, coarse, factor=4, direction="down")
    (fine,) = seen
    on_grid = [int(np.argmin(np.abs(fine.x - x))) for x in coarse.x if x >= fine.x[0] - 1e-12]
    np.testing.assert_allclose(fine.d[0, on_grid], coarse.d[0, -len(on_grid) :], atol=1e-6)
    assert out["x_to"] == pytest.approx(fine.x[0])
    # the first sweep's refinement starts from the initial messages, as that sweep did
    seen.clear()
    refine_jump(model, xi, coarse, factor=4, direction="up")
    (fine,) = seen
    np.testing.assert_allclose(fine.d[1, 0], coarse.d[1, 0], atol=1e-6)


def test_refine_and_scan_refuse_a_monte_carlo_landscape():
    from weightscape.maxent import (
        MCLandscapeConfig,
        mc_entropy_landscape,
        refine_jump,
        scan_hysteresis,
    )

    model, xi = planted(8, 0.5)
    grid = {"x_min": -0.5, "x_max": 0.5, "x_step": 0.25}
    cfg = MCLandscapeConfig(**grid, n_chains=4, sweeps_per_x=4, measure_sweeps=2, entropy=False)
    mc = mc_entropy_landscape(model, xi, cfg)
    with pytest.raises(ConfigError, match="refine_jump re-sweeps a BP landscape"):
        refine_jump(model, xi, mc)
    with pytest.raises(ConfigError, match="scan_hysteresis re-sweeps a BP landscape"):
        scan_hysteresis(model, xi, mc)


def test_random_initial_messages_do_not_depend_on_the_batch():
    # init_messages="random": every reference starts from the same seeded draw, so a reference
    # has the same landscape alone, at any place of a batch, and at any batch size.
    model, xi = planted(40, 2.0)
    others = np.random.default_rng(0).choice([-1.0, 1.0], (5, 40))
    refs = np.vstack([others, xi])
    base = dict(x_min=-0.1, x_max=0.0, x_step=0.05, init_messages="random", init_scale=0.5,
                both_directions=False)  # fmt: skip
    for seed in (0, 2, 5):
        cfg = LandscapeConfig(**base, seed=seed)
        alone = entropy_landscape(model, xi, cfg)
        for bs in (None, 1, 4):
            cfg_b = LandscapeConfig(**base, seed=seed, batch_size=bs)
            inside = entropy_landscapes(model, refs, cfg_b)[5]
            np.testing.assert_array_equal(inside.d, alone.d)


def test_scan_hysteresis_finds_a_window_between_grid_points():
    """Curie-Weiss (planted, J0 = 1.1, N = 100): the two BP branches coexist for |x| < x_s ≈
    0.014, between the grid points ±0.025 of a step-0.05 grid, so the coarse sweeps agree
    everywhere. The scan at step 0.002 finds the window at the spinodals of the scalar BP
    equation (within one fine step) and d on both branches equal to its fixed points."""
    from weightscape.maxent import scan_hysteresis

    n, j0 = 100, 1.1
    model, xi = planted(n, j0)
    cfg = LandscapeConfig(x_min=-1.025, x_max=1.025, x_step=0.05, bp=BetheConfig(tol=1e-10))
    res = entropy_landscape(model, xi, cfg)
    assert res.converged.all() and not res.summary().has_hysteresis
    sc = scan_hysteresis(model, xi, res, factor=25)
    xs, _ = curie_weiss_bp_spinodal(n, j0)
    assert 0.01 < xs < 0.02  # narrower than half the grid step
    assert sc.hysteresis and sc.fine_step == pytest.approx(0.002)
    lo, hi = sc.hysteresis_range
    assert abs(lo + xs) <= sc.fine_step and abs(hi - xs) <= sc.fine_step
    assert any(a <= -xs and xs <= b for a, b in sc.windows)
    # both branches against the scalar BP equation, away from the spinodals (slow convergence)
    inside = sc.fine & (np.abs(sc.x) < xs - 2 * sc.fine_step)
    assert inside.sum() >= 3
    for k in np.flatnonzero(inside):
        down = curie_weiss_bp_distance(n, j0, sc.x[k], 0.5)
        up = curie_weiss_bp_distance(n, j0, sc.x[k], -0.5)
        assert abs(sc.d[0, k] - down) < 1e-6 and abs(sc.d[1, k] - up) < 1e-6
    # the jump across the window is many fine steps' worth of a smooth change
    assert min(sc.largest_fine_step) > 0.1 > 20 * sc.median_fine_step
    # coarse points of the scan are the landscape's own (same branch outside the windows)
    coarse = ~sc.fine
    np.testing.assert_allclose(sc.d[:, coarse], res.d[:, np.isin(res.x, sc.x[coarse])],
                               atol=1e-6)  # fmt: skip


def test_scan_hysteresis_smooth_curve_analytic():
    """J = 0, h = 0: d = (1 - tanh x)/2 on both sweeps: no hysteresis, and the largest fine step
    is the analytic one (slope 1/2 at x = 0)."""
    from weightscape.maxent import scan_hysteresis

    free = IsingModel.zeros(9)
    ref = np.ones(9)
    cfg = LandscapeConfig(**COARSE)
    res = entropy_landscape(free, ref, cfg)
    sc = scan_hysteresis(free, ref, res, factor=10, margin=2)
    assert not sc.hysteresis and sc.max_hysteresis < 1e-9 and sc.n_unconverged == 0
    np.testing.assert_allclose(sc.d[0], (1 - np.tanh(sc.x)) / 2, atol=1e-9)
    xf = sc.x[sc.fine]
    # fine points are contiguous runs at spacing fine_step
    step = np.diff(xf)
    assert np.all((np.abs(step - 0.025) < 1e-12) | (step > 0.025 + 1e-12))
    exact = max(np.abs(np.diff((1 - np.tanh(xf)) / 2))[np.abs(step - 0.025) < 1e-12])
    assert sc.largest_fine_step[0] == pytest.approx(exact, abs=1e-9)
    assert math.isnan(sc.hysteresis_range[0])
    with pytest.raises(ConfigError, match="factor"):
        scan_hysteresis(free, ref, res, factor=1)
    with pytest.raises(ConfigError, match="margin"):
        scan_hysteresis(free, ref, res, margin=-1)
    one = entropy_landscape(free, ref, dataclasses.replace(cfg, both_directions=False))
    with pytest.raises(ConfigError, match="both directions"):
        scan_hysteresis(free, ref, one)


@pytest.mark.parametrize("accel", ["adaptive", "anderson", "adaptive+anderson"])
@pytest.mark.parametrize("predictor", ["previous", "linear", "quadratic", "cubic"])
def test_planted_landscape_same_with_speedups(predictor, accel):
    """Adaptive damping or Anderson mixing and extrapolated warm starts keep the branches of the
    authors' scheme (fixed damping, start from the previous x): same jumps, same d at every x."""
    model, xi = planted(30, 2.0, seed=1)
    ref_cfg = LandscapeConfig(
        x_min=-1.0, x_max=1.0, x_step=0.05, predictor="previous",
        bp=BetheConfig(tol=1e-9, accel="none"),
    )  # fmt: skip
    a = entropy_landscape(model, xi, ref_cfg)
    cfg = LandscapeConfig(
        x_min=-1.0, x_max=1.0, x_step=0.05, predictor=predictor,
        bp=BetheConfig(tol=1e-9, accel=accel),
    )  # fmt: skip
    b = entropy_landscape(model, xi, cfg)
    sa, sb = a.summary(), b.summary()
    assert sa.has_jump and sa.max_jump_x == sb.max_jump_x and sa.max_jump_up_x == sb.max_jump_up_x
    # both stop at message changes < 1e-9: overlaps agree far below the 1e-6 asserted
    np.testing.assert_allclose(a.d, b.d, atol=1e-6)
    assert b.iterations.sum() < a.iterations.sum()


def test_anderson_keeps_the_branches_near_the_spinodal():
    """Planted two clusters at N = 200, J0 = 1.5 (the +ξ branch loses stability between two grid
    points; slow convergence just before): Anderson mixing (always, or once adaptive damping
    turns slow) reproduces the authors' scheme (fixed damping 0.5, previous-x starts) at every x
    of both sweeps: all points converged, the same jump and hysteresis at the same tilts, in
    ≥ 2× fewer sweeps. The overlaps are compared with a tight-tolerance solve of the same
    branch: all within 1e-5 (tol 1e-6 over 1 - λ ≈ 0.1 near the spinodal)."""
    model, xi = planted(200, 1.5, seed=2)
    grid = {"x_min": -1.0, "x_max": 1.0, "x_step": 0.05}
    authors = LandscapeConfig(**grid, predictor="previous", bp=BetheConfig(accel="none"))
    a = entropy_landscape(model, xi, authors)
    sa = a.summary()
    tight_bp = BetheConfig(tol=1e-12, max_iter=20000, accel="none")
    tight = entropy_landscape(model, xi, dataclasses.replace(authors, bp=tight_bp))
    assert a.converged.all() and tight.converged.all()
    assert sa.has_jump and sa.has_hysteresis and sa.max_jump > 0.5
    np.testing.assert_allclose(a.d, tight.d, atol=1e-5)
    for accel in ("anderson", "adaptive+anderson"):
        b = entropy_landscape(model, xi, LandscapeConfig(**grid, bp=BetheConfig(accel=accel)))
        sb = b.summary()
        assert b.converged.all(), accel
        assert (sb.max_jump_x, sb.max_jump_up_x) == (sa.max_jump_x, sa.max_jump_up_x), accel
        assert sb.n_jumps == sa.n_jumps and sb.has_hysteresis
        np.testing.assert_allclose(b.d, tight.d, atol=1e-5)
        assert 2 * b.iterations.sum() < a.iterations.sum(), (accel, b.iterations.sum())


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_extrapolation_is_exact_on_polynomials_of_its_order(depth):
    """The predictor of depth p (previous, linear, quadratic, cubic) continues any polynomial of
    degree p - 1 in x exactly (up to round-off); extrapolations (p > 1) are clipped to [-1, 1]."""
    from weightscape.maxent._landscape import _extrapolate

    rng = np.random.default_rng(depth)
    coef = rng.normal(0, 0.05, (depth, 2, 3, 3))
    xs = np.array([0.6, 0.55, 0.5, 0.45])[:depth]  # newest first, step -0.05

    def poly(x):
        return sum(c * x**k for k, c in enumerate(coef))

    hist = [torch.from_numpy(poly(x)) for x in xs]
    out = _extrapolate(hist, torch.empty(2, 3, 3, dtype=torch.float64))
    np.testing.assert_allclose(out.numpy(), poly(0.65), atol=1e-14, rtol=0)
    if depth > 1:
        big = [100.0 * h for h in hist]
        clipped = _extrapolate(big, torch.empty(2, 3, 3, dtype=torch.float64))
        assert float(clipped.abs().max()) == 1.0  # reached and clipped


def test_smooth_weak_model_has_no_jump_or_hysteresis():
    model = random_model(30, 0.05, 0.3, seed=3)
    ref = np.random.default_rng(0).choice([-1, 1], 30)
    res = entropy_landscape(model, ref, LandscapeConfig(**COARSE))
    summ = res.summary()
    assert not summ.has_jump and not summ.has_hysteresis
    assert summ.max_hysteresis < 1e-5  # both sweeps converge to the same unique fixed point
    # the gap of a weakly coupled model is positive and small (fields non-uniform)
    assert 0 < summ.mean_gap < 0.1


def test_batched_references_equal_separate_runs():
    model = random_model(12, 0.15, 0.3, seed=5)
    refs = np.random.default_rng(2).choice([-1, 1], (3, 12))
    cfg = LandscapeConfig(**COARSE, bp=BetheConfig(tol=1e-10))
    batched = entropy_landscapes(model, refs, cfg)
    small = entropy_landscapes(model, refs, LandscapeConfig(**COARSE, bp=cfg.bp, batch_size=2))
    for i in range(3):
        one = entropy_landscape(model, refs[i], cfg)
        for r in (batched[i], small[i]):
            np.testing.assert_array_equal(r.reference, refs[i])
            np.testing.assert_allclose(r.d, one.d, atol=1e-13)
            np.testing.assert_allclose(r.s, one.s, atol=1e-13)
            np.testing.assert_array_equal(r.iterations, one.iterations)


def test_conventions_are_arguments():
    model = random_model(10, 0.1, 0.3, seed=6)
    ref = np.ones(10)
    base = entropy_landscape(model, ref, LandscapeConfig(**COARSE, bp=BetheConfig(tol=1e-11)))
    up = entropy_landscape(
        model,
        ref,
        LandscapeConfig(
            **COARSE, first_sweep="up", init_messages="random", bp=BetheConfig(tol=1e-11)
        ),
    )
    assert up.config.sweeps == ("up", "down")
    np.testing.assert_allclose(up.d, base.d, atol=1e-9)  # unique fixed point: order irrelevant
    single = entropy_landscape(model, ref, LandscapeConfig(**COARSE, both_directions=False))
    assert np.isnan(single.d[1]).all() and not single.converged[1].any()
    assert set(single.to_frame()["direction"]) == {"down"}
    assert math.isnan(single.summary().max_hysteresis)
    # unconverged points are flagged and excluded from the summary
    bad = entropy_landscape(model, ref, LandscapeConfig(**COARSE, bp=BetheConfig(max_iter=1)))
    assert not bad.converged.any()
    s = bad.summary()
    assert s.n_unconverged == 2 * 17 and math.isnan(s.mean_gap) and math.isnan(s.d_at_zero)


def test_summary_on_hand_made_curves():
    cfg = LandscapeConfig(x_min=-0.1, x_max=0.1, x_step=0.05, jump_threshold=0.3)
    x = cfg.grid
    d = np.array([[0.9, 0.85, 0.2, 0.15, 0.1], [0.9, 0.85, 0.8, 0.15, 0.1]])
    s = binary_entropy(d) - np.array([[0.01] * 5, [0.02] * 5])
    conv = np.ones((2, 5), dtype=bool)
    conv[0, 4] = False  # x = 0.1 on the downward sweep did not converge
    nan = np.full((2, 5), np.nan)
    r = LandscapeResult(x, d, 1 - 2 * d, s, nan, nan, nan, conv, np.ones((2, 5), int),
                        np.ones(3, np.int8), cfg)  # fmt: skip
    summ = r.summary()
    assert summ.d_at_zero == 0.2
    assert math.isclose(summ.max_jump, 0.65) and summ.max_jump_x == (x[2], x[1])
    assert r.jumps("down") == [(x[2], x[1], pytest.approx(0.65))]
    assert math.isclose(summ.max_jump_up, 0.65) and summ.max_jump_up_x == (x[2], x[3])
    assert math.isclose(summ.max_hysteresis, 0.6) and summ.max_hysteresis_x == x[2]
    assert math.isclose(summ.hysteresis_area, 0.6 * 0.05)  # only x = 0 differs
    assert math.isclose(summ.mean_gap, 0.01) and summ.n_unconverged == 1
    assert summ.has_jump and summ.has_hysteresis and summ.n_jumps == 1
    frame = r.to_frame()
    assert len(frame) == 10 and np.allclose(frame["gap"], np.r_[[0.01] * 5, [0.02] * 5])


def test_a_jump_across_an_unconverged_point_is_reported():
    # Where BP gives up at the point of a jump (often where the branch it followed ends), the
    # step between the converged points on either side spans it and is still a jump.
    cfg = LandscapeConfig(x_min=-0.1, x_max=0.1, x_step=0.05, jump_threshold=0.3)
    x = cfg.grid
    d = np.array([[0.95, 0.9, 0.5, 0.15, 0.1], [0.95, 0.9, 0.5, 0.15, 0.1]])
    conv = np.ones((2, 5), dtype=bool)
    conv[:, 2] = False  # x = 0: neither sweep converged
    nan = np.full((2, 5), np.nan)
    r = LandscapeResult(x, d, 1 - 2 * d, nan, nan, nan, nan, conv, np.ones((2, 5), int),
                        np.ones(3, np.int8), cfg)  # fmt: skip
    summ = r.summary()
    assert r.jumps("down") == [(x[3], x[1], pytest.approx(0.75))]
    assert summ.has_jump and summ.n_jumps == 1 and summ.max_jump_x == (x[3], x[1])
    assert math.isclose(summ.max_jump_up, 0.75) and summ.max_jump_up_x == (x[1], x[3])
    assert math.isnan(summ.d_at_zero) and summ.n_unconverged == 2


def test_summary_of_an_upward_sweep_alone():
    # first_sweep="up", both_directions=False: the summary's main-sweep numbers are the upward
    # sweep's (the downward row is empty), and the mean gap falls back to it.
    cfg = LandscapeConfig(x_min=-0.1, x_max=0.1, x_step=0.05, jump_threshold=0.3,
                          first_sweep="up", both_directions=False)  # fmt: skip
    assert cfg.sweeps == ("up",)
    x = cfg.grid
    d = np.array([[np.nan] * 5, [0.9, 0.85, 0.2, 0.15, 0.1]])
    s = binary_entropy(np.nan_to_num(d)) - 0.02
    conv = np.array([[False] * 5, [True] * 5])
    nan = np.full((2, 5), np.nan)
    r = LandscapeResult(x, d, 1 - 2 * d, s, nan, nan, nan, conv, np.ones((2, 5), int),
                        np.ones(3, np.int8), cfg)  # fmt: skip
    summ = r.summary()
    assert summ.d_at_zero == 0.2 and summ.n_jumps == 1 and summ.has_jump
    assert math.isclose(summ.max_jump, 0.65) and summ.max_jump_x == (x[1], x[2])
    assert summ.max_jump_up == summ.max_jump and math.isclose(summ.mean_gap, 0.02)
    assert math.isnan(summ.max_hysteresis) and not summ.has_hysteresis
    assert summ.n_unconverged == 0  # only the swept direction counts


def test_scan_windows_merge_overlapping_and_touching_intervals():
    """Windows: the largest step of each sweep and the largest hysteresis, ± margin; windows
    that touch merge, so every coarse step inside the scan's windows is refined."""
    from weightscape.maxent._landscape import _scan_windows

    cfg = LandscapeConfig(x_min=-0.5, x_max=0.5, x_step=0.05)
    x = cfg.grid  # 21 points, x[10] = 0

    def result(down_step, up_step, hyst_at):
        d = np.tile(0.5 - 0.01 * x, (2, 1))  # smooth, small steps
        d[0, : down_step + 1] += 0.2  # down sweep: largest step between down_step, +1
        d[1, up_step + 1 :] -= 0.2  # up sweep: between up_step, up_step + 1
        d[0, hyst_at] += 0.05  # largest |d_down - d_up| at hyst_at
        conv = np.ones((2, len(x)), dtype=bool)
        nan = np.full(d.shape, np.nan)
        return LandscapeResult(x, d, 1 - 2 * d, nan, nan, nan, nan, conv,
                               np.ones(d.shape, int), np.ones(3, np.int8), cfg)  # fmt: skip

    # down step 3-4, up step 15-16, largest hysteresis at 18 (0.25 there, 0.2 elsewhere off
    # the middle)
    r = result(3, 15, 18)
    assert _scan_windows(r, 1) == [(2, 5), (14, 19)]  # 3-4 ±1; 15-16 ±1 and 18 ±1 overlap
    # touching: (2, 5) and (6, 9) become one window
    r = result(3, 7, 0)
    assert _scan_windows(r, 1) == [(0, 9)]
    # margins are clipped to the grid
    assert _scan_windows(result(0, 19, 20), 2)[0][0] == 0
    assert _scan_windows(result(0, 19, 20), 2)[-1][1] == 20


def test_iso_energy_holds_the_energy_analytic_case():
    """J = 0: e0(β, x) = -(1/N) Σ h_i tanh(β h_i + x σ*_i); β from BP vs a scalar root."""
    h = np.array([0.5, -0.2, 0.9, 0.3, -0.7, 0.1])
    model = IsingModel.from_couplings(np.zeros((6, 6)), h)
    ref = np.array([1, -1, 1, 1, -1, -1])
    target = -0.3
    cfg = IsoEnergyConfig(
        landscape=LandscapeConfig(x_min=-1.0, x_max=1.0, x_step=0.5, bp=TIGHT_BP),
        target_energy=target,
        energy_tol=1e-12,
    )
    res = iso_energy_landscape(model, ref, cfg)
    for k, x in enumerate(res.x):

        def e0(b, x=x):
            return -np.mean(h * np.tanh(b * h + x * ref)) - target

        if e0(1e-3) * e0(50.0) > 0:  # no β in the bounds holds the target: flagged (x = 1)
            assert not res.converged[k]
            continue
        assert res.converged[k]
        beta = optimize.brentq(e0, 1e-3, 50, xtol=1e-14)
        assert abs(res.beta[k] - beta) < 1e-8
        assert abs(res.e0[k] - target) < 1e-12
        a = beta * h + x * ref
        assert abs(res.s[k] - np.mean(np.log(2 * np.cosh(a)) - a * np.tanh(a))) < 1e-9
    assert res.converged.sum() == 4
    # default target: the reference's own energy per spin
    default = iso_energy_landscape(model, ref, IsoEnergyConfig(landscape=cfg.landscape))
    assert math.isclose(default.target, -float(h @ ref) / 6)


def test_iso_energy_checks_the_last_secant_step():
    # J = 0 (closed form e0(β, x)): the converged flag is |e0 - target| <= energy_tol at the β
    # returned, also when the last allowed secant step is the one that got there.
    h = np.array([0.5, -0.2, 0.9, 0.3, -0.7, 0.1])
    model = IsingModel.from_couplings(np.zeros((6, 6)), h)
    ref = np.array([1, -1, 1, 1, -1, -1])
    lcfg = LandscapeConfig(x_min=-0.5, x_max=0.5, x_step=0.5, bp=TIGHT_BP)
    seen = set()
    for max_secant in (1, 2, 3, 4):
        cfg = IsoEnergyConfig(landscape=lcfg, target_energy=-0.3, energy_tol=1e-3,
                              max_secant=max_secant)  # fmt: skip
        res = iso_energy_landscape(model, ref, cfg)
        for k, x in enumerate(res.x):
            err = abs(-np.mean(h * np.tanh(res.beta[k] * h + x * ref)) + 0.3)
            assert res.converged[k] == (err <= 1e-3)
            seen.add(bool(res.converged[k]))
    assert seen == {True, False}


def test_figures_leave_unconverged_points_out_of_the_curves():
    model, xi = planted(16, 2.0)
    good = entropy_landscape(model, xi, LandscapeConfig(**COARSE))
    # one sweep per x: no point converges (with two, the saturated ends x = ±2 already do)
    bad = entropy_landscape(model, xi, LandscapeConfig(**COARSE, bp=BetheConfig(max_iter=1)))
    assert not bad.converged.any()
    fig = plot_entropy_landscape([good, bad], ["good", "bad"], direction="both")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    curves = [ln for ln in ax.lines if ln.get_label().startswith("bad (")]
    assert len(curves) == 2 and all(np.isnan(ln.get_ydata()).all() for ln in curves)
    assert any(ln.get_label() == "BP not converged" for ln in ax.lines)
    fig2 = plot_d_of_x({"good": good})
    assert len([ln for ln in fig2.axes[0].lines if ln.get_label().startswith("good")]) == 2
    with pytest.raises(ConfigError, match="labels"):
        plot_d_of_x([good], ["a", "b"])


def test_scan_columns_largest_step_ignores_a_missing_sweep():
    # fine_largest_step is the larger of the two sweeps' largest fine steps; a sweep without
    # any (NaN) does not decide it, wherever it stands.
    from weightscape.maxent._landscape import HysteresisScan

    def scan(largest):
        e = np.zeros(0)
        return HysteresisScan(e, e, e, e, [], 0.01, math.nan, math.nan, (math.nan, math.nan),
                              False, largest, math.nan, 0)  # fmt: skip

    assert scan((math.nan, 0.3)).columns()["fine_largest_step"] == 0.3
    assert scan((0.3, math.nan)).columns()["fine_largest_step"] == 0.3
    assert scan((0.2, 0.3)).columns()["fine_largest_step"] == 0.3
    assert math.isnan(scan((math.nan, math.nan)).columns()["fine_largest_step"])


def test_bp_fixed_points_validation():
    model, xi = planted(6, 0.5)
    with pytest.raises(ConfigError, match="x=nan must be a finite number"):
        bp_fixed_points(model, x=math.nan, reference=xi)
    with pytest.raises(DatasetError, match="reference has 2 rows"):
        bp_fixed_points(model, x=0.5, reference=np.vstack([xi, xi]))


def test_d_at_zero_needs_zero_on_the_grid_and_the_grid_is_bounded():
    model = random_model(6, 0.1, 0.3, seed=1)
    ref = np.ones(6)
    off = entropy_landscape(model, ref, LandscapeConfig(x_min=1.0, x_max=3.0, x_step=0.5))
    assert math.isnan(off.summary().d_at_zero)  # was d at x = 1, printed as d(0)
    on = entropy_landscape(model, ref, LandscapeConfig(x_min=-1.0, x_max=1.0, x_step=0.5))
    assert on.summary().d_at_zero == on.d[0, 2] and on.x[2] == 0.0
    with pytest.raises(ConfigError, match="at most 100,000 are allowed"):
        LandscapeConfig(x_step=1e-9)


def test_validation():
    with pytest.raises(ConfigError, match="x_step"):
        LandscapeConfig(x_step=0.07)
    with pytest.raises(ConfigError, match="x_max"):
        LandscapeConfig(x_min=1.0, x_max=0.0)
    with pytest.raises(ConfigError, match="first_sweep"):
        LandscapeConfig(first_sweep="sideways")
    with pytest.raises(ConfigError, match="gap_average"):
        LandscapeConfig(gap_average="all")
    with pytest.raises(ConfigError, match="beta_bounds"):
        IsoEnergyConfig(beta_bounds=(-1.0, 5.0))
    model = IsingModel.zeros(4)
    with pytest.raises(DatasetError, match="references"):
        entropy_landscapes(model, np.ones((2, 5)))
    with pytest.raises(DatasetError, match="-1 and \\+1"):
        entropy_landscape(model, np.array([1, 0, 1, 1]))
    with pytest.raises(ConfigError, match="reference"):
        bp_fixed_points(model, x=0.5)


def _live_message_buffers(monkeypatch, model, refs, cfg):
    """Run entropy_landscapes, recording before every BP solve how many distinct [b, N, N]
    message buffers the sweep has handed to a solve (starts) or got back (solutions) are alive."""
    import weakref

    from weightscape.maxent import _landscape

    seen, counts, solve = [], [], _landscape._solve

    def spy(kern, ws, h, config, M, batched, damping=None):
        seen.append(weakref.ref(M))
        counts.append(len({id(t) for t in (r() for r in seen) if t is not None}))
        out = solve(kern, ws, h, config, M, batched, damping)
        seen.append(weakref.ref(out[0]))
        return out

    monkeypatch.setattr(_landscape, "_solve", spy)
    return entropy_landscapes(model, refs, cfg), counts


def test_landscape_sweep_keeps_a_bounded_number_of_message_buffers(monkeypatch):
    """References whose BP stops at different sweeps get a fresh solution buffer at each tilt;
    the freed ones must not pile up (they did: 6 GB at N = 675 on the maxent paper scale), and
    how many are kept for reuse changes no number (bit-identical to keeping them all)."""
    from weightscape.maxent import _landscape

    model = random_model(12, 0.3, 0.3, seed=5)
    refs = np.random.default_rng(2).choice([-1, 1], (4, 12))
    cfg = LandscapeConfig(**COARSE)
    res, counts = _live_message_buffers(monkeypatch, model, refs, cfg)
    # the sweep's history (predictor depth), the spare buffers and the start of this solve
    depth = _landscape.PREDICTORS.index(cfg.predictor) + 1
    assert max(counts) <= depth + _landscape.MAX_SPARE_BUFFERS + 1
    monkeypatch.setattr(_landscape, "MAX_SPARE_BUFFERS", 10**9)  # the old code: keep them all
    old, old_counts = _live_message_buffers(monkeypatch, model, refs, cfg)
    assert max(old_counts) > 2 * (depth + 2)  # the case piles buffers up when nothing is freed
    for a, b in zip(res, old, strict=True):
        for name in ("d", "s", "free_entropy", "energy", "converged", "iterations"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("x", [0.0, 0.3])
def test_bp_fixed_points_are_bethe_solve_of_the_random_starts(x):
    """bp_fixed_points solves its random messages in place (no copies of [n_starts, N, N]
    arrays): the same fixed points bit for bit as bethe_solve on messages made as
    init_scale · (2 r - 1) from the same generator (the previous construction)."""
    from weightscape.maxent import bethe_solve
    from weightscape.maxent._landscape import _distinct

    model, xi = planted(n=30, j0=3.0, seed=2)  # starts stop at different sweeps
    cfg, seed, starts, scale = BetheConfig(tol=1e-10), 4, 10, 0.7
    fp = bp_fixed_points(model, n_starts=starts, x=x, reference=xi, config=cfg, seed=seed,
                         init_scale=scale)  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    M0 = scale * (2.0 * torch.rand(starts, 30, 30, generator=g, dtype=torch.float64) - 1.0)
    h = model.h + x * torch.as_tensor(xi)
    _, res, _ = bethe_solve(model, cfg, M0.clamp_(-1.0, 1.0), fields=h.expand(starts, 30))
    conv = res.converged.numpy()
    assert fp.n_converged == conv.sum() > 0 and len(set(res.iterations.tolist())) > 1
    m, fe = res.m.numpy()[conv], res.free_entropy.numpy()[conv]
    labels, reps = _distinct(m, 1e-4)
    order = np.argsort(-fe[reps], kind="stable")
    np.testing.assert_array_equal(fp.m, m[reps[order]])
    np.testing.assert_array_equal(fp.free_entropy, fe[reps[order]])
    np.testing.assert_array_equal(fp.counts, np.bincount(labels)[order])
