"""Oracles for the stationary-point enumerator: H = 2 eigenvectors, Lambda = 2 polynomial roots,
Kac–Rice means, complex-class bound and seed stability."""

import math

import numpy as np
import pytest
import torch

from weightscape.errors import ConfigError
from weightscape.landscape import (
    EnumerationConfig,
    SpinGlass,
    enumerate_stationary,
    kac_rice_by_index,
    kac_rice_log_mean,
    log_complex_classes,
)


def _h2_matrix(model: SpinGlass) -> np.ndarray:
    """Symmetric S with L = lam^{-1/2} w^T S w from the H = 2 monomial coefficients."""
    lam = model.lam
    c = model.coefficients.numpy()
    out = np.zeros((model.n_disorder, lam, lam))
    rows = [(i, j) for i in range(lam) for j in range(i, lam)]
    for p, (i, j) in enumerate(rows):
        out[:, i, j] = out[:, j, i] = c[:, p] if i == j else c[:, p] / 2
    return out


def test_h2_classes_are_the_eigenvectors():
    lam = 6
    m = SpinGlass.sample(lam, 2, 4, seed=3)
    res = enumerate_stationary(m, EnumerationConfig(n_starts=100, max_rounds=5, seed=1))
    evals, evecs = np.linalg.eigh(_h2_matrix(m))
    for d, r in enumerate(res):
        assert r.n_classes == lam  # all lam classes, nothing else
        order = np.argsort(r.energy)
        # energies per weight are lambda_k / sqrt(lam) (1e-12: Newton converges to round-off)
        assert np.allclose(r.energy[order], evals[d] / math.sqrt(lam), atol=1e-12)
        # index of ±v_k (ascending, k = 1..lam) is k - 1
        assert np.array_equal(r.index[order], np.arange(lam))
        # the points are ±sqrt(lam) v_k
        ov = np.abs(r.points[order] @ evecs[d]) / math.sqrt(lam)
        assert np.allclose(ov, np.eye(lam), atol=1e-10)
        assert r.estimates["chapman"] == pytest.approx(lam)
        assert r.grad_norm.max() < 1e-9


def _circle_roots(c: np.ndarray, H: int) -> list[np.ndarray]:
    """Real roots t = tan(theta) of dL/dtheta on the circle, for each row of coefficients c_j
    (monomial cos^{H-j} sin^j): p(t) = sum_j c_j (j t^{j-1} - (H - j) t^{j+1})."""
    n = len(c)
    poly = np.zeros((n, H + 2))  # poly[:, m] = coefficient of t^m (degree H: t^{H+1} cancels)
    for j in range(H + 1):
        if j >= 1:
            poly[:, j - 1] += j * c[:, j]
        poly[:, j + 1] -= (H - j) * c[:, j]
    monic = poly[:, :H] / poly[:, H : H + 1]
    comp = np.zeros((n, H, H))  # companion matrices, eigenvalues = roots
    comp[:, 1:, :-1] = np.eye(H - 1)
    comp[:, :, -1] = -monic
    r = np.linalg.eigvals(comp)
    real = np.abs(r.imag) < 1e-7 * np.maximum(1, np.abs(r))
    return [np.sort(ri[m].real) for ri, m in zip(r, real, strict=True)]


@pytest.mark.parametrize("H", [3, 4, 5, 6])
def test_lambda2_classes_are_real_polynomial_roots(H):
    m = SpinGlass.sample(2, H, 25, seed=H)
    res = enumerate_stationary(m, EnumerationConfig(n_starts=60, max_rounds=6, seed=0))
    roots = _circle_roots(m.coefficients.numpy(), H)
    for r, t in zip(res, roots, strict=True):
        assert r.n_classes == len(t) <= H  # complex bound: H classes at Lambda = 2
        found = np.sort(r.points[:, 1] / r.points[:, 0])
        assert np.allclose(found, t, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("H", [3, 4, 6])
def test_lambda2_mean_real_classes_is_sqrt_3h_minus_2(H):
    # Monte Carlo of the real-root count of the model's own coefficients (law H!/prod alpha!):
    n = 20_000
    m = SpinGlass.sample(2, H, n, seed=100 + H, split="monomial")
    counts = np.array([len(t) for t in _circle_roots(m.coefficients.numpy(), H)])
    se = counts.std() / math.sqrt(n)
    # within 4 SE (~0.03); H = 3: 2.646
    assert abs(counts.mean() - math.sqrt(3 * H - 2)) < 4 * se


def _kr_check(lam, H, D, n_starts, seed=0):
    m = SpinGlass.sample(lam, H, D, seed=1000 * lam + H)
    res = enumerate_stationary(m, EnumerationConfig(n_starts=n_starts, seed=seed))
    counts = np.array([r.n_classes for r in res])
    assert counts.max() <= round(math.exp(log_complex_classes(lam, H)))
    kr = math.exp(kac_rice_log_mean(lam, H, per="class"))
    se = counts.std(ddof=1) / math.sqrt(D)
    # the disorder mean of the real classes found equals the exact Kac–Rice mean within 4 SE
    assert abs(counts.mean() - kr) < 4 * se, (counts.mean(), kr, se)
    return m, res


def test_small_instance_matches_kac_rice_and_is_seed_stable():
    m, res = _kr_check(3, 3, 30, 150)
    # odd H: -w has energy -u and index lam - 1 - k (checked on the model, not by construction)
    sub = m.select(0)
    neg = -torch.as_tensor(res[0].points)[None]
    idx_neg = (torch.linalg.eigvalsh(sub.tangent_hessian(neg))[0] < 0).sum(-1).numpy()
    assert np.array_equal(idx_neg, 2 - res[0].index)
    assert np.allclose(sub.energy(neg)[0].numpy() / 3, -res[0].energy, atol=1e-14)
    res2 = enumerate_stationary(m, EnumerationConfig(n_starts=150, seed=7))
    for a, b in zip(res, res2, strict=True):
        assert a.n_classes == b.n_classes
        assert np.allclose(np.sort(a.energy), np.sort(b.energy), atol=1e-12)
        assert np.array_equal(np.sort(a.index), np.sort(b.index))
        # odd H: representatives have L <= 0
        assert np.all(a.energy <= 0)
        # completeness estimates never fall below what was observed
        assert a.estimates["chao1"] >= a.n_classes and a.estimates["observed"] == a.n_classes
        assert a.discovery[-1] == a.n_classes and np.all(np.diff(a.discovery) >= 0)


@pytest.mark.slow
@pytest.mark.parametrize(("lam", "H"), [(4, 3), (3, 4), (5, 3), (4, 4)])
def test_kac_rice_means_and_index_counts(lam, H):
    D = 120
    _, res = _kr_check(lam, H, D, 400)
    # index-resolved: mean number of points of index k vs the index Kac–Rice (Monte Carlo GOE);
    # 4.5 SE of the combined errors per index.
    ic = kac_rice_by_index(lam, H, n_samples=200_000)
    per = np.array([np.bincount(r.point_indices(), minlength=lam) for r in res])
    se = np.sqrt(per.var(0, ddof=1) / D + ic.points_stderr**2)
    assert np.all(np.abs(per.mean(0) - ic.points) < 4.5 * se + 1e-12), (per.mean(0), ic.points)


def test_config_validation():
    with pytest.raises(ConfigError):
        EnumerationConfig(n_starts=0)
    with pytest.raises(ConfigError):
        enumerate_stationary(SpinGlass.sample(3, 3), config={"n_starts": 3})
    torch.manual_seed(0)
