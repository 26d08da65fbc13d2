"""Batched Bethe BP: same fixed points as bp_solve, exact on trees (marginals, edge moments, free
energy, energy, entropy), batching = separate solves, weak dense couplings close to exact."""

import math

import numpy as np
import pytest
import torch

from weightscape.errors import ConfigError, DatasetError
from weightscape.maxent import (
    BetheConfig,
    BPConfig,
    IsingModel,
    bethe_pair_moments,
    bethe_solve,
    bp_solve,
    exact_log_partition,
    exact_moments,
)

from .conftest import random_model, tree_model

# Both solvers stopped at residual < 1e-13 of a contraction: fixed points agree to ~1e-12;
# 1e-10 is the brief's bar and leaves two orders of margin.
FIXED_POINT_TOL = 1e-10
TIGHT = BetheConfig(damping=0.5, tol=1e-13, max_iter=3000, criterion="max_residual")
TIGHT_BP = BPConfig(damping=0.5, tol=1e-13, max_iter=3000)


def _exact_energy_entropy(model):
    """Exact energy per spin ⟨E⟩/N and entropy per spin (ln Z + ⟨E⟩)/N by enumeration."""
    n = model.n_spins
    ex = exact_moments(model)
    e = -(0.5 * (model.J * ex.C).sum() + model.h @ ex.m) / n
    lz = exact_log_partition(model) / n
    return float(lz), float(e), float(lz + e)


@pytest.mark.parametrize("accel", ["none", "adaptive"])
@pytest.mark.parametrize("seed", [0, 1])
def test_fixed_point_equals_bp_solve(accel, seed):
    model = random_model(30, 0.08, 0.4, seed=seed)
    M0, r0, _ = bp_solve(model, TIGHT_BP)
    cfg = BetheConfig(damping=0.5, tol=1e-13, max_iter=3000, criterion="max_residual", accel=accel)
    M1, r1, trace = bethe_solve(model, cfg)
    assert r0.converged and bool(r1.converged[0])
    assert M1.shape == (30, 30) and r1.m.shape == (1, 30) and trace.shape[1] == 1
    np.testing.assert_allclose(M1, M0, atol=FIXED_POINT_TOL, rtol=0)
    np.testing.assert_allclose(r1.m[0], r0.m, atol=FIXED_POINT_TOL, rtol=0)
    np.testing.assert_allclose(bethe_pair_moments(model.J, M1), r0.C, atol=FIXED_POINT_TOL, rtol=0)
    if accel == "none":  # the same damped scheme takes the same number of sweeps
        assert abs(int(r1.iterations[0]) - r0.iterations) <= 1


def test_single_sweep_equals_textbook_update():
    """One undamped sweep from random messages: the product/subtraction form vs atanh/tanh."""
    model = random_model(25, 0.3, 0.5, seed=7)
    g = torch.Generator().manual_seed(0)
    M = 2 * torch.rand(25, 25, generator=g, dtype=torch.float64) - 1
    M.fill_diagonal_(0)
    cfg1 = BetheConfig(damping=0.0, tol=1e-300, max_iter=1, accel="none")
    M_ours, _, _ = bethe_solve(model, cfg1, M)
    M_ref, _, _ = bp_solve(model, BPConfig(damping=0.0, tol=1e-300, max_iter=1), M)
    # a few ulps of round-off per message (different but exact algebra)
    np.testing.assert_allclose(M_ours, M_ref, atol=1e-13, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_numpy_transpose_path_equals_plain_formula(monkeypatch, dtype):
    """cavity_yt's CPU path (NumPy transposed copy, then ``*= tanh J``) and its fallback (torch's
    transposed multiply, used off the CPU) both equal ``Mᵀ · tanh J`` bit for bit, batched, on a
    non-contiguous ``M``; one sweep's residual is then the same in both paths, bit for bit."""
    import weightscape.maxent._bethe as bethe

    model = random_model(23, 0.4, 0.5, seed=4).to(dtype=dtype)
    g = torch.Generator().manual_seed(5)
    M = (2 * torch.rand(3, 23, 23, generator=g, dtype=torch.float64) - 1).to(dtype)
    M.diagonal(dim1=1, dim2=2).zero_()
    h = model.h + torch.randn(3, 23, generator=g, dtype=torch.float64).to(dtype)
    kern = bethe._Kernel(model.J)
    plain = M.transpose(1, 2) * torch.tanh(model.J)
    assert bethe._numpy_transpose_ok(M, torch.empty_like(M))
    fast = kern.cavity_yt(M, torch.empty_like(M))
    Mnc = M.transpose(1, 2).contiguous().transpose(1, 2)  # same values, transposed strides
    fast_nc = kern.cavity_yt(Mnc, torch.empty_like(M))
    R_fast = kern.residual(h, M, bethe._Workspace(3, 23, dtype, "cpu")).clone()
    monkeypatch.setattr(bethe, "_numpy_transpose_ok", lambda M, out: False)
    slow = kern.cavity_yt(M, torch.empty_like(M))
    R_slow = kern.residual(h, M, bethe._Workspace(3, 23, dtype, "cpu"))
    assert fast.dtype == dtype and torch.equal(fast, plain) and torch.equal(fast_nc, plain)
    assert torch.equal(slow, plain)
    assert torch.equal(R_fast, R_slow)


@pytest.mark.parametrize(
    ("accel", "criterion"),
    [
        ("adaptive", "max_change"),
        ("anderson", "max_change"),
        ("adaptive+anderson", "max_residual"),
        ("none", "mean_change"),
    ],
)
def test_chunked_sweeps_equal_the_whole_batch_at_once(accel, criterion):
    """CPU sweeps go through the batch in chunks of elements (SWEEP_CHUNK_BYTES); chunks of 2
    out of 5 elements (elements stopping at different sweeps) give the messages, sweeps and
    criterion trace of the whole batch at once bit for bit, and the same thermodynamics."""
    from weightscape.maxent._bethe import _Kernel, _solve, _Workspace

    model = random_model(24, 0.2, 0.3, seed=8)
    g = torch.Generator().manual_seed(3)
    fields = model.h + 0.7 * torch.randn(5, 24, generator=g, dtype=torch.float64)
    cfg = BetheConfig(tol=1e-11, accel=accel, criterion=criterion)
    out = {}
    for per_chunk in (None, 2):
        kern = _Kernel(model.J)
        kern.per_chunk = per_chunk
        assert len(kern.chunks(5)) == (1 if per_chunk is None else 3)
        M = torch.zeros(5, 24, 24, dtype=torch.float64)
        out[per_chunk] = _solve(kern, _Workspace(5, 24, M.dtype, "cpu"), fields, cfg, M, True)
    (M1, r1, t1), (M2, r2, t2) = out[None], out[2]
    assert bool(r1.converged.all()) and len(set(r1.iterations.tolist())) > 1
    assert torch.equal(M1, M2) and torch.equal(r1.iterations, r2.iterations)
    assert torch.equal(t1.isnan(), t2.isnan()) and torch.equal(t1.nan_to_num(), t2.nan_to_num())
    for name in ("m", "free_entropy", "energy", "entropy"):
        np.testing.assert_allclose(getattr(r2, name), getattr(r1, name), atol=1e-14, rtol=0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_exact_on_trees(seed):
    model, edges = tree_model(12, seed, coupling=0.9, field=0.5)
    M, res, _ = bethe_solve(model, TIGHT)
    ex = exact_moments(model)
    lz, e, s = _exact_energy_entropy(model)
    np.testing.assert_allclose(res.m[0], ex.m, atol=FIXED_POINT_TOL, rtol=0)
    C = bethe_pair_moments(model.J, M)
    for i, j in edges:
        assert abs(float(C[i, j] - ex.C[i, j])) < FIXED_POINT_TOL
    assert abs(float(res.free_entropy[0]) - lz) < FIXED_POINT_TOL
    assert abs(float(res.energy[0]) - e) < FIXED_POINT_TOL
    assert abs(float(res.entropy[0]) - s) < FIXED_POINT_TOL


def test_strong_couplings_use_the_guarded_path_and_stay_exact():
    """|J| ≈ 6 (tanh J > 1 - 1e-4) triggers the tanh/atanh fallback for near-saturated messages;
    and the partial products are chunked (|log(1 - y)| up to 9.9 per factor)."""
    model, edges = tree_model(12, 5, coupling=0.1, field=0.3)
    J = model.J.clone()
    for k, (i, j) in enumerate(edges):
        J[i, j] = J[j, i] = 6.0 * (-1) ** k
    model = IsingModel(J, model.h)
    _, res, _ = bethe_solve(model, TIGHT)
    ex = exact_moments(model)
    lz, _, s = _exact_energy_entropy(model)
    # saturated magnetisations (1 - |m| ~ 1e-5) are known to ~1e-16 relative to 1 - |m|
    np.testing.assert_allclose(res.m[0], ex.m, atol=1e-9, rtol=0)
    assert abs(float(res.free_entropy[0]) - lz) < 1e-9
    assert abs(float(res.entropy[0]) - s) < 1e-9


def test_chunked_products_match_bp_solve():
    """N = 120 with |J| = 5 on a random tree: ≈ 61 factors per partial product (< N)."""
    rng = np.random.default_rng(3)
    n = 120
    J = np.zeros((n, n))
    for i in range(1, n):
        p = int(rng.integers(0, i))
        J[i, p] = J[p, i] = 5.0 * rng.choice([-1.0, 1.0])
    J += np.triu(rng.normal(0, 0.01, (n, n)), 1)  # weak loops on top
    model = IsingModel.from_couplings(J, rng.normal(0, 0.3, n))  # symmetrises the weak part
    from weightscape.maxent._bethe import _Kernel

    assert _Kernel(model.J).chunk < n
    _M0, r0, _ = bp_solve(model, TIGHT_BP)
    _M1, r1, _ = bethe_solve(model, TIGHT)
    assert r0.converged and bool(r1.converged[0])
    np.testing.assert_allclose(r1.m[0], r0.m, atol=FIXED_POINT_TOL, rtol=0)


def _textbook_bethe(J, h, M):
    """Bethe -βf and βe per spin at messages ``M`` (``M[i, j] = m_{i→j}``), NumPy, site/edge form
    ``Σ_i ln(e^h Π_k cosh J (1 + y) + e^-h Π_k cosh J (1 - y))
    - Σ_{i<j} ln(cosh J (1 + t m m))``, term by term."""
    n = len(h)
    t = np.tanh(J)
    Y = t * M  # Y[k, i] = y_{k→i}
    off = ~np.eye(n, dtype=bool)
    site = 0.0
    H = np.empty(n)
    for i in range(n):
        k = off[:, i]
        lp = h[i] + np.sum(np.log(np.cosh(J[k, i]) * (1 + Y[k, i])))
        lm = -h[i] + np.sum(np.log(np.cosh(J[k, i]) * (1 - Y[k, i])))
        site += np.logaddexp(lp, lm)
        H[i] = h[i] + np.sum(np.arctanh(Y[k, i]))
    mm = M * M.T
    iu = np.triu_indices(n, 1)
    edge = np.sum(np.log(np.cosh(J[iu]) * (1 + t[iu] * mm[iu])))
    C = (t + mm) / (1 + t * mm)
    energy = -(np.sum(J[iu] * C[iu]) + h @ np.tanh(H)) / n
    return (site - edge) / n, energy


@pytest.mark.parametrize("strong", [False, True])
def test_thermodynamics_equal_textbook_formula_at_any_messages(strong):
    """Free entropy and energy from the kernel (logs of chunked products, one transposed copy)
    equal the site/edge textbook form evaluated term by term, at random (non-fixed-point)
    messages on a dense loopy model; ``strong`` adds J = 9 edges (chunked products: 34 < N = 40)."""
    from weightscape.maxent._bethe import _Kernel, _Workspace

    rng = np.random.default_rng(7)
    n = 40
    J = rng.normal(0, 0.3, (n, n))
    if strong:
        J[np.arange(0, n, 2), np.arange(1, n, 2)] = J[np.arange(1, n, 2), np.arange(0, n, 2)] = 9.0
    model = IsingModel.from_couplings(J, rng.normal(0, 0.5, n))
    M = rng.uniform(-0.9, 0.9, (2, n, n))
    M[:, np.arange(n), np.arange(n)] = 0
    h = model.h.numpy() + rng.normal(0, 0.2, (2, n))
    kern = _Kernel(model.J)
    assert (kern.chunk < n) == strong
    Mt = torch.from_numpy(M)
    _, _, fe, en = kern.thermodynamics(torch.from_numpy(h), Mt, _Workspace(2, n, Mt.dtype, "cpu"))
    for b in range(2):
        fe_ref, en_ref = _textbook_bethe(model.J.numpy(), h[b], M[b])
        assert abs(float(fe[b]) - fe_ref) < 1e-12
        assert abs(float(en[b]) - en_ref) < 1e-12


def test_batched_equals_separate_solves():
    model = random_model(20, 0.1, 0.3, seed=2)
    g = torch.Generator().manual_seed(1)
    fields = model.h + torch.randn(4, 20, generator=g, dtype=torch.float64)
    fields[2] = model.h  # one element converges at a different sweep than the others
    cfg = BetheConfig(tol=1e-10)
    Mb, rb, trace = bethe_solve(model, cfg, fields=fields)
    assert Mb.shape == (4, 20, 20) and trace.shape[1] == 4
    for b in range(4):
        Ms, rs, _ts = bethe_solve(model, cfg, fields=fields[b])
        assert int(rs.iterations[0]) == int(rb.iterations[b])
        # frozen on convergence: bit-identical up to summation-order round-off
        np.testing.assert_allclose(Mb[b], Ms, atol=1e-14, rtol=0)
        assert abs(float(rs.entropy[0] - rb.entropy[b])) < 1e-14
        it = int(rb.iterations[b])
        assert torch.isnan(trace[it:, b]).all() and not torch.isnan(trace[:it, b]).any()


def test_carried_damping_reaches_the_same_fixed_point_and_is_written_back():
    """Starting the adaptive damping at 0 (what the landscape carries from the previous x) only
    changes the path: same fixed point as a start at the configured 0.5, to the tolerance."""
    from weightscape.maxent._bethe import _Kernel, _solve, _Workspace

    model = random_model(30, 0.15, 0.3, seed=5)
    g = torch.Generator().manual_seed(2)
    fields = model.h + 0.5 * torch.randn(3, 30, generator=g, dtype=torch.float64)
    cfg = BetheConfig(tol=1e-12)
    kern = _Kernel(model.J)

    def solve(damping):
        M = torch.zeros(3, 30, 30, dtype=torch.float64)
        return _solve(kern, _Workspace(3, 30, M.dtype, "cpu"), fields, cfg, M, True, damping)

    M_ref, r_ref, _ = solve(None)
    carried = np.array([0.0, 0.25, 0.5])
    M_c, r_c, _ = solve(carried)
    assert bool(r_ref.converged.all()) and bool(r_c.converged.all())
    np.testing.assert_allclose(M_c, M_ref, atol=1e-10, rtol=0)
    np.testing.assert_allclose(r_c.m, r_ref.m, atol=1e-10, rtol=0)
    # written back: the damping each element had adapted to when it stopped
    assert carried.shape == (3,) and ((carried >= 0.0) & (carried <= 0.95)).all()
    assert not np.array_equal(carried, [0.0, 0.25, 0.5])


def test_independent_spins_closed_form():
    h = torch.tensor([0.3, -1.2, 2.0, 0.0], dtype=torch.float64)
    model = IsingModel(torch.zeros(4, 4, dtype=torch.float64), h)
    _, res, _ = bethe_solve(model, TIGHT)
    lz = float(torch.log(2 * torch.cosh(h)).mean())
    e = float(-(h * torch.tanh(h)).mean())
    assert abs(float(res.free_entropy[0]) - lz) < 1e-15
    assert abs(float(res.energy[0]) - e) < 1e-15


def test_dense_weak_couplings_error_shrinks_like_loops():
    """Bethe ln Z on a dense graph misses loop terms: the first (triangles) is O(β³).

    Measured slope of log|error| vs log β over β = 0.0125…0.05 is 2.8 (3 asymptotically; the
    quartic loops bend it at the upper end; by β = 0.2 the error changes sign for this seed); the
    test accepts [2.5, 3.3] and an absolute error below 1e-4 per spin at β = 0.05.
    """
    errs, betas = [], [0.0125, 0.025, 0.05]
    for b in betas:
        model = random_model(10, b, 0.3, seed=11, field_mean=0.2)
        _, res, _ = bethe_solve(model, TIGHT)
        lz, _, _ = _exact_energy_entropy(model)
        errs.append(abs(float(res.free_entropy[0]) - lz))
    slope = np.polyfit(np.log(betas), np.log(errs), 1)[0]
    assert 2.5 < slope < 3.3, (slope, errs)
    assert errs[-1] < 1e-4


def test_criteria_scale_and_nonconvergence_flag():
    model = random_model(15, 0.1, 0.3, seed=4)
    _, r_change, t_change = bethe_solve(model, BetheConfig(max_iter=3, accel="none"))
    _, _r_res, t_res = bethe_solve(
        model, BetheConfig(max_iter=3, accel="none", criterion="max_residual")
    )
    # same iterates; "max_change" is (1 - d) × the residual
    np.testing.assert_allclose(t_change[:, 0], 0.5 * t_res[:, 0], rtol=1e-15)
    assert not bool(r_change.converged[0]) and int(r_change.iterations[0]) == 3
    assert math.isclose(float(r_change.residual[0]), float(t_change[-1, 0]))


def test_config_and_input_validation():
    with pytest.raises(ConfigError, match="damping"):
        BetheConfig(damping=1.0)
    with pytest.raises(ConfigError, match="criterion"):
        BetheConfig(criterion="l2")
    with pytest.raises(ConfigError, match="accel"):
        BetheConfig(accel="broyden")
    # an infinite tolerance would call every point converged after one sweep
    with pytest.raises(ConfigError, match="tol=inf must be finite"):
        BetheConfig(tol=math.inf)
    with pytest.raises(ConfigError, match="tol=inf must be finite"):
        BPConfig(tol=math.inf)
    with pytest.raises(ConfigError, match="min_damping"):
        BetheConfig(damping=0.3, min_damping=0.5)
    model = random_model(5, 0.1, seed=0)
    with pytest.raises(DatasetError, match="fields"):
        bethe_solve(model, fields=torch.zeros(2, 4, dtype=torch.float64))
    with pytest.raises(ConfigError, match="messages"):
        bethe_solve(model, messages=torch.zeros(3, 3))


@pytest.mark.parametrize("bad", [3.0, math.inf, math.nan])
def test_warm_start_messages_must_be_cavity_magnetisations(bad):
    # Messages m_{i→j} lie in [-1, 1]; a warm start outside (or non-finite) is the caller's
    # mistake, named as such, not a "check J and h" NumericalError or 1000 saturated sweeps.
    model = random_model(5, 0.3, 0.2, seed=1)
    M = torch.zeros(5, 5, dtype=torch.float64)
    M[0, 1] = bad
    for solve in (
        lambda: bp_solve(model, BPConfig(), M),
        lambda: bethe_solve(model, BetheConfig(), M),
    ):
        with pytest.raises(ConfigError, match=r"messages must be finite and within \[-1, 1\]"):
            solve()
    # BP's own messages can sit an ulp beyond ±1 and come back as warm starts (iso-energy,
    # landscapes): accepted and clamped, with the same result as exact ±1
    M = torch.zeros(5, 5, dtype=torch.float64)
    M[0, 1], M[2, 3] = -1.0000000000000002, 1.0000000000000002
    exact = M.clamp(-1.0, 1.0)
    for solve in (bp_solve, bethe_solve):
        cfg = BPConfig() if solve is bp_solve else BetheConfig()
        a, b = solve(model, cfg, M)[1], solve(model, cfg, exact)[1]
        torch.testing.assert_close(a.m, b.m, rtol=0, atol=0)
    assert M[0, 1] == -1.0000000000000002  # the caller's messages are not touched
    # the diagonal is not a message: whatever it holds is zeroed, not refused
    M = torch.full((5, 5), 0.1, dtype=torch.float64)
    M.fill_diagonal_(7.0)
    assert bp_solve(model, BPConfig(), M)[1].converged
