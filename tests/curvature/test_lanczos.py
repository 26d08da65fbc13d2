"""Lanczos, extreme eigenvalues and SLQ densities against dense spectra (N ≈ 2k) and SciPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import eigsh

from weightscape.curvature import (
    DenseOperator,
    HessianOperator,
    extreme_eigenvalues,
    hinge_hessian_split,
    lanczos,
    slq_density,
)
from weightscape.errors import ConfigError
from weightscape.nets import Ensemble, MLPSpec


@pytest.fixture(scope="module")
def net2k():
    """Depth 2, d = h = 30 (N = 1891 parameters), P = 300 random points, hinge κ = 1 at init:
    its operator and dense spectrum."""
    spec = MLPSpec.uniform(30, 2, 30)
    ens = Ensemble.init(spec, [0])
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(300, 30, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 2, (300,), generator=gen).to(torch.float64) * 2 - 1
    s = hinge_hessian_split(ens, x, y)[0]
    op = HessianOperator(ens, x, y, member=0)
    return op, s.H, s.eigs_H.numpy()


def _sym(n, seed, spectrum=None):
    gen = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    e = torch.randn(n, generator=gen, dtype=torch.float64) if spectrum is None else spectrum
    return Q @ torch.diag(e) @ Q.T, e


def test_lanczos_basis_is_orthonormal_and_tridiagonalises():
    A, _ = _sym(60, 0)
    r = lanczos(A, 40)
    Q = r.basis
    T = np.diag(r.alpha) + np.diag(r.beta[:-1], 1) + np.diag(r.beta[:-1], -1)
    # full reorthogonalisation keeps QᵀQ = I to rounding (without it: O(1) loss after ~20 steps)
    assert float((Q.T @ Q - torch.eye(40, dtype=torch.float64)).abs().max()) < 1e-13
    assert np.abs((Q.T @ A @ Q).numpy() - T).max() < 1e-12
    assert lanczos(A, 5, keep_basis=False).basis is None


def test_lanczos_breakdown_finds_exact_eigenvalues():
    """A matrix with 3 distinct eigenvalues has a 3-dimensional Krylov space."""
    spectrum = torch.tensor([-1.0, 2.0, 5.0], dtype=torch.float64).repeat_interleave(10)
    A, _ = _sym(30, 1, spectrum)
    r = lanczos(A, 20)
    assert r.breakdown and r.steps == 3 and r.beta[-1] == 0.0
    assert np.allclose(r.ritz()[0], [-1.0, 2.0, 5.0], rtol=0, atol=1e-12)


def test_extreme_eigenvalues_match_dense_spectrum(net2k):
    op, _, eigs = net2k
    r = extreme_eigenvalues(op, 20, which="both", tol=1e-10)
    assert r.converged
    want = np.concatenate([eigs[:20], eigs[::-1][:20]])
    scale = np.abs(eigs).max()
    # converged Ritz values are within the residual bound (tol · scale) of an eigenvalue; the
    # ordered extremes match one to one because Lanczos resolves the ends first
    assert np.abs(r.values - want).max() < 1e-8 * scale
    assert np.all(r.residuals <= 1e-10 * scale * (1 + 1e-12))


def test_ritz_vectors_are_eigenvectors(net2k):
    op, H, eigs = net2k
    r = extreme_eigenvalues(op, 5, which="largest", vectors=True)
    V = r.vectors
    res = H @ V - V * torch.as_tensor(r.values)
    assert float(res.abs().max()) < 1e-8 * np.abs(eigs).max()
    assert float((V.T @ V - torch.eye(5, dtype=V.dtype)).abs().max()) < 1e-10


def test_extreme_eigenvalues_agree_with_scipy_eigsh():
    A, e = _sym(200, 2)
    ours = extreme_eigenvalues(A, 6, which="smallest")
    theirs = eigsh(A.numpy(), k=6, which="SA", return_eigenvectors=False)
    assert np.allclose(ours.values, np.sort(theirs), rtol=0, atol=1e-9)
    assert np.allclose(ours.values, np.sort(e.numpy())[:6], rtol=0, atol=1e-9)


def test_slq_density_matches_dense_spectrum(net2k):
    _, H, eigs = net2k
    # the dense matrix as operator keeps this fast; HessianOperator = H is tested elsewhere
    d = slq_density(DenseOperator(H), num_probes=10, num_steps=80, seed=0)
    assert np.allclose(d.weights.sum(1), 1.0, atol=1e-12)
    lo, hi = eigs.min(), eigs.max()
    sigma = 0.02 * (hi - lo)
    grid = np.linspace(lo - 3 * sigma, hi + 3 * sigma, 800)
    z = (grid[:, None] - eigs[None]) / sigma
    ref = (np.exp(-0.5 * z * z) / (sigma * np.sqrt(2 * np.pi))).mean(1)
    est = d.density(grid, sigma)
    l1 = np.abs(est - ref).sum() * (grid[1] - grid[0])
    # probe noise of a smooth functional is ~ sqrt(2 / (N n_probes)) ≈ 1 % here and the
    # 80-step quadrature integrates the kernel (width 2 % of the range) to well below that;
    # 2 % in L1 is a margin of several standard errors (measured 0.0025 with this seed)
    assert l1 < 0.02, l1


def test_slq_trace_estimate_within_five_standard_errors(net2k):
    """SLQ reproduces vᵀHv exactly for each probe, so its mean estimates tr(H)/N with the
    Rademacher variance 2 Σ_{i≠j} H_ij² / N² per probe."""
    _, H, eigs = net2k
    n_probes = 10
    d = slq_density(DenseOperator(H), num_probes=n_probes, num_steps=30, seed=3)
    N = H.shape[0]
    off = H - torch.diag(torch.diag(H))
    se = float(torch.sqrt(2 * (off**2).sum()) / N) / np.sqrt(n_probes)
    assert abs(d.expect(lambda t: t) - eigs.mean()) < 5 * se


def test_slq_cdf_and_log_density():
    spectrum = torch.linspace(0.1, 10.0, 100, dtype=torch.float64)
    A, _ = _sym(100, 4, spectrum)
    d = slq_density(A, num_probes=20, num_steps=100, seed=0)  # m = N: exact per probe
    # with m = N the quadrature is exact for every function: the CDF at a midpoint between
    # eigenvalues is the probe-average of Σ_{λ_i ≤ t} (vᵀu_i)², within a few % of the true 0.5
    assert abs(float(d.cdf(5.04)) - 0.5) < 0.1
    grid = np.logspace(-1, 1, 50)
    dens = d.density(grid, 0.05, log=True)
    assert np.all(d.density(grid, 0.05, log=True, sign=-1) == 0)  # no negative eigenvalues
    assert 0.5 < np.trapezoid(dens, np.log10(grid)) <= 1.0 + 1e-9


def test_bad_arguments():
    A = torch.eye(4, dtype=torch.float64)
    with pytest.raises(ConfigError, match="which"):
        extreme_eigenvalues(A, 2, which="middle")
    with pytest.raises(ConfigError, match="num_steps"):
        lanczos(A, 0)
    with pytest.raises(ConfigError, match="v0"):
        lanczos(A, 2, v0=torch.zeros(4))
    with pytest.raises(ConfigError, match="operator"):
        lanczos(np.eye(3), 2)
    assert isinstance(DenseOperator(A), DenseOperator)
