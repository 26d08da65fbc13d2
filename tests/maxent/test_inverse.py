"""Inverse methods: exact recovery (exact learner, weighted pseudo-likelihood), weak-coupling orders
of the approximations (mean field O(β²), TAP O(β³), BP learning O(β²)), the pseudo-likelihood
objective vs an explicit loop and finite differences, L1 / L2 optimality conditions, reports."""

import numpy as np
import pytest
import torch

from weightscape.errors import ConfigError
from weightscape.maxent import (
    BoltzmannBP,
    BoltzmannBPConfig,
    BPConfig,
    ExactBoltzmann,
    FitResult,
    IsingModel,
    MeanFieldInversion,
    Moments,
    PseudoLikelihood,
    PseudoLikelihoodConfig,
    TAPInversion,
    all_states,
    exact_distribution,
    exact_moments,
    sample_moments,
)
from weightscape.maxent._moments import iter_chunks
from weightscape.maxent._pseudo import pseudo_likelihood_objective

from .conftest import random_model

# The brief's recovery tolerance; the Newton polish reaches ~1e-11 on these cases.
RECOVERY_TOL = 1e-6
RECOVERY_CASES = [(5, 0.5, 0), (8, 0.4, 1), (10, 0.3, 2)]


def _maxdiff(a: IsingModel, b: IsingModel) -> float:
    return max(float((a.J - b.J).abs().max()), float((a.h - b.h).abs().max()))


@pytest.mark.parametrize("n,beta,seed", RECOVERY_CASES)
def test_exact_boltzmann_recovers_parameters(n, beta, seed):
    truth = random_model(n, beta, 0.5, seed=seed)
    model, report = ExactBoltzmann().fit(exact_moments(truth))
    assert _maxdiff(model, truth) < RECOVERY_TOL
    assert report.converged and report.evaluated_by == "exact" and report.error < 1e-10


@pytest.mark.parametrize("n,beta,seed", RECOVERY_CASES)
def test_pseudo_likelihood_weighted_over_all_states_recovers_parameters(n, beta, seed):
    truth = random_model(n, beta, 0.5, seed=seed)
    model, report = PseudoLikelihood().fit(all_states(n), weights=exact_distribution(truth))
    assert _maxdiff(model, truth) < RECOVERY_TOL
    assert report.converged and report.error < 1e-10


def _pl_loop(X, w, J, h):
    """Negative pseudo-log-likelihood by explicit loops (independent of the vectorised code)."""
    total = 0.0
    S, n = X.shape
    for s in range(S):
        for r in range(n):
            F = h[r] + sum(J[r, j] * X[s, j] for j in range(n) if j != r)
            total += w[s] * np.log1p(np.exp(-2 * X[s, r] * F))
    return total


def test_pseudo_likelihood_objective_value_and_gradient():
    rng = np.random.default_rng(3)
    X = rng.choice([-1, 1], size=(12, 4)).astype(np.int8)
    w = np.full(12, 1 / 12)
    model = random_model(4, 0.5, 0.5, seed=9)
    J, h = model.J.numpy(), model.h.numpy()
    val, gJ, gh = pseudo_likelihood_objective(list(iter_chunks(X)), model.J, model.h)
    # a few dozen O(1) terms: agreement to round-off
    assert abs(float(val) - _pl_loop(X.astype(float), w, J, h)) < 1e-12
    eps = 1e-6  # central differences: truncation O(eps²) ~ 1e-12, round-off ~1e-10
    for i, j in [(0, 1), (1, 3), (2, 3)]:
        Jp, Jm = J.copy(), J.copy()
        Jp[i, j] += eps
        Jp[j, i] += eps
        Jm[i, j] -= eps
        Jm[j, i] -= eps
        fd = (_pl_loop(X, w, Jp, h) - _pl_loop(X, w, Jm, h)) / (2 * eps)
        assert abs(fd - float(gJ[i, j])) < 1e-8
    for r in range(4):
        hp, hm = h.copy(), h.copy()
        hp[r] += eps
        hm[r] -= eps
        fd = (_pl_loop(X, w, J, hp) - _pl_loop(X, w, J, hm)) / (2 * eps)
        assert abs(fd - float(gh[r])) < 1e-8


def _data(n=6, seed=4, S=400):
    truth = random_model(n, 0.4, 0.3, seed=seed)
    rng = np.random.default_rng(seed)
    p = exact_distribution(truth).numpy()
    idx = rng.choice(len(p), size=S, p=p / p.sum())
    return all_states(n).numpy()[idx]


def test_l1_zero_threshold_matches_kkt():
    """With L1, J = 0 is optimal iff λ₁ ≥ max |∂PL/∂J_ij| at (J = 0, h = atanh m)."""
    X = _data()
    xf = X.astype(float)
    m = xf.mean(0)
    h0 = np.arctanh(m)
    sig = 1 / (1 + np.exp(2 * xf * h0))  # sigmoid(-2 σ_r h_r)
    # d/dJ_ij of the mean PL at J = 0: -2 <σ_iσ_j [sigmoid(-2σ_i h_i) + sigmoid(-2σ_j h_j)]>
    G = -2 * (xf * sig).T @ xf / len(xf)
    G = G + G.T
    np.fill_diagonal(G, 0)
    lam = float(np.abs(G).max())
    above, _ = PseudoLikelihood(PseudoLikelihoodConfig(l1=1.01 * lam, evaluate="none")).fit(X)
    below, _ = PseudoLikelihood(PseudoLikelihoodConfig(l1=0.9 * lam, evaluate="none")).fit(X)
    assert float(above.J.abs().max()) == 0.0
    np.testing.assert_allclose(above.h, h0, atol=1e-6)  # fields: plain logistic intercepts
    assert float(below.J.abs().max()) > 1e-3


def test_l2_solution_is_stationary():
    X = _data(n=4, S=60)
    l2 = 0.05
    model, _ = PseudoLikelihood(PseudoLikelihoodConfig(l2=l2, evaluate="none")).fit(X)
    J, h = model.J.numpy(), model.h.numpy()
    w = np.full(len(X), 1 / len(X))
    eps = 1e-6
    for i, j in [(0, 1), (0, 3), (2, 3)]:
        Jp, Jm = J.copy(), J.copy()
        Jp[i, j] += eps
        Jp[j, i] += eps
        Jm[i, j] -= eps
        Jm[j, i] -= eps
        fd = (_pl_loop(X, w, Jp, h) - _pl_loop(X, w, Jm, h)) / (2 * eps)
        # stationarity of PL + λ/2 J²; FD error ~1e-9
        assert abs(fd + l2 * J[i, j]) < 1e-7


def test_mean_field_exact_for_independent_spins():
    h = torch.tensor([0.2, -0.9, 1.1], dtype=torch.float64)
    mom = exact_moments(IsingModel(torch.zeros(3, 3, dtype=torch.float64), h))
    for method in (MeanFieldInversion(), TAPInversion()):
        model, _ = method.fit(mom)
        assert float(model.J.abs().max()) < 1e-12
        np.testing.assert_allclose(model.h, h, atol=1e-12)


BETAS = [0.025, 0.05, 0.1]


def _slope(method, betas=BETAS):
    errs = []
    for b in betas:
        truth = random_model(8, b, 0.3, seed=2, field_mean=0.5)
        model, _ = method.fit(exact_moments(truth))
        errs.append(float((model.J - truth.J).abs().max()))
    return np.polyfit(np.log(betas), np.log(errs), 1)[0], errs


def test_mean_field_error_is_second_order():
    # Plefka: -(C⁻¹)_ij = J_ij + 2 J_ij² m_i m_j + O(β³): naive MF misses the β² term.
    slope, errs = _slope(MeanFieldInversion())
    assert 1.7 < slope < 2.3, errs  # ±0.3: higher orders at β = 0.1


def test_tap_error_is_third_order_and_beats_mean_field():
    slope, errs = _slope(TAPInversion())
    assert 2.6 < slope < 3.4, errs
    _, mf = _slope(MeanFieldInversion())
    # TAP/MF error ratio is O(β): about 0.1 at β = 0.025
    assert errs[0] < 0.2 * mf[0] and all(t < m for t, m in zip(errs, mf, strict=True))


def test_tap_clamp_is_the_vertex_of_the_quadratic():
    # Strong couplings and large fields: some pairs have 1 - 8 m_i m_j A_ij < 0, where TAP's
    # quadratic 2 m_i m_j J² + J + A_ij = 0 has no real root. Clamping the discriminant at 0
    # gives its vertex J = -1/(4 m_i m_j); elsewhere J is the root that tends to -A_ij.
    g = np.random.default_rng(1)
    J0 = np.triu(g.normal(0, 0.8, (6, 6)), 1)
    truth = IsingModel.from_couplings(J0 + J0.T, g.normal(1.0, 0.5, 6))
    mom = exact_moments(truth)
    model, report = TAPInversion().fit(mom)
    m = mom.m.numpy()
    A = np.linalg.inv(mom.connected.numpy())
    A = 0.5 * (A + A.T)
    mm = np.outer(m, m)
    disc = 1 - 8 * mm * A
    off = ~np.eye(6, dtype=bool)
    neg = (disc < 0) & off
    assert report.extras["clamped"] == neg.sum() // 2 > 0
    J = model.J.numpy()
    np.testing.assert_allclose(J[neg], -1 / (4 * mm[neg]), rtol=1e-12)
    pos = ~neg & off
    root = (-1 + np.sqrt(disc[pos])) / (4 * mm[pos])
    np.testing.assert_allclose(J[pos], root, rtol=1e-9)
    np.testing.assert_allclose(2 * mm[pos] * J[pos] ** 2 + J[pos] + A[pos], 0, atol=1e-12)


def test_bp_learning_error_is_second_order():
    # Learning rates above the paper's (data are exact moments, no noise) so that 400 steps reach
    # the fixed point to < 1e-6 in the moments; the remaining error is Bethe's O(β²) bias.
    cfg = BoltzmannBPConfig(
        eta_J=0.1, eta_h=0.1, l2=0.0, n_iter=400, bp=BPConfig(damping=0.0, tol=1e-12)
    )
    slope, errs = _slope(BoltzmannBP(cfg))
    assert 1.7 < slope < 2.3, errs


def test_bp_learning_report_and_best_iterate():
    truth = random_model(8, 0.1, 0.3, seed=1)
    mom = exact_moments(truth)
    _, report = BoltzmannBP().fit(mom)  # the paper's defaults
    assert report.iterations == 100 and len(report.history) == 101
    assert report.evaluated_by == "bp"
    assert report.error == min(report.history)
    assert report.history[-1] < 0.5 * report.history[0]  # learning made progress
    assert report.extras["best_iteration"] == int(np.argmin(report.history))


def test_fit_interface_and_errors():
    truth = random_model(5, 0.3, 0.3, seed=0)
    mom = exact_moments(truth)
    result = MeanFieldInversion().fit(mom)
    assert isinstance(result, FitResult)
    _, report = result
    assert report.method == "mean_field" and report.seconds >= 0
    assert report.evaluated_by == "exact" and np.isfinite(report.error)
    assert set(report.to_dict()) >= {"error", "error_m", "error_C", "iterations", "seconds"}
    with pytest.raises(ConfigError, match="needs samples"):
        PseudoLikelihood().fit(mom)
    with pytest.raises(ConfigError, match="weights"):
        ExactBoltzmann().fit(mom, weights=[1.0])
    with pytest.raises(ConfigError, match="N <= 20"):
        ExactBoltzmann().fit(Moments(torch.zeros(21), torch.eye(21)))
    with pytest.raises(ConfigError, match="MeanFieldConfig"):
        MeanFieldInversion(PseudoLikelihoodConfig())
    with pytest.raises(ConfigError, match="eta_J"):
        BoltzmannBPConfig(eta_J=-1)
    # samples go through sample_moments: identical data give identical fits
    X = _data(n=5, S=300)
    a, _ = TAPInversion().fit(X)
    b, _ = TAPInversion().fit(sample_moments(X))
    assert torch.equal(a.J, b.J)


def test_best_iterate_rule():
    from weightscape.maxent._bp_learning import best_iterate

    # the smallest error among converged iterates wins over a smaller unconverged one
    assert best_iterate([0.5, 0.1, 0.3, 0.2], [True, False, True, True]) == (3, True)
    # ties: the first
    assert best_iterate([0.2, 0.2], [True, True]) == (0, True)
    # nothing converged: the smallest error overall, flagged
    assert best_iterate([0.5, 0.1, 0.3], [False, False, False]) == (1, False)
    with pytest.raises(ConfigError):
        best_iterate([0.1], [True, False])


def test_bp_learning_keeps_best_converged_iterate():
    truth = random_model(8, 0.1, 0.3, seed=1)
    mom = exact_moments(truth)
    from weightscape.maxent._bp_learning import best_iterate

    # 12 sweeps at damping 0.5 cannot bring a cold start to 1e-6 (the residual halves per sweep),
    # warm starts of the later, slowly changing iterates can: a mix of flags
    cfg = BoltzmannBPConfig(n_iter=30, bp=BPConfig(damping=0.5, tol=1e-6, max_iter=12))
    _, rep = BoltzmannBP(cfg).fit(mom)
    conv = rep.extras["bp_converged_history"]
    assert not conv[0] and any(conv)
    assert (rep.extras["best_iteration"], True) == best_iterate(rep.history, conv)
    assert rep.extras["best_bp_converged"] and rep.error == min(
        e for e, c in zip(rep.history, conv, strict=True) if c
    )
    # BP never converges (one sweep): the best of all iterates, reported as not converged
    cfg = BoltzmannBPConfig(n_iter=5, bp=BPConfig(damping=0.5, tol=1e-12, max_iter=1))
    _, rep = BoltzmannBP(cfg).fit(mom)
    assert not any(rep.extras["bp_converged_history"])
    assert rep.extras["best_iteration"] == int(np.argmin(rep.history))
    assert not rep.extras["best_bp_converged"] and not rep.converged


def test_bp_learning_keep_from_and_require_converged():
    """The kept iterate is the best of iterates keep_from … n_iter (oracle: argmin over the
    recorded history and convergence flags); without require_converged the flags are ignored."""
    truth = random_model(8, 0.1, 0.3, seed=1)
    mom = exact_moments(truth)
    base = {"n_iter": 30, "bp": BPConfig(damping=0.5, tol=1e-6, max_iter=12)}
    _, rep = BoltzmannBP(BoltzmannBPConfig(**base, keep_from=10)).fit(mom)
    hist, conv = np.asarray(rep.history), rep.extras["bp_converged_history"]
    pool = [k for k in range(10, 31) if conv[k]]
    assert pool and rep.extras["best_iteration"] == min(pool, key=lambda k: (hist[k], k))
    # the learning error falls, so without the cutoff the kept iterate is late anyway; with a
    # cutoff past the minimum the kept error is the best of the tail, not the global minimum
    _, rep = BoltzmannBP(BoltzmannBPConfig(**base, keep_from=30)).fit(mom)
    assert rep.extras["best_iteration"] == 30
    # require_converged=False: the best of all eligible iterates, its BP flag reported as is
    cfg = BoltzmannBPConfig(n_iter=5, bp=BPConfig(damping=0.5, tol=1e-12, max_iter=1),
                            keep_from=2, require_converged=False)  # fmt: skip
    _, rep = BoltzmannBP(cfg).fit(mom)
    hist = np.asarray(rep.history)
    assert rep.extras["best_iteration"] == 2 + int(np.argmin(hist[2:]))
    assert not rep.extras["best_bp_converged"]
    with pytest.raises(ConfigError, match="keep_from=31"):
        BoltzmannBPConfig(n_iter=30, keep_from=31)
    with pytest.raises(ConfigError, match="keep_from"):
        BoltzmannBPConfig(keep_from=-1)


def _curie_weiss(n: int, coupling: float) -> IsingModel:
    J = torch.full((n, n), coupling, dtype=torch.float64)
    J.fill_diagonal_(0.0)
    return IsingModel(J, torch.zeros(n, dtype=torch.float64))


def test_bp_jacobian_radius_curie_weiss_and_jvp():
    from torch.func import jvp

    from weightscape.maxent._bp import _update
    from weightscape.maxent._bp_learning import bp_jacobian_radius

    # analytic oracle: at zero messages and h = 0 the undamped BP Jacobian maps dM_ki to
    # Σ_{k≠i,j} t dM_ki, whose leading eigenvalue is (N − 2) t, t = tanh J (uniform vector)
    n = 40
    for coupling in (0.01, 0.02, 0.03):
        model = _curie_weiss(n, coupling)
        lam = (n - 2) * np.tanh(coupling)
        zero = torch.zeros(n, n, dtype=torch.float64)
        assert bp_jacobian_radius(model, zero, damping=0.0) == pytest.approx(lam, rel=1e-6)
        assert bp_jacobian_radius(model, zero, damping=0.5) == pytest.approx(
            0.5 + 0.5 * lam, rel=1e-6
        )
    # the analytic Jacobian-vector product equals autograd's at a generic point
    from weightscape.maxent._bp_learning import _JacobianOperator

    truth = random_model(12, 0.3, 0.3, seed=3)
    gen = torch.Generator().manual_seed(0)
    M = 0.5 * torch.rand(12, 12, dtype=torch.float64, generator=gen) - 0.25
    M.fill_diagonal_(0.0)
    tJ = torch.tanh(truth.J)
    for d in (0.0, 0.5):
        v = torch.randn(12, 12, dtype=torch.float64, generator=gen)
        v.fill_diagonal_(0.0)
        _, w = jvp(lambda X, d=d: d * X + (1 - d) * _update(tJ, truth.h, X)[0], (M,), (v,))
        ours = _JacobianOperator(truth, M, d)(v)
        torch.testing.assert_close(ours, w, rtol=1e-12, atol=1e-14)


def test_bp_learning_rejects_unstable_fixed_points():
    from weightscape.maxent._bp_learning import bp_jacobian_radius

    # data: m = 0, uniform C_ij = 0.5 on N = 30 spins. With h = 0 the zero messages are a BP
    # fixed point for every J (residual 0 at once), with C_BP = tanh J: the learning "fits" the
    # data at tanh J = 0.5, where (N − 2) tanh J = 14 ≫ 1 — the fixed point repels BP and the
    # model is ordered. The stability check keeps only iterates with (N − 2) tanh J < 1.
    n = 30
    C = torch.full((n, n), 0.5, dtype=torch.float64)
    C.fill_diagonal_(1.0)
    mom = Moments(torch.zeros(n, dtype=torch.float64), C)
    base = dict(eta_J=0.05, n_iter=60, init="zeros")
    model_off, rep_off = BoltzmannBP(BoltzmannBPConfig(**base, check_stability=False)).fit(mom)
    model_on, rep_on = BoltzmannBP(BoltzmannBPConfig(**base)).fit(mom)
    t_off = float(torch.tanh(model_off.J[0, 1]))
    t_on = float(torch.tanh(model_on.J[0, 1]))
    assert (n - 2) * t_off > 1.0 and rep_off.error < rep_on.error  # kept an unstable model
    assert (n - 2) * t_on < 1.0 and rep_on.extras["best_bp_converged"]
    assert rep_on.extras["bp_unstable"] >= 1
    zero = torch.zeros(n, n, dtype=torch.float64)
    assert bp_jacobian_radius(model_on, zero) < 1.0 < bp_jacobian_radius(model_off, zero)
    # the next step past the kept one would have crossed: the kept one is the last stable step
    assert (n - 2) * np.tanh(np.arctanh(t_on) + 0.05 * 0.5) > 1.0 - 1e-9


def test_reported_objective_is_that_of_the_returned_model_after_newton_polishing():
    # L-BFGS stopped early (few iterations) leaves room for the Newton steps that follow; the
    # reported objective must be the returned model's, recomputed here independently: the
    # sample-mean pseudo-likelihood Σ_i softplus(-2 σ_i (h_i + Σ_j J_ij σ_j)) and, for exact
    # learning, log Z − h·m − Σ_{i<j} J_ij C_ij by enumeration.
    from weightscape.maxent import ExactBoltzmannConfig

    truth = IsingModel.random(8, coupling_std=0.6, field_std=0.3, seed=3)
    states = all_states(8).numpy().astype(float)
    pick = np.random.default_rng(0).choice(256, 2000, p=exact_distribution(truth).numpy())
    X = states[pick]
    model, report = PseudoLikelihood(PseudoLikelihoodConfig(max_iter=15)).fit(X)
    assert report.extras["newton_steps"] > 0
    J, h = model.J.numpy(), model.h.numpy()
    pl = np.logaddexp(0.0, -2.0 * X * (X @ J + h)).sum(1).mean()
    assert abs(report.extras["objective"] - pl) < 1e-12 and report.history[-1] == pytest.approx(pl)

    mom = exact_moments(truth)
    model, report = ExactBoltzmann(ExactBoltzmannConfig(max_iter=5)).fit(mom)
    assert report.extras["newton_steps"] > 0
    J, h = model.J.numpy(), model.h.numpy()
    logw = 0.5 * np.einsum("si,ij,sj->s", states, J, states) + states @ h
    iu = np.triu_indices(8, 1)
    nll = np.logaddexp.reduce(logw) - h @ mom.m.numpy() - J[iu] @ mom.C.numpy()[iu]
    assert abs(report.extras["objective"] - nll) < 1e-12 and report.history[-1] == pytest.approx(
        nll
    )


@pytest.mark.parametrize("init", ["mean_field", "independent"])
def test_pseudo_likelihood_of_one_spin_is_its_field(init):
    # One spin: no couplings; the maximiser is h = atanh(mean σ) (here 1/3).
    X = np.array([[1], [-1], [1]], np.int8)
    model, report = PseudoLikelihood(PseudoLikelihoodConfig(init=init)).fit(X)
    assert model.J.shape == (1, 1) and float(model.J[0, 0]) == 0.0
    assert (
        abs(float(model.h[0]) - np.arctanh(1 / 3)) < 1e-8 and report.extras["init"] == "independent"
    )


def test_exact_evaluation_of_a_large_model_is_refused_before_the_fit(monkeypatch):
    # evaluate="exact" cannot enumerate N > 24: a one-line ConfigError at once, not after the
    # learning has run (its result would be lost)
    def no_fit(*args):
        raise AssertionError("the fit ran")

    monkeypatch.setattr(BoltzmannBP, "_fit", no_fit)
    X = np.where(np.random.default_rng(0).random((50, 25)) < 0.5, 1, -1)
    with pytest.raises(ConfigError, match="exact enumeration needs N <= 24"):
        BoltzmannBP(BoltzmannBPConfig(evaluate="exact")).fit(X)


def _authors_learning_loops(m_d, C_d, seed, n_iter, keep_from, tol=1e-4, sweeps=1000):
    """The authors' learning script as its facts are stated (docs/studies/maxent.md), in plain
    numpy: h = 0 and J_ij = g_ij g_ji / N²; every step BP from N(0, 0.01²) messages, undamped,
    until the mean |message change| over the N² entries is below ``tol``; gradient steps with the
    paper's rates; the best iterate by moment error among iterates ``keep_from … n_iter``.
    The random numbers are drawn from the same torch generator sequence as the library's
    (J's ``g`` first, then one message matrix per BP), so the two must agree to round-off."""
    gen = torch.Generator().manual_seed(seed)
    n = len(m_d)
    g = (torch.randn(n, n, generator=gen, dtype=torch.float64) / n).numpy()
    J = g * g.T
    np.fill_diagonal(J, 0.0)
    h = np.zeros(n)
    off = ~np.eye(n, dtype=bool)
    best = None
    for it in range(n_iter + 1):
        M = (torch.randn(n, n, generator=gen, dtype=torch.float64) * 0.01).numpy()
        np.fill_diagonal(M, 0.0)
        t = np.tanh(J)
        for _ in range(sweeps):
            U = np.arctanh(t * M)  # U[k, i]: cavity field k sends to i
            new = np.tanh(h[:, None] + U.sum(0)[:, None] - U.T)
            np.fill_diagonal(new, 0.0)
            delta = np.abs(new - M).mean()
            M = new
            if delta < tol:
                break
        m = np.tanh(h + np.arctanh(t * M).sum(0))
        C = (t + M * M.T) / (1 + t * M * M.T)
        err = np.sqrt(np.mean((m - m_d) ** 2) + np.mean((C - C_d)[off] ** 2))
        if it >= keep_from and (best is None or err < best[0]):
            best = (err, J.copy(), h.copy(), it)
        if it == n_iter:
            break
        dC = np.where(off, C - C_d, 0.0)
        J, h = J - 0.01 * (dC + 1e-4 * J), h - 0.3 * (m - m_d)
    return best


def test_authors_learning_equals_a_loop_by_loop_oracle():
    """BoltzmannBPConfig.authors(): the authors' start, random restarts of undamped BP with the
    mean-change test, no convergence rule, the best of steps 51-100: the same J, h and kept
    iterate as a plain numpy re-implementation drawing the same random numbers."""
    truth = random_model(7, 0.2, 0.4, seed=5)
    mom = exact_moments(truth)
    cfg = BoltzmannBPConfig.authors(seed=3)
    want = ("authors", False, "random", 51)
    assert (cfg.init, cfg.warm_start, cfg.start_messages, cfg.keep_from) == want
    assert (cfg.bp.damping, cfg.bp.criterion, cfg.require_converged) == (0.0, "mean_change", False)
    model, rep = BoltzmannBP(cfg).fit(mom)
    err, J, h, it = _authors_learning_loops(mom.m.numpy(), mom.C.numpy(), 3, 100, 51)
    assert rep.extras["best_iteration"] == it and abs(rep.error - err) < 1e-10
    np.testing.assert_allclose(model.J.numpy(), J, atol=1e-10)
    np.testing.assert_allclose(model.h.numpy(), h, atol=1e-10)
    # the start: symmetric, zero diagonal, of scale 1/N², the same for the same seed
    again, _ = BoltzmannBP(cfg).fit(mom)
    assert torch.equal(again.J, model.J)
    other, _ = BoltzmannBP(BoltzmannBPConfig.authors(seed=4)).fit(mom)
    assert not torch.equal(other.J, model.J)


def test_bp_learning_starting_messages():
    """Random starting messages change BP's path, not a unique fixed point: on a weakly coupled
    model the kept model equals the zero-start one to the BP tolerance; bad settings are
    refused by name."""
    mom = exact_moments(random_model(8, 0.1, 0.3, seed=1))
    bp = BPConfig(damping=0.0, tol=1e-12, max_iter=500)
    a, _ = BoltzmannBP(BoltzmannBPConfig(n_iter=20, bp=bp, warm_start=False)).fit(mom)
    rand = BoltzmannBPConfig(
        n_iter=20, bp=bp, warm_start=False, start_messages="random", message_std=0.3
    )
    b, _ = BoltzmannBP(rand).fit(mom)
    np.testing.assert_allclose(b.J.numpy(), a.J.numpy(), atol=1e-9)
    np.testing.assert_allclose(b.h.numpy(), a.h.numpy(), atol=1e-9)
    for bad, msg in ((dict(start_messages="ones"), "start_messages='ones'"),
                     (dict(message_std=1.0), "message_std=1.0"),
                     (dict(message_std=-0.1), "message_std"),
                (dict(seed=-2), "seed=-2"),
                     (dict(init="authorz"), "init='authorz'")):  # fmt: skip
        with pytest.raises(ConfigError, match=msg):
            BoltzmannBPConfig(**bad)
