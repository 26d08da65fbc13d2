"""Lanczos with full reorthogonalisation (float64), extreme eigenvalues, and stochastic Lanczos
quadrature (SLQ) spectral densities.

Why hand-written: SciPy's ``eigsh`` (ARPACK) finds extreme eigenpairs but exposes neither the
tridiagonal matrix that SLQ needs nor torch/GPU matvecs; the loop is short and is checked against
dense spectra and ``eigsh`` in the tests.

Lanczos builds an orthonormal basis ``Q = [q_1 … q_m]`` of the Krylov space of ``A`` and ``q_1``
with ``Qᵀ A Q = T`` tridiagonal (diagonal α, off-diagonal β). The eigenvalues of ``T`` (Ritz
values) approach the extreme eigenvalues of ``A``; a Ritz pair ``(θ_i, Q s_i)`` has residual norm
``|β_m s_{m,i}|``. For SLQ, with a random unit probe ``v = q_1`` and ``T = S Θ Sᵀ``,

.. math::

    v^T g(A) v ≈ Σ_i τ_i^2 g(θ_i),  \\quad τ_i = S_{1i},

exact for polynomials ``g`` of degree ≤ 2m − 1, and ``E_v[vᵀ g(A) v] = tr g(A) / N`` for
Rademacher probes: averaging the quadratures over probes estimates the spectral density
``φ(λ) = (1/N) Σ_i δ(λ − λ_i)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

from ..errors import ConfigError, check_choice, check_positive
from ._operators import DenseOperator, _LinearOperator

__all__ = [
    "ExtremeEigenvalues",
    "LanczosResult",
    "SpectralDensity",
    "extreme_eigenvalues",
    "lanczos",
    "slq_density",
]

#: A Lanczos step stops (invariant subspace found) when the new residual norm falls below this
#: fraction of the largest |α|, |β| seen: at that level the next vector is rounding noise.
_BREAKDOWN_RTOL = 1e-12


def _as_operator(op) -> _LinearOperator:
    if isinstance(op, _LinearOperator):
        return op
    if isinstance(op, torch.Tensor):
        return DenseOperator(op)
    raise ConfigError(f"op of type {type(op).__name__} is not a curvature operator or a matrix")


@dataclass(frozen=True)
class LanczosResult:
    """Output of :func:`lanczos`.

    Attributes:
        alpha: diagonal of T ``[m]``.
        beta: ``[m]``: ``beta[:-1]`` is the off-diagonal of T, ``beta[-1]`` the norm of the last
            residual (0 after a breakdown: the Krylov space is invariant and the Ritz values are
            exact eigenvalues).
        basis: Lanczos vectors ``Q`` ``[N, m]`` (None when not kept).
        breakdown: the Krylov space became invariant before ``num_steps``.
    """

    alpha: np.ndarray
    beta: np.ndarray
    basis: torch.Tensor | None
    breakdown: bool

    @property
    def steps(self) -> int:
        return int(self.alpha.shape[0])

    def ritz(self):
        """Ritz values ``[m]`` (ascending) and the eigenvectors ``S`` ``[m, m]`` of T."""
        if self.steps == 1:
            return self.alpha.copy(), np.ones((1, 1))
        return eigh_tridiagonal(self.alpha, self.beta[:-1])


def _run(op: _LinearOperator, v0: torch.Tensor, num_steps: int, stop=None, check_every=10):
    """The Lanczos loop; ``stop(alpha, beta)`` is asked every ``check_every`` steps."""
    N = op.shape[0]
    m = min(int(num_steps), N)
    Q = torch.zeros(N, m, dtype=op.dtype, device=op.device)
    q = v0 / torch.linalg.vector_norm(v0)
    alpha, beta = [], []
    scale = 0.0
    breakdown = False
    for j in range(m):
        Q[:, j] = q
        w = op._matvec(q[:, None])[:, 0]
        a = torch.dot(q, w)
        w = w - a * q
        if j > 0:
            w = w - beta[-1] * Q[:, j - 1]
        # full reorthogonalisation against all previous vectors, twice ("twice is enough")
        Qj = Q[:, : j + 1]
        for _ in range(2):
            w = w - Qj @ (Qj.T @ w)
        b = torch.linalg.vector_norm(w)
        a_f, b_f = float(a), float(b)
        alpha.append(a_f)
        beta.append(b_f)
        scale = max(scale, abs(a_f), b_f)
        if b_f <= _BREAKDOWN_RTOL * max(scale, 1e-300):
            beta[-1] = 0.0
            breakdown = j + 1 < N
            break
        if (
            stop is not None
            and (j + 1) % check_every == 0
            and stop(np.array(alpha), np.array(beta))
        ):
            break
        q = w / b
    k = len(alpha)
    return LanczosResult(np.array(alpha), np.array(beta), Q[:, :k], breakdown)


def _start_vector(op, v0, seed):
    if v0 is not None:
        v0 = torch.as_tensor(v0, dtype=op.dtype, device=op.device).reshape(-1)
        if v0.shape[0] != op.shape[0] or not bool(torch.linalg.vector_norm(v0) > 0):
            raise ConfigError(f"v0 must be a nonzero vector of length {op.shape[0]}")
        return v0
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(op.shape[0], generator=gen, dtype=torch.float64).to(op.dtype).to(op.device)


def lanczos(
    op, num_steps: int, *, v0=None, seed: int = 0, keep_basis: bool = True
) -> LanczosResult:
    """Lanczos tridiagonalisation with full reorthogonalisation, in the operator's precision.

    Args:
        op: a curvature operator (e.g. :class:`HessianOperator`) or a symmetric matrix ``[N, N]``.
        num_steps: Krylov dimension m (at most N).
        v0: start vector ``[N]`` (default: Gaussian from ``seed``).
        keep_basis: return the Lanczos vectors ``[N, m]``.

    Returns:
        :class:`LanczosResult`.
    """
    op = _as_operator(op)
    check_positive("num_steps", num_steps, integer=True)
    res = _run(op, _start_vector(op, v0, seed), num_steps)
    return res if keep_basis else LanczosResult(res.alpha, res.beta, None, res.breakdown)


@dataclass(frozen=True)
class ExtremeEigenvalues:
    """Output of :func:`extreme_eigenvalues`.

    Attributes:
        values: Ritz values ``[k]`` (ascending for ``smallest``, descending for ``largest``; for
            ``both``: the k smallest ascending, then the k largest descending).
        residuals: Ritz residual norms ``|β_m s_{m,i}|`` ``[len(values)]`` (bounds on the distance
            to an eigenvalue of ``A``).
        vectors: Ritz vectors ``[N, len(values)]`` or None.
        steps: Lanczos steps taken.
        converged: every residual ≤ ``tol · max|θ|``.
    """

    values: np.ndarray
    residuals: np.ndarray
    vectors: torch.Tensor | None
    steps: int
    converged: bool


def _pick(theta: np.ndarray, k: int, which: str) -> np.ndarray:
    n = theta.shape[0]
    k = min(k, n)
    if which == "largest":
        return np.arange(n - 1, n - 1 - k, -1)
    if which == "smallest":
        return np.arange(k)
    lo = np.arange(min(k, n))
    hi = np.arange(n - 1, max(n - 1 - k, k - 1), -1)
    return np.concatenate([lo, hi])


def extreme_eigenvalues(
    op,
    k: int = 20,
    *,
    which: str = "largest",
    tol: float = 1e-10,
    max_steps: int | None = None,
    check_every: int = 10,
    seed: int = 0,
    vectors: bool = False,
) -> ExtremeEigenvalues:
    """The k largest / smallest (or both) eigenvalues by Lanczos with full reorthogonalisation.

    Runs until every wanted Ritz residual ``|β_m s_{m,i}| ≤ tol · max|θ|`` (checked every
    ``check_every`` steps) or ``max_steps``. For a symmetric matrix the Ritz value is then within
    the residual norm of an eigenvalue (and much closer, ∝ residual², when it is isolated).

    Args:
        op: a curvature operator or a symmetric matrix ``[N, N]``.
        k: number of eigenvalues at each wanted end.
        which: ``largest``, ``smallest`` or ``both``.
        tol: relative residual tolerance.
        max_steps: Lanczos steps at most (default ``min(N, max(10 k + 50, 200))``).
        vectors: also return the Ritz vectors.
    """
    op = _as_operator(op)
    check_positive("k", k, integer=True)
    check_choice("which", which, ("largest", "smallest", "both"))
    check_positive("tol", tol)
    N = op.shape[0]
    max_steps = min(N, max(10 * k + 50, 200)) if max_steps is None else int(max_steps)
    check_positive("max_steps", max_steps, integer=True)

    def residuals(alpha, beta):
        theta, S = (
            eigh_tridiagonal(alpha, beta[:-1]) if len(alpha) > 1 else (alpha, np.ones((1, 1)))
        )
        idx = _pick(theta, k, which)
        return theta, S, idx, np.abs(beta[-1] * S[-1, idx])

    def stop(alpha, beta):
        if len(alpha) < min(N, 2 * k + 2):
            return False
        theta, _, _, r = residuals(alpha, beta)
        return bool(np.all(r <= tol * np.abs(theta).max()))

    res = _run(op, _start_vector(op, None, seed), max_steps, stop=stop, check_every=check_every)
    theta, S, idx, r = residuals(res.alpha, res.beta)
    vecs = None
    if vectors:
        vecs = res.basis @ torch.as_tensor(S[:, idx], dtype=op.dtype, device=op.device)
    scale = np.abs(theta).max() if theta.size else 0.0
    return ExtremeEigenvalues(
        values=theta[idx],
        residuals=r,
        vectors=vecs,
        steps=res.steps,
        converged=bool(np.all(r <= tol * scale)),
    )


@dataclass(frozen=True)
class SpectralDensity:
    """A stochastic-Lanczos-quadrature estimate of the spectral density of an ``N × N`` matrix.

    Attributes:
        nodes: Ritz values per probe ``[n_probes, m]`` (unused slots after a breakdown: weight 0).
        weights: squared first components ``τ²`` ``[n_probes, m]``; each row sums to 1.
        n: the dimension N.

    The estimate of ``(1/N) Σ_i g(λ_i)`` is ``mean over probes of Σ_j weights · g(nodes)``.
    """

    nodes: np.ndarray
    weights: np.ndarray
    n: int

    def expect(self, fn) -> float:
        """Estimate of ``(1/N) tr g(A)`` for a vectorised ``g``."""
        return float((self.weights * fn(self.nodes)).sum(1).mean())

    def density(self, grid, sigma: float, *, log: bool = False, sign: int = 1) -> np.ndarray:
        """Gaussian-smoothed density.

        Args:
            grid: evaluation points ``[G]``: eigenvalues, or for ``log=True`` positive magnitudes.
            sigma: kernel width (in λ, or in ``log10|λ|`` for ``log=True``).
            log: density per unit ``log10|λ|`` of the eigenvalues of the given ``sign`` (its
                integral is the fraction of eigenvalues with that sign).
            sign: +1 or −1, with ``log=True``.

        Returns:
            ``[G]``: ``(1/N) Σ_i K_σ(grid − λ_i)`` estimated (with ``log``: in ``log10`` space).
        """
        check_positive("sigma", sigma)
        t = np.asarray(grid, dtype=np.float64)
        nodes, w = self.nodes, self.weights
        if log:
            check_choice("sign", sign, (1, -1))
            keep = sign * nodes > 0
            w = np.where(keep, w, 0.0)
            nodes = np.log10(np.where(keep, sign * nodes, 1.0))
            t = np.log10(t)
        z = (t[:, None, None] - nodes[None]) / sigma
        k = np.exp(-0.5 * z * z) / (sigma * math.sqrt(2 * math.pi))
        return (k * w[None]).sum(2).mean(1)

    def cdf(self, t) -> np.ndarray:
        """Estimated fraction of eigenvalues ``≤ t`` (Gauss-quadrature of a step: resolution
        ~ the quadrature weights near ``t``)."""
        t = np.asarray(t, dtype=np.float64)
        step = self.nodes[None] <= t.reshape(-1, 1, 1)
        return (step * self.weights[None]).sum(2).mean(1).reshape(t.shape)


def slq_density(op, *, num_probes: int = 10, num_steps: int = 80, seed: int = 0) -> SpectralDensity:
    """Stochastic Lanczos quadrature with Rademacher probes (full reorthogonalisation).

    Args:
        op: a curvature operator or a symmetric matrix ``[N, N]``.
        num_probes: independent probes (the estimate's variance falls as 1/num_probes).
        num_steps: Lanczos steps per probe (quadrature exact for degree ≤ 2 m − 1).
        seed: seed of the probes.

    Returns:
        :class:`SpectralDensity`.
    """
    op = _as_operator(op)
    check_positive("num_probes", num_probes, integer=True)
    check_positive("num_steps", num_steps, integer=True)
    N = op.shape[0]
    m = min(num_steps, N)
    gen = torch.Generator().manual_seed(int(seed))
    nodes = np.zeros((num_probes, m))
    weights = np.zeros((num_probes, m))
    for i in range(num_probes):
        v = torch.randint(0, 2, (N,), generator=gen).to(torch.float64).mul_(2).sub_(1)
        res = _run(op, v.to(op.dtype).to(op.device), m)
        theta, S = res.ritz()
        nodes[i, : res.steps] = theta
        weights[i, : res.steps] = S[0] ** 2
    return SpectralDensity(nodes=nodes, weights=weights, n=N)
