"""Dense BP: exact on trees and for independent spins; damping/warm start keep the fixed point;
Anderson mixing: same fixed points, GMRES on linear maps, hand-computed safeguard."""

import numpy as np
import pytest
import torch

from weightscape.errors import ConfigError
from weightscape.maxent import BPConfig, IsingModel, bp_solve, exact_moments

from .conftest import random_model, tree_model

# BP converged to residual 1e-13 on a tree: marginals exact to ~1e-12 (messages to round-off).
TREE_TOL = 1e-10
TIGHT = BPConfig(damping=0.0, tol=1e-13, max_iter=500)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_on_trees(seed):
    model, edges = tree_model(10, seed)
    _, res, trace = bp_solve(model, TIGHT)
    ex = exact_moments(model)
    assert res.converged and trace[-1] < 1e-13
    np.testing.assert_allclose(res.m, ex.m, atol=TREE_TOL)
    for i, j in edges:
        assert abs(float(res.C[i, j] - ex.C[i, j])) < TREE_TOL
        assert float(res.C[i, j]) == float(res.C[j, i])
    # Undamped BP on a tree converges in at most diameter + 1 sweeps (< N + 1).
    assert res.iterations <= 11


def test_independent_spins_and_shapes():
    h = torch.tensor([0.1, -0.7, 1.5], dtype=torch.float64)
    model = IsingModel(torch.zeros(3, 3, dtype=torch.float64), h)
    msgs, res, trace = bp_solve(model, TIGHT)
    assert msgs.shape == (3, 3) and res.C.shape == (3, 3) and trace.dtype == torch.float64
    np.testing.assert_allclose(res.m, torch.tanh(h), atol=1e-15)
    np.testing.assert_allclose(res.connected - torch.diag(1 - torch.tanh(h) ** 2), 0, atol=1e-15)


def test_damping_and_warm_start_share_the_fixed_point():
    model = random_model(12, 0.1, 0.5, seed=4)
    m0, r0, _ = bp_solve(model, TIGHT)
    m1, r1, _ = bp_solve(model, BPConfig(damping=0.5, tol=1e-13, max_iter=2000))
    assert r0.converged and r1.converged
    # both at residual < 1e-13 of the same contraction: messages agree to ~1e-12.
    np.testing.assert_allclose(m1, m0, atol=1e-11)
    np.testing.assert_allclose(r1.C, r0.C, atol=1e-11)
    # damping 0.5 halves each step: it needs more sweeps than undamped BP
    assert r1.iterations > r0.iterations
    _, r2, t2 = bp_solve(model, TIGHT, messages=m0)
    assert r2.iterations == 1 and t2[0] < 1e-13
    # the tilted model solved from the untilted messages
    ref = torch.ones(12, dtype=torch.float64)
    _, rt, _ = bp_solve(model.tilted(0.3, ref), TIGHT, messages=m0)
    _, rt0, _ = bp_solve(model.tilted(0.3, ref), TIGHT)
    np.testing.assert_allclose(rt.m, rt0.m, atol=1e-11)
    assert float((rt.m - r0.m).min()) > 0  # a positive tilt raises every magnetisation


def test_weak_coupling_error_is_second_order():
    """On a dense graph BP misses loop corrections: C_ij error O(β²) for couplings of scale β."""
    errs = []
    betas = [0.025, 0.05, 0.1]
    for b in betas:
        model = random_model(8, b, 0.3, seed=5, field_mean=0.4)
        _, res, _ = bp_solve(model, TIGHT)
        ex = exact_moments(model)
        errs.append(float((res.C - ex.C).abs().max()))
    slope = np.polyfit(np.log(betas), np.log(errs), 1)[0]
    # expected slope 2 (first neglected term ∝ Σ_k J_ik J_kj); ±0.3 covers higher-order terms
    assert 1.7 < slope < 2.3, (slope, errs)


def test_config_validation_and_bad_messages():
    with pytest.raises(ConfigError, match="damping"):
        BPConfig(damping=1.0)
    with pytest.raises(ConfigError, match="tol"):
        BPConfig(tol=0)
    with pytest.raises(ConfigError, match="max_iter"):
        BPConfig(max_iter=2.5)
    with pytest.raises(ConfigError, match="accel"):
        BPConfig(accel="broyden")
    with pytest.raises(ConfigError, match="history"):
        BPConfig(accel="anderson", history=0)
    with pytest.raises(ConfigError, match="messages"):
        bp_solve(IsingModel.zeros(3), messages=torch.zeros(2, 2))


# ----------------------------------------------------------------------- Anderson mixing

ANDERSON = BPConfig(damping=0.5, tol=1e-13, max_iter=3000, accel="anderson")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_anderson_same_fixed_point_as_damped_bp(seed):
    """Dense random models: Anderson mixing stops at the fixed point of the damped iteration
    (both at residual < 1e-13 of the same map: messages agree to ~1e-12)."""
    model = random_model(30, 0.15, 0.4, seed=seed)
    M0, r0, _ = bp_solve(model, BPConfig(damping=0.5, tol=1e-13, max_iter=3000))
    M1, r1, trace = bp_solve(model, ANDERSON)
    assert r0.converged and r1.converged and trace[-1] < 1e-13
    np.testing.assert_allclose(M1, M0, atol=1e-11, rtol=0)
    np.testing.assert_allclose(r1.m, r0.m, atol=1e-11, rtol=0)
    np.testing.assert_allclose(r1.C, r0.C, atol=1e-11, rtol=0)
    assert r1.iterations < r0.iterations


@pytest.mark.parametrize("seed", [0, 1])
def test_anderson_exact_on_trees(seed):
    model, edges = tree_model(10, seed)
    _, res, _ = bp_solve(model, ANDERSON)
    ex = exact_moments(model)
    assert res.converged
    np.testing.assert_allclose(res.m, ex.m, atol=TREE_TOL)
    for i, j in edges:
        assert abs(float(res.C[i, j] - ex.C[i, j])) < TREE_TOL


def test_anderson_mixer_solves_linear_maps_like_gmres():
    """On a linear map F(x) = A x + b of dimension p, Anderson mixing with p differences is
    GMRES in disguise and lands on the solution of (I - A) x = b (numpy.linalg.solve) after
    p + 1 steps, even where the plain iteration diverges (spectral radius of A = 1.6). The
    safeguard is switched off by passing norms that never grow."""
    from weightscape.maxent._bp import AndersonMixer

    p = 6
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(p, p)))
    A = Q @ np.diag([1.6, -1.2, 0.9, 0.5, -0.3, 0.1]) @ Q.T
    b = rng.normal(size=p)
    x_star = np.linalg.solve(np.eye(p) - A, b)
    At, bt = torch.from_numpy(A), torch.from_numpy(b)
    x = torch.zeros(1, p, dtype=torch.float64)
    mixer = AndersonMixer(1, p, p, torch.float64, "cpu", bounds=None)
    errs = []
    for k in range(p + 3):
        r = (x @ At.T + bt) - x
        errs.append(float((x[0] - torch.from_numpy(x_star)).abs().max()))
        mixer.step(x, r, np.array([1.0 / (k + 1)]), 0.5, np.array([False]))
    # step p + 1: exact up to the normal equations' precision (cond² ε ≈ 1e-8 here); one more
    # step with the same differences: round-off
    scale = np.abs(x_star).max()
    assert errs[p + 1] < 1e-6 * scale and errs[p + 2] < 1e-12 * scale, errs
    assert mixer.restarts[0] == 0


def test_anderson_safeguard_hand_computed():
    """Scalar F(x) = -2x from x = 1, one difference kept: step to F(1) = -2 (no history); the
    residual grew (|6| > |-3|): damped step (d = 0.5) back to 1, history dropped; then
    ANDERSON_COOLDOWN = 3 damped steps that lower the residual (1 → -0.5 → 0.25 → -0.125),
    then one mixed step, exact on a linear scalar map: F(x) - ΔF·ΔR·r/ΔR² = 0 (all steps are
    exact binary fractions)."""
    from weightscape.maxent._bp import ANDERSON_COOLDOWN, AndersonMixer

    assert ANDERSON_COOLDOWN == 3
    x = torch.ones(1, 1, dtype=torch.float64)
    mixer = AndersonMixer(1, 1, 1, torch.float64, "cpu", bounds=None)
    xs, fallbacks = [1.0], []
    for _ in range(6):
        r = -2.0 * x - x
        fallbacks.append(bool(mixer.step(x, r, r.abs()[:, 0].numpy(), 0.5, np.array([False]))[0]))
        xs.append(float(x))
    assert xs[:6] == [1.0, -2.0, 1.0, -0.5, 0.25, -0.125]
    assert fallbacks[:5] == [False, True, True, True, True]
    # exact but for the Tikhonov term (1e-10 of the Gram diagonal): |x| ≈ 1e-10 · 0.25
    assert abs(xs[6]) < 1e-10 and not fallbacks[5]
    assert mixer.restarts[0] == 1


def test_anderson_in_bethe_solve_batched_equals_bp_solve():
    """bethe_solve(accel="anderson"): every batch element stops on its own at the fixed point of
    bp_solve (damped) for its fields; batching does not change the result."""
    from weightscape.maxent import BetheConfig, bethe_solve

    model = random_model(20, 0.15, 0.4, seed=9)
    fields = model.h[None, :] + torch.linspace(-1.0, 1.0, 4, dtype=torch.float64)[:, None]
    cfg = BetheConfig(tol=1e-13, criterion="max_residual", max_iter=3000, accel="anderson")
    M, res, trace = bethe_solve(model, cfg, fields=fields)
    assert bool(res.converged.all()) and trace.shape[1] == 4
    for b in range(4):
        one = IsingModel(model.J, fields[b])
        Mb, rb, _ = bp_solve(one, BPConfig(damping=0.5, tol=1e-13, max_iter=3000))
        np.testing.assert_allclose(M[b], Mb, atol=1e-11, rtol=0)
        np.testing.assert_allclose(res.m[b], rb.m, atol=1e-11, rtol=0)
        Ms, rs, _ = bethe_solve(model, cfg, fields=fields[b])
        np.testing.assert_allclose(Ms, M[b], atol=1e-12, rtol=0)
        assert int(rs.iterations[0]) == int(res.iterations[b])


def test_anderson_gives_up_mixing_after_repeated_restarts():
    """After ANDERSON_MAX_RESTARTS residual increases in one solve an element takes the damped
    step for good (driven here with norms that grow at every other step on F(x) = 0.5 x: the
    steps are then exactly the damped iteration x ← x + (1 - d)(F(x) - x) = 0.75 x)."""
    from weightscape.maxent._bp import ANDERSON_MAX_RESTARTS, AndersonMixer

    x = torch.ones(1, 1, dtype=torch.float64)
    mixer = AndersonMixer(1, 1, 2, torch.float64, "cpu", bounds=None)
    flags = []
    for k in range(4 * ANDERSON_MAX_RESTARTS):
        r = 0.5 * x - x
        norm = np.array([2.0 if k % 2 else 1.0])  # "grew" at every odd step
        before = float(x)
        flags.append(bool(mixer.step(x, r, norm, 0.5, np.array([False]))[0]))
        if mixer.restarts[0] >= ANDERSON_MAX_RESTARTS:
            assert flags[-1] and float(x) == 0.75 * before
    assert mixer.restarts[0] >= ANDERSON_MAX_RESTARTS and all(flags[2 * ANDERSON_MAX_RESTARTS :])


def test_adaptive_anderson_is_adaptive_on_fast_contractions():
    """accel="adaptive+anderson" mixes only after ANDERSON_ENGAGE_SWEEPS sweeps in a row that
    lowered the criterion by less than ANDERSON_ENGAGE_RATIO: on weak couplings (every sweep
    divides the residual by > 10) it is the adaptive scheme, sweep for sweep; with one slow real
    mode it reaches the fixed point of damped bp_solve in far fewer sweeps than adaptive damping."""
    from weightscape.maxent import BetheConfig, bethe_solve

    weak = random_model(25, 0.02, 0.4, seed=3)
    cfg = {"tol": 1e-13, "criterion": "max_residual", "max_iter": 3000}
    Ma, ra, ta = bethe_solve(weak, BetheConfig(**cfg, accel="adaptive"))
    Mh, rh, th = bethe_solve(weak, BetheConfig(**cfg, accel="adaptive+anderson"))
    assert bool(ra.converged[0]) and float((ta[1:, 0] / ta[:-1, 0]).max()) < 0.9
    assert torch.equal(Ma, Mh) and torch.equal(ta, th)
    # one pattern just below the ordering threshold (J0 = 0.95) plus noise: one slow real mode
    rng = np.random.default_rng(0)
    xi = rng.choice([-1.0, 1.0], 30)
    J = 0.95 / 30 * np.outer(xi, xi) + rng.normal(0, 0.05, (30, 30))
    slow = IsingModel.from_couplings((J + J.T) / 2, rng.normal(0, 0.05, 30))
    M0, r0, _ = bp_solve(slow, BPConfig(damping=0.5, tol=1e-13, max_iter=3000))
    _, ra, _ = bethe_solve(slow, BetheConfig(**cfg, accel="adaptive"))
    Mh, rh, _ = bethe_solve(slow, BetheConfig(**cfg, accel="adaptive+anderson"))
    assert r0.converged and bool(rh.converged[0])
    np.testing.assert_allclose(Mh, M0, atol=1e-11, rtol=0)
    assert 3 * int(rh.iterations[0]) < int(ra.iterations[0])  # 30 vs 284 sweeps


def test_anderson_gram_matches_its_differences_through_a_restart():
    """Dense oracle for the mixer's bookkeeping: after every step, each element's Gram matrix on
    its filled columns equals ΔRᵀΔR recomputed from the stored differences — also for the
    differences it collects while cooling down after a restart (it mixes with them later).
    Driven on F(x) = A x + b with norms that grow once (step 4), history 3, two elements, one
    of them frozen for the first steps. The buffers start as NaN (uninitialised memory made
    visible): a Gram entry never computed would show."""
    from weightscape.maxent._bp import AndersonMixer

    p = 5
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.normal(size=(p, p)))
    A = torch.from_numpy(Q @ np.diag([0.9, -0.7, 0.5, 0.3, -0.2]) @ Q.T)
    b = torch.from_numpy(rng.normal(size=p))
    mixer = AndersonMixer(2, p, 3, torch.float64, "cpu", bounds=None)
    for buf in (mixer.dR, mixer.dF, mixer.r_prev, mixer.f_prev):
        buf.fill_(float("nan"))
    x = torch.zeros(2, p, dtype=torch.float64)
    mixed_after_restart = False
    for k in range(14):
        r = x @ A.T + b - x
        norms = torch.linalg.vector_norm(r, dim=1).numpy() * (1e3 if k == 4 else 1.0)
        fallback = mixer.step(x, r, norms, 0.5, np.array([False, k < 2]))
        mixed_after_restart |= k > 4 + 3 and not fallback[0]
        assert torch.isfinite(x).all(), k
        for e in range(2):
            cols = np.flatnonzero(mixer.filled[e])
            D = mixer.dR[e, cols].numpy()
            np.testing.assert_allclose(mixer.gram[e][np.ix_(cols, cols)], D @ D.T, rtol=1e-12)
    assert mixer.restarts[0] == 1 and mixed_after_restart


def _bp_step_loops(J, h, M):
    """One undamped BP sweep by explicit loops (numpy): ``M'[i, j] = tanh(h_i + Σ_{k≠i,j}
    atanh(tanh J_ki M[k, i]))``."""
    n = len(h)
    new = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                u = sum(np.arctanh(np.tanh(J[k, i]) * M[k, i]) for k in range(n) if k not in (i, j))
                new[i, j] = np.tanh(h[i] + u)
    return new


@pytest.mark.parametrize("damping", [0.0, 0.5])
def test_convergence_criteria_of_bp_solve(damping):
    """The trace holds the configured criterion of each sweep (oracle: a loop-by-loop sweep from
    the same messages): max|R|, (1 − d) max|R| and (1 − d) mean|R| over the N² entries."""
    model = random_model(6, 0.3, 0.5, seed=2)
    J, h = model.J.numpy(), model.h.numpy()
    rng = np.random.default_rng(0)
    M0 = rng.uniform(-0.5, 0.5, (6, 6))
    np.fill_diagonal(M0, 0.0)
    R = np.abs(_bp_step_loops(J, h, M0) - M0)
    want = {"max_residual": R.max(), "max_change": (1 - damping) * R.max(),
            "mean_change": (1 - damping) * R.mean()}  # fmt: skip
    for crit, value in want.items():
        cfg = BPConfig(damping=damping, tol=1e-300, max_iter=1, criterion=crit)
        _, res, trace = bp_solve(model, cfg, messages=torch.tensor(M0))
        assert not res.converged and abs(float(trace[0]) - value) < 1e-14
    # the mean is at most the max: at one tolerance the mean test stops no later, at the same
    # fixed point within the tolerance
    _, r_max, _ = bp_solve(model, BPConfig(damping=damping, tol=1e-8, max_iter=500))
    _, r_mean, _ = bp_solve(model, BPConfig(damping=damping, tol=1e-8, max_iter=500,
                                            criterion="mean_change"))  # fmt: skip
    assert r_max.converged and r_mean.converged and r_mean.iterations <= r_max.iterations
    np.testing.assert_allclose(r_mean.m, r_max.m, atol=1e-6)
    with pytest.raises(ConfigError, match="criterion='rms'"):
        BPConfig(criterion="rms")
