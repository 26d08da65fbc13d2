"""Oracles for the spin-glass model: dense tensor vs monomial path, finite differences on the
sphere, the disorder covariance Lambda (w.w'/Lambda)^H, and the coefficient variances."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from weightscape.errors import ConfigError
from weightscape.landscape import (
    DenseSpinGlass,
    ParameterBudget,
    SpinGlass,
    lam_for_budget,
    multinomial_counts,
    multisets,
    n_monomials,
    random_sphere_points,
)

CASES = [(2, 2), (5, 2), (2, 3), (4, 3), (3, 4), (5, 4), (4, 5), (3, 6)]


def _ids(cases):
    return [f"lam{lam}-H{H}" for lam, H in cases]


@pytest.mark.parametrize(("lam", "H"), [(3, 1), (6, 5), (10, 3), (4, 7)])
def test_multisets_count_and_multinomial_identity(lam, H):
    rows = multisets(lam, H)
    assert rows.shape == (n_monomials(lam, H), H)
    assert np.all(np.diff(rows, axis=1) >= 0)
    assert len({tuple(r) for r in rows}) == len(rows)
    # sum over multisets of H!/prod alpha! counts every ordered tuple once: lam^H (exact).
    assert int(multinomial_counts(rows).sum()) == lam**H


@pytest.mark.parametrize(("lam", "a", "b"), [(4, 2, 2), (5, 3, 1), (3, 3, 3), (6, 2, 0)])
def test_product_ranks_equal_brute_force_lookup(lam, a, b):
    from weightscape.landscape._monomials import product_ranks

    rank = {tuple(r): k for k, r in enumerate(multisets(lam, a + b))}
    rows_a, rows_b = multisets(lam, a), multisets(lam, b)
    expected = [[rank[tuple(sorted((*ra, *rb)))] for rb in rows_b] for ra in rows_a]
    np.testing.assert_array_equal(product_ranks(lam, a, b), np.array(expected))


@pytest.mark.parametrize(("lam", "H"), CASES, ids=_ids(CASES))
def test_monomial_path_equals_dense_path(lam, H):
    dense = DenseSpinGlass.sample(lam, H, 2, seed=lam * 10 + H)
    w = random_sphere_points((2, 6), lam, generator=torch.Generator().manual_seed(1))
    e0, g0, h0 = dense.evaluate(w, 2)
    splits = ["auto", "monomial", *range((H + 1) // 2, H + 1)]
    for split in splits:
        for table in (True, False):
            mono = SpinGlass.from_tensor(dense.tensor, split=split)
            if not table:
                mono.max_table_entries = 0  # Hessian through the flattening
            e1, g1, h1 = mono.evaluate(w, 2)
            # 1e-12 relative to the typical size sqrt(lam) of L (float64 round-off ~1e-15).
            scale = math.sqrt(lam) * H * H
            assert (e1 - e0).abs().max() < 1e-12 * scale
            assert (g1 - g0).abs().max() < 1e-12 * scale
            assert (h1 - h0).abs().max() < 1e-12 * scale


def test_two_dim_points_and_shape_errors():
    m = SpinGlass.sample(4, 3, 1, seed=0)
    w = random_sphere_points((5,), 4)
    assert m.energy(w).shape == (5,)
    assert m.hessian(w).shape == (5, 4, 4)
    with pytest.raises(ConfigError):
        m.energy(torch.zeros(2, 5, 4, dtype=torch.float64))
    with pytest.raises(ConfigError):
        SpinGlass.sample(1, 3)
    with pytest.raises(ConfigError):
        SpinGlass.sample(4, 3, split="halves")
    with pytest.raises(ConfigError):
        SpinGlass(torch.zeros(1, 7, dtype=torch.float64), 4, 3)


def _geodesic(w, v, t):
    """Great circle through w with initial velocity v (v tangent): stays on |w|^2 = lam."""
    lam = w.shape[-1]
    nv = v.norm(dim=-1, keepdim=True)
    theta = t * nv / math.sqrt(lam)
    return torch.cos(theta) * w + math.sqrt(lam) * torch.sin(theta) * v / nv


@pytest.mark.parametrize(("lam", "H"), [(5, 2), (4, 3), (6, 4), (3, 5)])
def test_riemannian_derivatives_vs_finite_differences(lam, H):
    gen = torch.Generator().manual_seed(3)
    m = SpinGlass.sample(lam, H, 2, seed=7)
    w = random_sphere_points((2, 4), lam, generator=gen)
    v = torch.randn(2, 4, lam, generator=gen, dtype=torch.float64)
    v = v - (v * w).sum(-1, keepdim=True) / lam * w  # tangent
    grad = m.riemannian_gradient(w)
    hess = m.riemannian_hessian(w)
    th = m.tangent_hessian(w)
    eps = 1e-4
    e = [m.energy(_geodesic(w, v, t * eps)) for t in (-2, -1, 0, 1, 2)]
    # 4th-order central differences along a geodesic: error ~ eps^4 * L^(5) ~ 1e-13 relative.
    d1 = (e[0] - 8 * e[1] + 8 * e[3] - e[4]) / (12 * eps)
    d2 = (-e[0] + 16 * e[1] - 30 * e[2] + 16 * e[3] - e[4]) / (12 * eps**2)
    exact1 = (grad * v).sum(-1)
    exact2 = (v[..., None, :] @ hess @ v[..., :, None])[..., 0, 0]
    # TOL_FD = 1e-6 relative (round-off of the second difference ~ 1e-16 / eps^2 = 1e-8).
    assert torch.allclose(d1, exact1, rtol=1e-6, atol=1e-6)
    assert torch.allclose(d2, exact2, rtol=1e-6, atol=1e-6)
    # the tangent-basis Hessian has the same spectrum as P(h - mu)P without its zero mode
    ev_full = torch.linalg.eigvalsh(hess)
    ev_tan = torch.linalg.eigvalsh(th)
    zero = ev_full.abs().argmin(-1, keepdim=True)
    mask = torch.ones_like(ev_full, dtype=torch.bool).scatter(-1, zero, False)
    assert torch.allclose(ev_full[mask].reshape(ev_tan.shape), ev_tan, atol=1e-12)
    # w is a zero mode of the projected Hessian and orthogonal to the gradient
    assert (hess @ w[..., None]).abs().max() < 1e-12 * lam
    assert (grad * w).sum(-1).abs().max() < 1e-12 * lam


@pytest.mark.parametrize("path", ["monomial", "dense"])
def test_disorder_covariance_matches_lambda_overlap_power(path):
    lam, H, D = 4, 3, 20_000
    if path == "dense":
        m = DenseSpinGlass.sample(lam, H, D, seed=11)
    else:
        m = SpinGlass.sample(lam, H, D, seed=11, split="monomial")
    gen = torch.Generator().manual_seed(5)
    base = random_sphere_points((3,), lam, generator=gen)
    base[1] = base[0] + 0.5 * base[1]  # correlated pair
    base = base / base.norm(dim=-1, keepdim=True) * math.sqrt(lam)
    base[2] = -base[0]  # anti-aligned: Cov = -lam for odd H
    w = base.expand(D, 3, lam).contiguous()
    L = m.energy(w).numpy()  # [D, 3]
    emp = np.cov(L, rowvar=False)
    q = (base @ base.T).numpy() / lam
    exact = lam * q**H
    # SE of a sample covariance of Gaussians: sqrt((C_aa C_bb + C_ab^2) / D). All 6 entries
    # within 4.5 SE (seeded; a wrong normalisation such as unique-entry sampling is off by
    # ~sqrt(H!) = 2.4x, i.e. > 100 SE).
    se = np.sqrt((np.outer(np.diag(exact), np.diag(exact)) + exact**2) / D)
    z = np.abs(emp - exact) / se
    assert z.max() < 4.5, (emp, exact)


def test_coefficient_variance_is_multinomial():
    lam, H, D = 3, 4, 4000
    m = SpinGlass.sample(lam, H, D, seed=2, split="monomial")
    var = multinomial_counts(multisets(lam, H)).astype(float)
    c = m.coefficients.numpy()
    z2 = (c**2 / var).sum()
    # sum of D*P squared standard normals: chi-square with D*P dof; two-sided p > 1e-4.
    p = stats.chi2.sf(z2, D * len(var))
    assert 1e-4 < p < 1 - 1e-4
    # per monomial: variance ratio within 5 SE (SE of a variance ratio = sqrt(2/D)); the
    # variances span 1..12, so a wrong multinomial weight would be off by a factor >= 2.
    ratio = (c**2).mean(0) / var
    assert np.all(np.abs(ratio - 1) < 5 * math.sqrt(2 / D))
    assert sorted(set(var.astype(int))) == [1, 4, 6, 12]  # alpha = 4, 31, 22, 211


def test_from_tensor_sums_ordered_tuples():
    lam, H = 3, 3
    x = torch.randn(
        1, lam, lam, lam, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    m = SpinGlass.from_tensor(x)
    rows = multisets(lam, H)
    import itertools

    for r, c in zip(rows, m.coefficients[0], strict=True):
        tot = sum(x[0][p].item() for p in set(itertools.permutations(r)))
        assert abs(tot - c.item()) < 1e-14


def test_parameter_budget():
    assert lam_for_budget(60, 4) == 15
    assert lam_for_budget(60, 7) == 9  # 8.57 rounds to 9
    assert ParameterBudget(rounding="floor").lam(60, 7) == 8
    assert ParameterBudget(rule="N").lam(60, 7) == 60
    with pytest.raises(ConfigError):
        ParameterBudget(rule="sqrt")
    with pytest.raises(ConfigError):
        lam_for_budget(10, 9)  # Lambda = 1


@pytest.mark.parametrize("H", [3, 4])
def test_disorder_covariance_monte_carlo_even_and_odd_h(H):
    # Cov(L(w), L(w')) = lam (w.w'/lam)^H for several overlaps q in (-1, 1], both parities of H
    # (odd: anti-correlated at q < 0; even: positive). Monte Carlo over D disorder samples of the
    # monomial path; every entry within 4.5 SE (SE of a Gaussian sample covariance).
    lam, D = 5, 20_000
    m = SpinGlass.sample(lam, H, D, seed=40 + H, split="monomial")
    gen = torch.Generator().manual_seed(H)
    e = random_sphere_points((2,), lam, generator=gen) / math.sqrt(lam)
    e[1] -= (e[1] @ e[0]) * e[0]
    e[1] /= e[1].norm()
    qs = torch.tensor([1.0, 0.8, 0.3, -0.5, -0.9], dtype=torch.float64)
    pts = math.sqrt(lam) * (qs[:, None] * e[0] + torch.sqrt(1 - qs**2)[:, None] * e[1])
    L = m.energy(pts.expand(D, len(qs), lam).contiguous()).numpy()
    emp = np.cov(L, rowvar=False)
    q = (pts @ pts.T).numpy() / lam
    exact = lam * q**H
    se = np.sqrt((np.outer(np.diag(exact), np.diag(exact)) + exact**2) / D)
    assert np.all(np.abs(emp - exact) < 4.5 * se), (emp, exact)


@pytest.mark.parametrize(("lam", "H"), [(6, 3), (5, 4)])
def test_tangent_hessian_is_shifted_goe_at_every_finite_lam(lam, H):
    # At a fixed point w the tangent Hessian is exactly -H u I + M with M a GOE(lam - 1) of
    # off-diagonal variance H(H-1)/lam (diagonal twice that), independent of u = L(w)/lam:
    # differentiate Cov = lam (w.w'/lam)^H twice in tangent directions at w and w' (the u-M
    # covariance carries a factor w.e = 0). This is the finite-lam law behind the shifted
    # semicircle of radius 2 sqrt(H(H-1)). Monte Carlo over D disorder samples, 5 SE each.
    D = 20_000
    m = SpinGlass.sample(lam, H, D, seed=7 * lam + H)
    w = random_sphere_points((1,), lam, generator=torch.Generator().manual_seed(3))
    w = w.expand(D, 1, lam).contiguous()
    th = m.tangent_hessian(w)[:, 0].numpy()  # [D, lam-1, lam-1]
    u = m.energy(w)[:, 0].numpy() / lam
    n = lam - 1
    M = th + H * u[:, None, None] * np.eye(n)
    s2 = H * (H - 1) / lam
    iu = np.triu_indices(n, 1)
    off = M[:, iu[0], iu[1]]  # [D, n(n-1)/2]
    dia = M[:, np.arange(n), np.arange(n)]  # [D, n]
    # means 0
    assert np.all(np.abs(off.mean(0)) < 5 * math.sqrt(s2 / D))
    assert np.all(np.abs(dia.mean(0)) < 5 * math.sqrt(2 * s2 / D))
    # variances (SE of a Gaussian variance ratio: sqrt(2/D))
    assert np.all(np.abs(off.var(0) / s2 - 1) < 5 * math.sqrt(2 / D))
    assert np.all(np.abs(dia.var(0) / (2 * s2) - 1) < 5 * math.sqrt(2 / D))
    # independent of the energy (correlations ~ N(0, 1/D))
    for col in (off[:, 0], dia[:, 0], dia.sum(1)):
        assert abs(np.corrcoef(col, u)[0, 1]) < 5 / math.sqrt(D)
    # the energy itself has variance lam / lam^2 = 1/lam
    assert abs(u.var() * lam - 1) < 5 * math.sqrt(2 / D)
