"""Monte Carlo entropy landscape: oracles are exact enumeration of the tilted model (d, the free
entropy and the entropy at every tilt), the closed form of independent spins, and a planted
two-cluster model (known broken landscape) against a weakly coupled one (known connected).

Statistical tolerances: d is tested with one aggregate chi-square over every (sweep, tilt) point
against its between-chain standard error (seeded, so deterministic; the bound is the 1 - 1e-4
quantile). The free entropy and entropy carry the integration's discretisation error as well as
noise, so they get an absolute tolerance stated at each test.
"""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from weightscape.errors import ConfigError, DatasetError
from weightscape.maxent import (
    IsingModel,
    LandscapeResult,
    MCLandscapeConfig,
    MCLandscapeResult,
    confirm_hysteresis,
    exact_log_partition,
    exact_moments,
    mc_entropy_landscape,
    mc_entropy_landscapes,
)

from .conftest import random_model

# A landscape of 5 tilts with few chains and sweeps: for tests of shapes, files and arguments.
TINY = {"x_min": -0.4, "x_max": 0.4, "x_step": 0.2, "n_chains": 8, "sweeps_per_x": 10,
        "measure_sweeps": 4, "anneal_steps": 4, "anneal_sweeps": 4}  # fmt: skip


def exact_landscape(model, ref, xs):
    """Exact d, s and φ = ln Z / N of the tilted model at each x: arrays [K]."""
    n = model.n_spins
    r = torch.as_tensor(ref, dtype=torch.float64)
    d, s, phi = [], [], []
    for x in xs:
        t = model.tilted(float(x), r)
        ex = exact_moments(t)
        lz = float(exact_log_partition(t)) / n
        e = float(-(0.5 * (t.J * ex.C).sum() + t.h @ ex.m)) / n
        d.append(0.5 * (1 - float(ex.m @ r) / n))
        s.append(lz + e)
        phi.append(lz)
    return np.array(d), np.array(s), np.array(phi)


def planted(n=40, j0=2.0, seed=0):
    """Hopfield model with one pattern ξ (J = J0 ξξᵀ/N, h = 0): two clusters ±ξ for J0 > 1."""
    rng = np.random.default_rng(seed)
    xi = rng.choice([-1.0, 1.0], n)
    return IsingModel.from_couplings(j0 / n * np.outer(xi, xi), np.zeros(n)), xi


def chi2_ok(res, d_exact):
    z = (res.d - d_exact[None, :]) / res.d_se
    return float((z**2).sum()) < stats.chi2.ppf(1 - 1e-4, z.size), z


@pytest.mark.parametrize("seed", [0, 1])
def test_dense_model_equals_enumeration(seed):
    """N = 10 dense model (J std 0.3): d by chi-square; φ and s within 0.005 (noise of 2000
    chains at N = 10, about 0.0015 per point for s, plus the trapezoid rule at step 0.25)."""
    model = random_model(10, 0.3, seed=seed)
    ref = np.random.default_rng(seed).choice([-1, 1], 10)
    cfg = MCLandscapeConfig(
        x_min=-1.0, x_max=1.0, x_step=0.25, n_chains=2000, sweeps_per_x=60, measure_sweeps=40
    )
    res = mc_entropy_landscape(model, ref, cfg)
    d, s, phi = exact_landscape(model, ref, res.x)
    ok, z = chi2_ok(res, d)
    assert ok, z
    assert np.abs(res.free_entropy - phi[None]).max() < 0.005
    assert np.abs(res.s - s[None]).max() < 0.005
    np.testing.assert_allclose(res.e0, res.energy + res.x[None] * res.q)
    assert res.converged.all()
    summ = res.summary()
    assert not summ.has_hysteresis and summ.n_unconverged == 0


def test_independent_spins_sit_on_the_bound():
    """J = 0, h = 0: d = (1 - tanh x)/2 and s = H(d) = ln 2cosh x - x tanh x; 2000 chains of 7
    spins, step 0.1 on -3…3: |s - H| ≤ 0.004 (measured 0.0017)."""
    res = mc_entropy_landscape(IsingModel.zeros(7), np.ones(7), MCLandscapeConfig(n_chains=2000))
    x = res.x
    assert len(x) == 61
    ok, z = chi2_ok(res, (1 - np.tanh(x)) / 2)
    assert ok, z
    s_exact = np.log(2 * np.cosh(x)) - x * np.tanh(x)
    assert np.abs(res.s - s_exact[None]).max() < 0.004
    assert abs(res.summary().mean_gap) < 0.004  # H(d) - s(d) on the downward sweep
    assert not res.summary().has_hysteresis


def test_planted_two_clusters_show_the_loop_and_a_weak_model_none():
    """Planted Hopfield model (N = 40, J0 = 2): the downward chains keep the +ξ cluster past
    x = 0 and jump at x < 0, the upward ones jump back at x > 0; a significant loop around
    x = 0. A weakly coupled 60-spin model (J std 0.03) with the same schedule: no loop."""
    model, xi = planted()
    cfg = MCLandscapeConfig(x_min=-1.0, x_max=1.0, x_step=0.1)
    res = mc_entropy_landscape(model, xi, cfg)
    summ = res.summary()
    assert summ.has_hysteresis and summ.has_jump and res.converged.all()
    i0 = int(np.argmin(np.abs(res.x)))
    assert res.d[0, i0] < 0.1 and res.d[1, i0] > 0.9
    assert res.significant_hysteresis()[i0]
    x_hi, x_lo = summ.max_jump_x
    assert x_lo < x_hi < 0 and summ.max_jump_up_x[0] > 0

    weak = random_model(60, 0.03, seed=2)
    refs = np.random.default_rng(2).choice([-1, 1], (2, 60))
    for r in mc_entropy_landscapes(weak, refs, cfg):
        s = r.summary()
        assert not s.has_hysteresis and not s.has_jump and s.n_unconverged == 0
        assert s.max_hysteresis < 0.02


def test_threshold_alone_does_not_make_a_loop():
    """A difference above the threshold but within z standard errors is not hysteresis: the
    same planted result with inflated errors loses its loop."""
    model, xi = planted()
    res = mc_entropy_landscape(model, xi, MCLandscapeConfig(x_min=-0.5, x_max=0.5, x_step=0.1))
    assert res.summary().has_hysteresis
    noisy = MCLandscapeResult(**{**res.__dict__, "d_se": res.d_se + 1.0})
    assert not noisy.summary().has_hysteresis
    assert noisy.summary().max_hysteresis == res.summary().max_hysteresis


def test_unconverged_points_are_flagged():
    """Chains caught in the middle of a jump still drift during their records: planted model
    (N = 200, J0 = 1.3) with 12 sweeps per tilt (8 recorded). Only tilts next to a sweep's
    jump are flagged, and left out of the summary's jumps; with 100 sweeps per tilt none is."""
    model, xi = planted(n=200, j0=1.3)
    grid = {"x_min": -1.0, "x_max": 1.0, "x_step": 0.1, "entropy": False}
    res = mc_entropy_landscape(
        model, xi, MCLandscapeConfig(**grid, sweeps_per_x=12, measure_sweeps=8)
    )
    flagged = ~res.converged
    assert flagged.any() and np.isnan(res.s).all()
    for row in (0, 1):
        big = np.argmax(np.abs(np.diff(res.d[row])))  # the jump lies between big and big + 1
        for k in np.flatnonzero(flagged[row]):
            assert big - 1 <= k <= big + 2
    assert res.summary().n_unconverged == int(flagged.sum())
    slow = mc_entropy_landscape(model, xi, MCLandscapeConfig(**grid))
    assert slow.converged.all()


def test_result_is_a_landscape_result_and_frames():
    model = random_model(8, 0.2, seed=3)
    ref = np.ones(8)
    res = mc_entropy_landscape(model, ref, MCLandscapeConfig(**TINY))
    assert isinstance(res, LandscapeResult)
    frame = res.to_frame()
    assert len(frame) == 10 and {"d_se", "s", "converged"} <= set(frame.columns)
    down = frame[frame.direction == "down"]
    np.testing.assert_array_equal(down["d_se"].to_numpy(), res.d_se[0])
    assert (res.iterations == 10).all()


def test_deterministic_and_batches_independent_of_order():
    model = random_model(12, 0.2, seed=4)
    refs = np.random.default_rng(4).choice([-1, 1], (3, 12))
    cfg = MCLandscapeConfig(**TINY, seed=7)
    a = mc_entropy_landscapes(model, refs, cfg)
    b = mc_entropy_landscapes(model, refs, cfg)
    for r, s in zip(a, b, strict=True):
        np.testing.assert_array_equal(r.d, s.d)
        np.testing.assert_array_equal(r.s, s.s)
    c = mc_entropy_landscapes(model, refs, MCLandscapeConfig(**{**cfg.__dict__, "batch_size": 1}))
    assert len(c) == 3 and all((r.reference == refs[i]).all() for i, r in enumerate(c))
    # batches after the first do not repeat another seed's stream (seed + start did: the
    # second batch of seed 7 was the first of seed 8)
    other = mc_entropy_landscape(model, refs[1], MCLandscapeConfig(**{**cfg.__dict__, "seed": 8}))
    assert not np.array_equal(c[1].d, other.d, equal_nan=True)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"n_chains": 1}, "n_chains"),
        ({"measure_sweeps": 100}, "measure_sweeps"),
        ({"measure_sweeps": 7}, "even"),
        ({"anneal_steps": 3}, "anneal_steps"),
        ({"rule": "glauber"}, "rule"),
        ({"z": 0}, "z"),
        ({"hysteresis_threshold": math.inf}, "hysteresis_threshold"),
        ({"x_step": 0.07}, "x_step"),
        ({"seed": -1}, "seed"),
        ({"batch_size": 0}, "batch_size"),
        ({"entropy": "yes"}, "entropy"),
    ],
)
def test_bad_settings_one_line_errors(kwargs, word):
    with pytest.raises(ConfigError, match=word) as err:
        MCLandscapeConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_bad_references():
    model = random_model(5, 0.1)
    with pytest.raises(DatasetError, match="expected"):
        mc_entropy_landscape(model, np.ones(4))
    with pytest.raises(DatasetError, match="-1 and \\+1"):
        mc_entropy_landscape(model, np.zeros(5))
    with pytest.raises(DatasetError, match="mc_entropy_landscapes"):
        mc_entropy_landscape(model, np.ones((2, 5)))


def test_confirm_hysteresis_tells_a_barrier_from_a_lag():
    """Planted two clusters (N = 40, J0 = 2): the loop around x = 0 persists at 4x the sweeps.
    Curie-Weiss at its critical coupling (N = 200, J0 = 1) swept with 8 sweeps per tilt: slow
    chains lag behind the steep d(x) near x = 0 and leave a significant loop (measured 0.25)
    that drops below the test at 8x the sweeps (measured 0.002): one state, no barrier."""
    model, xi = planted()
    grid = {"x_min": -1.0, "x_max": 1.0, "entropy": False}
    res = mc_entropy_landscape(model, xi, MCLandscapeConfig(**grid))
    check = confirm_hysteresis(model, xi, res)
    assert check.persists and check.n_significant > 0 and check.max_hysteresis > 0.5
    lo, hi = check.window
    assert lo < 0 < hi and check.sweeps_per_x == 400
    assert check.result.config.sweeps_per_x == 400 and check.columns()["confirm_persists"]

    cw, ones = planted(n=200, j0=1.0)
    fast = mc_entropy_landscape(
        cw, ones, MCLandscapeConfig(**grid, sweeps_per_x=8, measure_sweeps=4)
    )
    assert fast.summary().has_hysteresis
    lag = confirm_hysteresis(cw, ones, fast, factor=8)
    assert not lag.persists and lag.n_significant == 0 and lag.max_hysteresis < 0.02


def test_confirm_hysteresis_without_a_loop_runs_nothing_and_checks_its_arguments():
    model = random_model(8, 0.1, seed=5)
    ref = np.ones(8)
    cfg = MCLandscapeConfig(**TINY)
    res = mc_entropy_landscape(model, ref, cfg)
    check = confirm_hysteresis(model, ref, res)
    assert not check.persists and check.result is None and math.isnan(check.max_hysteresis)
    for kwargs, word in (({"factor": 1}, "factor"), ({"margin": -1.0}, "margin")):
        with pytest.raises(ConfigError, match=word):
            confirm_hysteresis(model, ref, res, **kwargs)
    one = mc_entropy_landscape(
        model, ref, MCLandscapeConfig(**{**cfg.__dict__, "both_directions": False})
    )
    with pytest.raises(ConfigError, match="two-direction"):
        confirm_hysteresis(model, ref, one)
