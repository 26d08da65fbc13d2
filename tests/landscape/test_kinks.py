"""Minima of relu nets on kinks: the stationarity measure (bounded least squares), the jumps of
the gradient across a kink (one-sided finite differences), and the SQP minimiser (no descent
direction by finite differences at its end point; one at its start point)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize as so
import torch

from weightscape.curvature import flatten_params, unflatten_params
from weightscape.landscape import (
    RealNetConfig,
    kink_point,
    kink_stationarity,
    polish_on_kinks,
    run_realnet,
)
from weightscape.nets import Ensemble, MLPSpec, mlp_forward
from weightscape.train import get_loss


def _objective(theta, spec, x, y, l2):
    # independent of the module: the library's own forward (torch convention relu'(0) = 0)
    f = mlp_forward(unflatten_params(theta, spec), x, spec)
    return get_loss("mse").per_sample(f, y).mean() + 0.5 * l2 * (theta * theta).sum()


def _grad(theta, spec, x, y, l2):
    return torch.func.grad(lambda t: _objective(t, spec, x, y, l2))(theta)


# ------------------------------------------------------------------------------------------
def test_kink_stationarity_oracles():
    rng = np.random.default_rng(0)
    J = rng.standard_normal((1, 6))
    t = rng.standard_normal(6)
    t -= (t @ J[0]) / (J[0] @ J[0]) * J[0]  # tangent part, orthogonal to the jump
    # 0 inside the segment [g, g + J]: distance = tangent part, alpha = 0.3
    d, a = kink_stationarity(t - 0.3 * J[0], J)
    assert d == pytest.approx(np.linalg.norm(t), rel=1e-12) and a[0] == pytest.approx(0.3)
    # 0 beyond the segment: the nearest end point (alpha = 1 or 0)
    d, a = kink_stationarity(-2.0 * J[0], J)
    assert d == pytest.approx(np.linalg.norm(J[0]), rel=1e-12) and a[0] == 1.0
    d, a = kink_stationarity(0.5 * J[0], J)
    assert d == pytest.approx(0.5 * np.linalg.norm(J[0]), rel=1e-12) and a[0] == 0.0
    # nothing pinned: |g|
    d, a = kink_stationarity(t, np.zeros((0, 6)))
    assert d == pytest.approx(np.linalg.norm(t)) and a.size == 0
    # two orthogonal jumps: box [0,1]^2 reaches 0 exactly
    J2 = np.eye(6)[:2]
    d, a = kink_stationarity(np.array([-0.2, -0.7, 0, 0, 0, 0.0]), J2)
    assert d < 1e-14 and np.allclose(a, [0.2, 0.7])


def _random_groups(rng, N, sizes, scale=1.0):
    groups, start = [], 0
    for G in sizes:
        pats = np.array([b for b in np.ndindex(*(2,) * G) if any(b)])
        groups.append(
            (list(range(start, start + G)), pats, scale * rng.standard_normal((len(pats), N)))
        )
        start += G
    return groups


def _hull_certificate(g, J, groups, v):
    """Independent checks of a claimed minimal-norm point ``v`` of ``g + box(J free) + hulls``:
    (1) ``v`` is in the set (a feasibility LP for the vertex weights, HiGHS); (2) the duality
    lower bound ``min_u (v . u) / |v|`` over the set (each block minimised on its own)."""
    K, N = J.shape
    grouped = sorted(k for e, _, _ in groups for k in e)
    free = [k for k in range(K) if k not in grouped]
    cols, blocks = [], []
    for b, k in enumerate(free):
        cols += [np.zeros(N), J[k]]
        blocks += [b, b]
    for j, (_, _, V) in enumerate(groups):
        cols += [np.zeros(N), *V]
        blocks += [len(free) + j] * (len(V) + 1)
    A = np.array(cols).T
    B = np.zeros((max(blocks) + 1, len(blocks)))
    B[blocks, np.arange(len(blocks))] = 1.0
    lp = so.linprog(
        np.zeros(len(blocks)),
        A_eq=np.vstack([A, B]),
        b_eq=np.concatenate([v - g, np.ones(len(B))]),
        bounds=(0, None),
        method="highs",
    )
    low = float(v @ g) + sum(min(0.0, float(v @ J[k])) for k in free)
    low += sum(min(0.0, float((V @ v).min())) for _, _, V in groups)
    return lp.status == 0, low / max(np.linalg.norm(v), 1e-300)


@pytest.mark.parametrize("seed", range(6))
def test_active_set_qp_is_the_minimal_norm_point(seed):
    # the QP of coupled groups: the active-set solver's point lies in the set (feasibility LP)
    # and meets the duality lower bound; SLSQP (the former solver) never does better
    rng = np.random.default_rng(seed)
    N = 9
    groups = _random_groups(rng, N, [2, 3])
    J = rng.standard_normal((5 + 3, N))  # entries 0..4 grouped, 5..7 free
    if seed % 2:  # 0 inside the set: distance 0
        g = -(0.4 * J[5] + 0.7 * J[6] + 0.25 * groups[1][2][3] + 0.5 * groups[0][2][0])
    else:
        g = 3.0 * rng.standard_normal(N)
    d, a, v = kink_stationarity(g, J, groups, vector=True)
    assert d == pytest.approx(np.linalg.norm(v), rel=1e-12, abs=1e-14)
    feasible, low = _hull_certificate(g, J, groups, v)
    assert feasible
    if d > 1e-9 * np.linalg.norm(g):  # (at v = 0 the bound is 0 <= d, nothing to check)
        assert d - low <= 1e-9 * np.linalg.norm(g)
    d_ref, _ = kink_stationarity(g, J, groups, method="slsqp")
    assert d <= d_ref + 1e-9 * np.linalg.norm(g)
    if seed % 2:
        assert d < 1e-9 * np.linalg.norm(g)
    else:
        assert d > 1e-3  # a case where the set does not reach 0 (non-vacuous)
    assert np.all((a >= 0) & (a <= 1))


def test_min_norm_blocks_against_enumeration_of_faces():
    # brute force: the min-norm point of a product of simplices is the best KKT point over all
    # choices of one face per block (affine least squares on every face, kept if feasible)
    import itertools

    from weightscape.landscape._kinks import _min_norm_blocks

    rng = np.random.default_rng(7)
    N, sizes = 4, [2, 3, 2]
    A = rng.standard_normal((N, sum(sizes)))
    b = 2.0 * rng.standard_normal(N)
    block = np.repeat(np.arange(len(sizes)), sizes)
    starts = np.cumsum([0, *sizes[:-1]])
    best = math.inf
    faces = [
        [c for r in range(1, n + 1) for c in itertools.combinations(range(s, s + n), r)]
        for s, n in zip(starts, sizes, strict=True)
    ]
    for choice in itertools.product(*faces):
        # weights on the chosen vertices: min |b + A w| with per-block sums 1 (KKT system)
        idx = [i for f in choice for i in f]
        E = np.zeros((len(choice), len(idx)))
        for j, f in enumerate(choice):
            E[j, [idx.index(i) for i in f]] = 1.0
        M = A[:, idx]
        kkt = np.block([[M.T @ M, E.T], [E, np.zeros((len(choice), len(choice)))]])
        rhs = np.concatenate([-M.T @ b, np.ones(len(choice))])
        w = np.linalg.lstsq(kkt, rhs, rcond=None)[0][: len(idx)]
        if np.all(w >= -1e-12) and np.allclose(E @ w, 1.0):
            best = min(best, float(np.linalg.norm(b + M @ w)))
    w0 = np.zeros(sum(sizes))
    w0[starts] = 1.0
    w, _, ok = _min_norm_blocks(b, A, block, w0)
    assert ok
    assert np.all(w >= 0) and np.allclose(np.bincount(block, weights=w), 1.0)
    assert np.linalg.norm(b + A @ w) == pytest.approx(best, rel=1e-10)
    assert best > 0.1  # 0 is outside the set here


def _pinned_net(depth: int, same_sample: bool = False):
    """A random relu net with one pre-activation per hidden layer set exactly to 0 (on samples
    3, 4, ... or all on sample 4: then the pins are coupled)."""
    spec = MLPSpec(d_in=4, widths=(5,) * depth, out_dim=3, activation="relu", init="torch")
    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (12,), generator=g)
    theta = flatten_params(Ensemble.init(spec, [2]).member_params(0))
    params = [p.clone() for p in unflatten_params(theta, spec)]
    a = x
    pins = []
    for l in range(depth):
        z = a @ params[2 * l].T + params[2 * l + 1]
        # pin (sample mu, a unit active on most samples) by shifting that unit's bias
        mu = 4 if same_sample else 3 + l
        i = int((z > 0).sum(0).argmax())
        params[2 * l + 1][i] -= z[mu, i]
        z = a @ params[2 * l].T + params[2 * l + 1]
        pins.append((l, mu, i))
        a = torch.relu(z)
    return spec, flatten_params(params), x, y, pins


def _place(theta, spec, x, pins, sides):
    """Move pinned entry k to ``z = sides[k]`` through its unit's bias, layer by layer."""
    params = [p.clone() for p in unflatten_params(theta, spec)]
    a = x
    for l in range(spec.depth):
        z = a @ params[2 * l].T + params[2 * l + 1]
        for k, (lk, mu, i) in enumerate(pins):
            if lk == l:
                params[2 * l + 1][i] += sides[k] - z[mu, i]
        a = torch.relu(a @ params[2 * l].T + params[2 * l + 1])
    return flatten_params(params)


@pytest.mark.parametrize("depth", [1, 2])
def test_jumps_are_the_one_sided_gradient_differences(depth):
    spec, theta, x, y, pins = _pinned_net(depth)
    l2 = 1e-3
    kp = kink_point(theta, spec, x, y, l2, pin_tol=1e-9)
    assert kp.n_pinned == depth and float(kp.z.abs().max()) < 1e-12
    K = len(pins)

    def side_grad(sides, h):
        return _grad(_place(theta, spec, x, pins, [h * s for s in sides]), spec, x, y, l2)

    def limit(sides):
        # one-sided limit h -> 0 of the gradient with entry k at z = sides[k] * h
        # (Richardson: the O(h) smooth part cancels)
        return 2 * side_grad(sides, 1e-7) - side_grad(sides, 2e-7)

    lower = limit([-1.0] * K)
    # grad F_- is the gradient on the lower piece of every pinned entry
    assert torch.allclose(kp.grad, lower, atol=1e-9)
    for k in range(K):
        sides = [-1.0] * K
        sides[k] = 1.0
        jump = limit(sides) - lower
        assert torch.allclose(kp.jumps[k], jump, atol=1e-9 * max(1.0, float(jump.abs().max())))
        assert float(kp.jumps[k].norm()) > 1e-3  # a real kink, not a vacuous comparison


def test_coupled_kinks_use_the_exact_gradients_of_every_pattern():
    # two layers pinned on one training point: the gradient with both entries on is not the sum
    # of the single jumps (the second layer's normal depends on the first entry's piece), and the
    # stationarity measure uses the exact pattern gradients (one-sided FD limits)
    spec, theta, x, y, pins = _pinned_net(2, same_sample=True)
    l2 = 1e-3
    kp = kink_point(theta, spec, x, y, l2, pin_tol=1e-9)
    assert kp.n_pinned == 2 and kp.n_coupled == 1

    def limit(sides):
        g1 = _grad(_place(theta, spec, x, pins, [1e-7 * s for s in sides]), spec, x, y, l2)
        g2 = _grad(_place(theta, spec, x, pins, [2e-7 * s for s in sides]), spec, x, y, l2)
        return 2 * g1 - g2

    lower = limit([-1.0, -1.0])
    both = limit([1.0, 1.0]) - lower
    cross = both - kp.jumps[0] - kp.jumps[1]
    assert float(cross.norm()) > 1e-4  # coupling is real
    from weightscape.landscape._kinks import _coupled_groups

    (entries, pats, verts), *rest = _coupled_groups(theta, spec, x, y, kp.masks)
    assert not rest and list(entries) == [0, 1]
    # the pattern gradients come from one Jacobian over rows, computed in chunks: same result
    ((_, pats1, verts1),) = _coupled_groups(theta, spec, x, y, kp.masks, chunk=1)
    assert np.array_equal(pats1, pats) and np.allclose(verts1, verts, rtol=0, atol=1e-15)
    k11 = [tuple(p) for p in pats].index((1, 1))
    assert np.allclose(verts[k11], both.numpy(), atol=1e-9)
    for k, bits in enumerate(pats):
        sides = [1.0 if b else -1.0 for b in bits]
        assert np.allclose(verts[k], (limit(sides) - lower).numpy(), atol=1e-9)
    # the measure: distance from -grad to the hull of {0, vertices}, against a dense check
    # over a fine grid of convex weights (the hull of 4 points)
    g = kp.grad.numpy()
    V = np.vstack([np.zeros_like(g), verts])
    w = np.random.default_rng(0).dirichlet(np.ones(4), size=20000)
    brute = np.linalg.norm(g + w @ V, axis=1).min()
    assert kp.stationarity <= brute + 1e-12
    assert kp.stationarity >= 0.9 * brute  # the grid is fine enough to be within 10 %


def _lbfgs_relu(depth: int, seed: int, n_params: int = 60):
    cfg = RealNetConfig(
        activation="relu", depth=depth, train_size=100, pca=8, n_params=n_params, budget_tol=0.2
    )
    x, y, out, _ = cfg.load_data()
    spec = cfg.spec(x.shape[1], out)
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    th0 = flatten_params(Ensemble.init(spec, [seed]).member_params(0)).numpy()

    def fg(t):
        t = torch.as_tensor(t)
        return float(_objective(t, spec, x, y, cfg.l2)), _grad(t, spec, x, y, cfg.l2).numpy()

    r = so.minimize(fg, th0, jac=True, method="L-BFGS-B", options={"maxiter": 3000, "gtol": 0})
    return spec, torch.as_tensor(r.x), x, y, cfg.l2


@pytest.mark.parametrize(("depth", "seed"), [(1, 3)])  # an L-BFGS end point on a kink
def test_polished_relu_point_has_no_descent_direction(depth, seed):
    spec, theta, x, y, l2 = _lbfgs_relu(depth, seed)
    F = lambda t: float(_objective(t, spec, x, y, l2))  # noqa: E731
    start = kink_point(theta, spec, x, y, l2)
    # the L-BFGS end point sits on kinks with a gradient far from 0 ...
    assert start.n_pinned > 0 and float(start.grad.norm()) > 1e-4
    # ... and is not yet stationary: the projected gradient is a descent direction (FD slope)
    eps = 1e-7
    if start.stationarity > 1e-6:
        d = -start.tangent @ (start.tangent.T @ start.grad)
        d = d / d.norm()
        assert (F(theta + eps * d) - F(theta)) / eps < -1e-7
    pol = polish_on_kinks(theta, spec, x, y, l2, grad_tol=1e-9)
    p = pol.point
    assert p.stationarity < 1e-9 and p.n_pinned > 0
    assert float(p.z.abs().max()) < 1e-10
    assert float(p.grad.norm()) > 1e-4  # a nonsmooth minimum: the gradient does not vanish
    th, f0 = pol.theta, F(pol.theta)
    # finite differences: no direction of first-order descent beyond the tolerance.
    # Random unit directions, the tangent eigenvectors of the Lagrangian Hessian, and both
    # signs of each normal direction.
    rng = np.random.default_rng(0)
    Z = p.tangent
    e, V = torch.linalg.eigh(Z.T @ pol.hessian @ Z)
    assert float(e[0]) > 0  # positive definite on the stratum: a strict minimum there
    dirs = [torch.as_tensor(rng.standard_normal(th.numel())) for _ in range(200)]
    dirs += list((Z @ V).T)
    dual = torch.linalg.pinv(p.normals)  # [N, K]: n_j . dual_k = delta_jk
    dirs += list(dual.T) + list(-dual.T)
    slopes = []
    for d in dirs:
        d = d / d.norm()
        slopes.append((F(th + eps * d) - f0) / eps)
    assert min(slopes) > -1e-8
    # along the normals F grows at first order on both sides (a V-shaped valley)
    for d in list(dual.T) + list(-dual.T):
        d = d / d.norm()
        assert (F(th + eps * d) - f0) / eps > 1e-6
    # the stationarity measure agrees: each alpha strictly inside (0, 1)
    assert np.all((p.alpha > 1e-6) & (p.alpha < 1 - 1e-6))
    assert math.isfinite(f0) and f0 < F(theta)


def test_run_realnet_relu_reaches_minima_on_kinks():
    cfg = RealNetConfig(
        activation="relu",
        depth=1,
        train_size=100,
        pca=8,
        n_params=60,
        budget_tol=0.2,
        n_inits=1,
        seed=3,
        max_steps=3000,
    )
    m = run_realnet(cfg)
    assert m.converged.all()
    for k in np.flatnonzero(m.converged):
        assert m.stationarity[k] < cfg.grad_tol <= m.grad_norm[k]
        assert m.n_pinned[k] > 0 and m.is_minimum[k]
        # the spectrum lives on the stratum: N - rank(normals) finite values, NaN after
        n_fin = int(np.isfinite(m.eigs[k]).sum())
        assert n_fin == m.n_params - m.n_pinned[k]  # independent normals here
        assert np.isnan(m.eigs[k][n_fin:]).all()
        assert np.isfinite(m.log_width[k])
        # rescaling directions lie in the stratum: eigenvalue 2 l2 there too
        ok = np.isfinite(m.sym_rayleigh[k])
        assert np.allclose(m.sym_rayleigh[k][ok], 2 * cfg.l2, rtol=1e-5)
