"""Oracles for batched GD restarts and the reusable analysis helpers: the H = 2 ground state
(eigh), agreement with exhaustive enumeration, hand-computable clustering/overlap/fit cases."""

import math

import numpy as np
import pytest
import torch

from weightscape.errors import ConfigError
from weightscape.landscape import (
    DescentConfig,
    EnumerationConfig,
    SpinGlass,
    capture_recapture,
    descend,
    distinct_points,
    enumerate_stationary,
    fit_line,
    pairwise_overlaps,
    random_sphere_points,
    summarize_minima,
)


def test_h2_gd_finds_the_ground_state():
    lam = 8
    m = SpinGlass.sample(lam, 2, 2, seed=4)
    w0 = random_sphere_points((2, 20), lam, generator=torch.Generator().manual_seed(0))
    res = descend(m, w0, DescentConfig(grad_tol=1e-10))
    # oracle: the lowest eigenvalue of the symmetrised matrix (L = lam^{-1/2} w^T S w)
    for d, r in enumerate(res):
        c = m.coefficients[d].numpy()
        s = np.zeros((lam, lam))
        p = 0
        for i in range(lam):
            for j in range(i, lam):
                s[i, j] = s[j, i] = c[p] if i == j else c[p] / 2
                p += 1
        lo = np.linalg.eigvalsh(s)[0] / math.sqrt(lam)
        assert r.converged.all() and np.all(r.index == 0)
        assert np.allclose(r.energy, lo, atol=1e-12)
        summ = summarize_minima(r)
        assert summ.n_distinct == 1 and summ.best_fraction == 1.0  # ±v_1 identified (even H)
        assert r.grad_norm.max() < 1e-10


def test_gd_minima_are_enumerated_minima():
    lam, H = 5, 3
    m = SpinGlass.sample(lam, H, 1, seed=9)
    enum = enumerate_stationary(m, EnumerationConfig(n_starts=400, seed=0))[0]
    w0 = random_sphere_points((1, 64), lam, generator=torch.Generator().manual_seed(1))
    r = descend(m, w0, DescentConfig(grad_tol=1e-9))[0]
    assert r.converged.all() and r.grad_norm.max() < 1e-9
    mins = enum.points[enum.index == 0]
    # odd H: representatives have L <= 0; minima all have u < 0, so they are representatives
    summ = summarize_minima(r)
    enum_lv = -0.5 * np.log(enum.hessian_eigs[enum.index == 0]).sum(1)
    for k in range(summ.n_distinct):
        p = r.points[r.is_minimum][summ.clusters.representatives[k]]
        dist = np.linalg.norm(mins - p, axis=1)
        assert dist.min() < 1e-7  # every GD minimum is one of the enumerated index-0 classes
        # same Hessian log-volume as the enumerated class (independent Newton solve)
        assert abs(summ.log_volume[k] - enum_lv[dist.argmin()]) < 1e-8
    assert summ.n_distinct <= len(mins)
    # the lowest enumerated minimum energy bounds all GD energies from below
    assert r.energy.min() >= enum.energy[enum.index == 0].min() - 1e-12


def test_gd_matches_between_batched_and_single_restarts():
    lam, H = 10, 4
    m = SpinGlass.sample(lam, H, 1, seed=2)
    w0 = random_sphere_points((1, 6), lam, generator=torch.Generator().manual_seed(2))
    for newton in (False, True):
        cfg = DescentConfig(grad_tol=1e-9, newton=newton, polish_steps=0, hessian=False)
        batched = descend(m, w0, cfg)[0]
        assert (batched.newton_steps > 0).all() == newton
        for b in range(6):
            single = descend(m, w0[:, b : b + 1], cfg)[0]
            # same iterations on the same start: identical end point up to summation order
            assert np.allclose(single.points[0], batched.points[b], atol=1e-10)
            assert single.steps[0] == batched.steps[b]
            assert single.newton_steps[0] == batched.newton_steps[b]


def test_descent_config_validation():
    with pytest.raises(ConfigError):
        DescentConfig(step=-1.0)
    with pytest.raises(ConfigError):
        DescentConfig(max_steps=0)
    r = descend(
        SpinGlass.sample(4, 3), random_sphere_points((1, 2), 4), DescentConfig(max_steps=1)
    )[0]
    assert not r.converged.any() and np.all(r.steps == 1)


def test_distinct_points_known_clusters():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((5, 7)) * 3
    labels = rng.integers(0, 5, 200)
    signs = rng.choice([-1, 1], 200)
    pts = centers[labels] + 1e-9 * rng.standard_normal((200, 7))
    cl = distinct_points(pts, 1e-6)
    assert cl.n_clusters == len(set(labels))
    # same partition as the truth
    assert len(set(zip(cl.labels, labels, strict=True))) == cl.n_clusters
    assert cl.counts.sum() == 200
    cl2 = distinct_points(pts * signs[:, None], 1e-6, sign_symmetric=True, chunk=17)
    assert cl2.n_clusters == cl.n_clusters
    rep_pts = (pts * signs[:, None])[cl2.representatives[cl2.labels]]
    assert np.allclose(rep_pts * cl2.signs[:, None], pts * signs[:, None], atol=1e-7)
    assert distinct_points(pts * signs[:, None], 1e-6).n_clusters > cl.n_clusters


def test_overlaps_and_fit_line():
    x = np.array([[1.0, 0, 0, 0], [0, 2, 0, 0], [1, 1, 1, 1]]) * 2
    q = pairwise_overlaps(x)
    assert np.allclose(q, [0.0, 4 / 4, 8 / 4])  # x_a . x_b / P with P = 4
    assert np.allclose(pairwise_overlaps(-x[:2], norm=1.0, absolute=True), [0.0])
    xs = np.linspace(-2, -1.5, 10)
    f = fit_line(xs, 2 * xs + 1)
    assert math.isclose(f.slope, 2, rel_tol=1e-12) and abs(f.intercept - 1) < 1e-12
    with pytest.raises(ConfigError):
        fit_line([1, 2], [1, 2])


def test_capture_recapture_hand_values():
    a = np.array([3, 1, 0, 2])
    b = np.array([2, 0, 1, 1])
    est = capture_recapture(a, b, a + b)
    # n1 = 3, n2 = 3, m = 2 -> (4 * 4)/3 - 1; f1 = #{hits == 1} = 2 (classes 2, 3... ) etc.
    assert est["observed"] == 4
    assert math.isclose(est["chapman"], 16 / 3 - 1)
    f1 = int(((a + b) == 1).sum())
    f2 = int(((a + b) == 2).sum())
    assert math.isclose(est["chao1"], 4 + f1 * (f1 - 1) / (2 * (f2 + 1)))


def test_capture_recapture_recovers_a_known_total():
    # Equal basins: K classes, each start lands in a uniformly random class; two halves of n
    # starts. Seeded Monte Carlo over R repetitions: Chapman's estimate is unbiased to O(1/m)
    # here (mean within 3% of K), Chao1 is a lower-bound estimator (mean <= K + 4 SE) but above
    # the observed count; unequal basins (geometric sizes) bias Chapman low (documented).
    K, n, R = 40, 40, 3000
    rng = np.random.default_rng(12)

    def estimates(p):
        out = []
        for _ in range(R):
            a = np.bincount(rng.choice(K, n, p=p), minlength=K)
            b = np.bincount(rng.choice(K, n, p=p), minlength=K)
            e = capture_recapture(a, b, a + b)
            out.append((e["observed"], e["chapman"], e["chao1"]))
        return np.array(out, dtype=float)

    eq = estimates(np.full(K, 1 / K))
    obs, chap, chao = eq.T
    assert obs.mean() < K - 3  # 80 starts over 40 equal classes: ~5 classes missed on average
    assert abs(chap.mean() - K) < 0.03 * K
    assert chao.mean() <= K + 4 * chao.std() / math.sqrt(R)
    assert np.all(chao >= obs) and chao.mean() > obs.mean() + 1
    geo = 0.9 ** np.arange(K)
    assert estimates(geo / geo.sum())[:, 1].mean() < 0.8 * K


def test_clustering_index_of_random_directions_is_zero_with_exact_variance():
    # Oracle for the spin clustering measure: for K independent uniform directions in R^lam the
    # index (<q^2> - 1/lam) / (1 - 1/lam) over the M = K(K-1)/2 pairs has mean exactly 0 and
    # variance Var(q^2) / (M (1 - 1/lam)^2), Var(q^2) = 2 (lam-1) / (lam^2 (lam+2)) (q^2 is
    # Beta(1/2, (lam-1)/2); the q_ab^2 of different pairs are uncorrelated because pairs are
    # pairwise independent). It is also blind to the sign of each point (the arbitrary class
    # representative of even H) and to |q| vs q.
    from weightscape.landscape import clustering_index

    rng = np.random.default_rng(5)
    R = 4000
    for lam, K in [(12, 8), (6, 13)]:
        M = K * (K - 1) // 2
        idx = np.empty(R)
        for r in range(R):
            x = rng.standard_normal((K, lam))
            x *= math.sqrt(lam) / np.linalg.norm(x, axis=1, keepdims=True)
            idx[r] = clustering_index(pairwise_overlaps(x, lam), 1.0 / lam)
            if r < 20:
                s = rng.choice([-1.0, 1.0], K)[:, None]
                q_abs = pairwise_overlaps(s * x, lam, absolute=True)
                assert math.isclose(clustering_index(q_abs, 1.0 / lam), idx[r], rel_tol=1e-12)
        var = 2 * (lam - 1) / (lam**2 * (lam + 2)) / M / (1 - 1 / lam) ** 2
        assert abs(idx.mean()) < 4.5 * math.sqrt(var / R)
        # variance of a sample variance, non-Gaussian idx: loose 10% (SE ~ 3-4% at R = 4000)
        assert abs(idx.var() / var - 1) < 0.1
        # the other end of the scale: coincident points (up to sign) give exactly 1
        same = np.repeat(x[:1], 5, axis=0) * rng.choice([-1.0, 1.0], 5)[:, None]
        assert math.isclose(clustering_index(pairwise_overlaps(same, lam), 1.0 / lam), 1.0)


def test_summarize_minima_counts_each_pair_of_distinct_minima_once():
    # Every distinct minimum appears many times (and with both signs for even H): the overlaps
    # must be exactly those between the K distinct points, never a point with itself or its
    # mirror, so the clustering index equals that of the K points.
    from weightscape.landscape import MinimaSet, clustering_index

    rng = np.random.default_rng(3)
    lam, K, H = 9, 6, 4
    base = rng.standard_normal((K, lam))
    base *= math.sqrt(lam) / np.linalg.norm(base, axis=1, keepdims=True)
    lab = np.concatenate([np.arange(K), rng.integers(0, K, 60)])
    sgn = rng.choice([-1.0, 1.0], len(lab))
    pts = sgn[:, None] * base[lab] + 1e-10 * rng.standard_normal((len(lab), lam))
    B = len(lab)
    ms = MinimaSet(
        lam=lam,
        H=H,
        points=pts,
        energy=-1.0 - 0.01 * lab,
        grad_norm=np.full(B, 1e-12),
        steps=np.ones(B, dtype=np.int64),
        converged=np.ones(B, dtype=bool),
        hessian_eigs=np.ones((B, lam - 1)),
    )
    sm = summarize_minima(ms)
    assert sm.n_distinct == K and len(sm.overlaps) == K * (K - 1) // 2
    q_true = pairwise_overlaps(base, lam, absolute=True)
    assert np.allclose(np.sort(sm.overlaps), np.sort(q_true), atol=1e-9)
    assert math.isclose(
        clustering_index(sm.overlaps, 1 / lam), clustering_index(q_true, 1 / lam), rel_tol=1e-8
    )
    assert sm.best_fraction == pytest.approx(np.mean(lab == K - 1))


@pytest.mark.parametrize(("lam", "H"), [(9, 3), (8, 4), (6, 5)])
def test_gd_monomial_column_path_equals_dense_tensor_path(lam, H):
    # SpinGlass descends with points as columns through the monomial flattening; the dense
    # ordered-tuple tensor (reference) goes through the generic row path. Same disorder, same
    # starts: the same iteration, so the same step counts and end points to round-off.
    from weightscape.landscape import DenseSpinGlass

    dense = DenseSpinGlass.sample(lam, H, 2, seed=lam + H)
    mono = SpinGlass.from_tensor(dense.tensor)
    w0 = random_sphere_points((2, 12), lam, generator=torch.Generator().manual_seed(H))
    cfg = DescentConfig(grad_tol=1e-9, newton=False, polish_steps=0, hessian=False)
    for a, b in zip(descend(dense, w0, cfg), descend(mono, w0, cfg), strict=True):
        assert a.converged.all() and b.converged.all()
        assert np.abs(a.steps - b.steps).max() <= 1  # a tie at the tolerance may shift one step
        assert np.allclose(a.points, b.points, atol=1e-8)
        assert np.allclose(a.energy, b.energy, atol=1e-12)


# ------------------------------------------------------------------------------------------
# Newton steps inside the descent (symmetric flattening, one GEMM for gradient and Hessian)
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lam", "H", "split"),
    [
        (7, 2, "auto"),
        (6, 3, "auto"),
        (5, 4, "auto"),
        (5, 5, "auto"),
        (4, 6, "auto"),
        (5, 4, 3),
        (5, 4, "monomial"),
        (6, 3, "monomial"),
    ],
)
def test_one_gemm_gives_energy_gradient_and_hessian(lam, H, split):
    # Oracle: the dense ordered-tuple tensor path (independent contraction of X) for L, grad
    # and Hessian; the symmetric flattening must represent the same form as the model's one.
    from weightscape.landscape import DenseSpinGlass
    from weightscape.landscape._minima import _ColumnModel, symmetric_flattening

    dense = DenseSpinGlass.sample(lam, H, 1, seed=lam * H)
    mono = SpinGlass.from_tensor(dense.tensor, split=split)
    w = random_sphere_points((1, 7), lam, generator=torch.Generator().manual_seed(3))
    e, g, h = dense.evaluate(w, 2)
    cm = _ColumnModel(mono)
    wt = w[0].T.contiguous()
    y, e2, g2 = cm(wt)
    h2 = cm.hessian(wt, y)
    assert torch.allclose(e2, e[0], atol=1e-12, rtol=0)
    assert torch.allclose(g2.T, g[0], atol=1e-11, rtol=0)
    assert torch.allclose(h2, h[0], atol=1e-11, rtol=0)
    # same bilinear form as SpinGlass.flattening: phi_a^T M^s phi_b = phi_a^T M phi_b
    ms, m = symmetric_flattening(mono)[0], mono.flattening[0]
    pa = mono._phi(w, mono.a)[0]
    pb = mono._phi(w, mono.b)[0]
    assert torch.allclose(((pa @ ms) * pb).sum(-1), ((pa @ m) * pb).sum(-1), atol=1e-12)
    if mono.a == mono.b:
        assert torch.equal(ms, ms.T)


def test_newton_direction_matches_tangent_hessian_and_bordered_newton():
    # Oracles: the tangent-basis Hessian of _sphere (Householder basis, Hessian from the
    # degree-H second-derivative table) and the bordered Newton step of _stationary.
    from weightscape.landscape import newton_step, tangent_basis
    from weightscape.landscape._minima import _ColumnModel, _newton_directions

    lam, H = 8, 4
    m = SpinGlass.sample(lam, H, 1, seed=5)
    w0 = random_sphere_points((1, 40), lam, generator=torch.Generator().manual_seed(6))
    w = torch.tensor(descend(m, w0, DescentConfig(grad_tol=1e-3, newton=False))[0].points)[None]
    # perturb off the minima so the gradient is not tiny; half the points random (mostly not
    # positive definite there)
    w = w + 0.05 * random_sphere_points((1, 40), lam, generator=torch.Generator().manual_seed(7))
    w[:, 20:] = random_sphere_points((1, 20), lam, generator=torch.Generator().manual_seed(8))
    w = w * math.sqrt(lam) / w.norm(dim=-1, keepdim=True)
    cm = _ColumnModel(m)
    wt = w[0].T.contiguous()
    y, _, g = cm(wt)
    gr = g - (wt * g).sum(0) / lam * wt
    xi, ok = _newton_directions(cm, wt, y, g, gr)
    th = m.tangent_hessian(w)[0]
    pd = torch.linalg.eigvalsh(th)[:, 0] > 0
    assert torch.equal(ok, pd) and ok.sum() >= 10 and (~ok).sum() >= 1
    q = tangent_basis(w[0])
    rg = m.riemannian_gradient(w)[0]
    ref = -(q @ torch.linalg.solve(th, (q.transpose(-1, -2) @ rg[..., None])))[..., 0]
    assert torch.allclose(xi.T[ok], ref[ok], atol=1e-10, rtol=0)
    assert torch.all(xi[:, ~ok] == 0)
    assert (xi.T * w[0]).sum(-1).abs().max() < 1e-12  # tangent
    w_bordered, _ = newton_step(m, w)
    new = wt + xi
    new = (new * math.sqrt(lam) / new.norm(dim=0)).T
    assert torch.allclose(new[ok], w_bordered[0][ok], atol=1e-10, rtol=0)


def test_newton_converges_quadratically_to_the_h2_eigenvector():
    # H = 2: L = lam^{-1/2} w^T S w, the minimum is sqrt(lam) v_1 (lowest eigenvector of S).
    # Riemannian Newton from a nearby point: e_{k+1} <= C e_k^2 until round-off.
    from weightscape.landscape._minima import _ColumnModel, _newton_directions

    lam = 10
    m = SpinGlass.sample(lam, 2, 1, seed=11)
    c = m.coefficients[0].numpy()
    s = np.zeros((lam, lam))
    iu = np.triu_indices(lam)
    s[iu] = c
    s = (s + s.T) / 2  # diagonal entries c_ii, off-diagonal c_ij / 2
    evals, evecs = np.linalg.eigh(s)
    v = torch.tensor(evecs[:, 0] * math.sqrt(lam))
    rng = np.random.default_rng(0)
    w = v + 0.3 * torch.tensor(rng.standard_normal(lam))
    w = (w * math.sqrt(lam) / w.norm())[:, None]
    cm = _ColumnModel(m)
    errs = []
    for _ in range(6):
        sign = 1.0 if float(w[:, 0] @ v) > 0 else -1.0
        errs.append(float((w[:, 0] - sign * v).norm()))
        y, e, g = cm(w)
        gr = g - (w * g).sum(0) / lam * w
        xi, ok = _newton_directions(cm, w, y, g, gr)
        assert bool(ok.all())
        w = w + xi
        w = w * math.sqrt(lam) / w.norm(dim=0)
    errs = np.array(errs)
    assert errs[0] > 0.1 and errs[-1] < 1e-13
    big = errs[:-1] > 1e-7
    assert np.all(errs[1:][big] <= 2.0 * errs[:-1][big] ** 2)
    assert abs(float(e[0]) / lam - evals[0] / math.sqrt(lam)) < 1e-13
    # the same through descend (Newton switched on where the Hessian is positive definite)
    res = descend(m, w.T[None], DescentConfig(grad_tol=1e-12, polish_steps=0))[0]
    assert res.converged.all() and res.newton_steps[0] <= 2 and res.steps[0] == 0


@pytest.mark.parametrize(
    ("lam", "H", "below"), [(9, 3, 0.1), (8, 4, 0.1), (7, 5, 0.1), (6, 6, 0.1), (12, 4, 0.3)]
)
def test_newton_descent_ends_at_the_gd_minima(lam, H, below):
    # Same seeded batch, plain GD vs GD + Newton (default switch 0.1, and 0.3): every restart
    # ends at the same point (same minimum). (With the switch at 1 or above a few restarts in
    # 10^3 end elsewhere: Newton jumps across a basin boundary where the Hessian is positive
    # definite; that is why the default is 0.1.)
    # Both are polished (bordered Newton of _stationary) so that the end points are the
    # minima to round-off, not GD's tolerance ball of radius ~ grad_tol / lambda_min.
    m = SpinGlass.sample(lam, H, 2, seed=lam + H)
    w0 = random_sphere_points((2, 60), lam, generator=torch.Generator().manual_seed(H))
    gd = descend(m, w0, DescentConfig(grad_tol=1e-10, newton=False, polish_steps=3))
    nt = descend(m, w0, DescentConfig(grad_tol=1e-10, newton_below=below, polish_steps=3))
    n_newton = 0
    for a, b in zip(gd, nt, strict=True):
        assert a.converged.all() and b.converged.all()
        assert np.array_equal(a.index, b.index)
        sign = np.where((a.points * b.points).sum(1) < 0, -1.0, 1.0)[:, None]
        assert np.all(sign == 1.0)  # not even a sign flip: the same basin
        assert np.abs(a.points - sign * b.points).max() < 1e-10
        assert np.abs(a.energy - b.energy).max() < 1e-13
        assert (b.steps + b.newton_steps).sum() < 0.7 * a.steps.sum()
        assert np.all(a.newton_steps == 0)
        assert np.array_equal(b.to_frame()["newton_steps"], b.newton_steps)
        n_newton += int(b.newton_steps.sum())
    assert n_newton > 60


def test_newton_config_validation():
    with pytest.raises(ConfigError):
        DescentConfig(newton_below=0.0)
    with pytest.raises(ConfigError):
        DescentConfig(newton=1)


def test_rejected_newton_steps_fall_back_and_end_at_the_gd_minima():
    # A seeded batch where some Newton steps raise the energy or the gradient norm and are undone
    # (damped retries, then GD): every restart still converges to its plain-GD end point, and no
    # accepted step raised the energy (end energies equal GD's to round-off).
    from weightscape.landscape import default_step
    from weightscape.landscape._minima import _descend_columns

    lam, H = 8, 4
    m = SpinGlass.sample(lam, H, 2, seed=lam + H).select(1)
    w0 = random_sphere_points((2, 60), lam, generator=torch.Generator().manual_seed(H))[1]
    eta = default_step(H)
    gd = _descend_columns(m, w0, eta, 1e-12, 100_000, None)
    nt = _descend_columns(m, w0, eta, 1e-12, 100_000, 0.1)
    assert gd[3].all() and nt[3].all()
    assert int(gd[2].sum()) == 0 and int(gd[4].sum()) == 0
    rejected = nt[4]
    assert int((rejected > 0).sum()) >= 5  # the fallback is exercised on several restarts
    assert torch.all(rejected <= nt[2])
    assert (gd[0] - nt[0]).abs().max() < 1e-9
    e_gd, e_nt = m.energy(gd[0][None])[0], m.energy(nt[0][None])[0]
    assert (e_gd - e_nt).abs().max() < 1e-12


def test_default_cluster_tolerance_is_the_one_constant_and_splits_at_it():
    # spin_minima (and benchmarks/spin_restarts.py) must cluster with summarize_minima's default:
    # one constant, MINIMA_CLUSTER_TOL. Behaviour at that default, by hand: two minima at distance
    # 0.5 tol sqrt(lam) are one, at 2 tol sqrt(lam) they are two.
    import inspect

    from weightscape.landscape import MINIMA_CLUSTER_TOL, MinimaSet, spin_minima

    for fn in (summarize_minima, spin_minima):
        assert inspect.signature(fn).parameters["cluster_tol"].default == MINIMA_CLUSTER_TOL
    lam, H = 7, 3
    a = np.zeros(lam)
    a[0] = math.sqrt(lam)
    d = np.zeros(lam)
    d[1] = 1.0
    for factor, n_distinct in ((0.5, 1), (2.0, 2)):
        pts = np.stack([a, a + factor * MINIMA_CLUSTER_TOL * math.sqrt(lam) * d])
        ms = MinimaSet(
            lam=lam,
            H=H,
            points=pts,
            energy=np.array([-1.0, -1.0]),
            grad_norm=np.full(2, 1e-12),
            steps=np.ones(2, dtype=np.int64),
            converged=np.ones(2, dtype=bool),
            hessian_eigs=np.ones((2, lam - 1)),
        )
        assert summarize_minima(ms).n_distinct == n_distinct
